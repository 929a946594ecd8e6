// The control service against the real servers: commands through its actions to simulated PLCs
// (Mosquitto), their acks back through the shared subscription, MongoDB (commands, audit) and
// the lifecycle events on Kafka. Devices are registered from the PLCs' retained births, as the
// preprocessor would.
import { strict as assert } from "node:assert";
import type { Consumer } from "kafkajs";
import type { ServiceBroker } from "moleculer";
import { MongoClient, type Db } from "mongodb";
import type { MqttClient } from "mqtt";
import type { ControlStats } from "../../services/control.service.ts";
import type { PlcListing } from "../../services/plc-simulator.service.ts";
import type { AuditEntry } from "../../src/audit/chain.ts";
import { newCommand, type CommandDocument, type CommandEvent, type CommandView } from "../../src/control/commands.ts";
import { deviceTopic, kindFilter, parseDeviceTopic } from "../../src/shared/topics.ts";
import type { DeviceDocument, StatePayload } from "../../src/shared/types.ts";
import { cleanupRun, connectMqtt, collectTopic, isolatedEnv, startServices, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

const TIMEOUT_MS = 1_500;

describe("control against Mosquitto, MongoDB, Kafka and the PLC simulator", function () {
  this.timeout(90_000);
  let env: TestSystemEnv;
  let broker: ServiceBroker;
  let replica: ServiceBroker | undefined;
  let mongo: MongoClient;
  let db: Db;
  let births: MqttClient;
  let consumer: Consumer;
  const events: { key: string; value: CommandEvent }[] = [];

  const send = (params: object) => broker.call<CommandView, object>("control.send", params);
  const get = (id: string) => broker.call<CommandView, object>("control.get", { id });
  const settled = (id: string, timeoutMs = 15_000) =>
    waitFor(`command ${id} to leave pending`, async () => {
      const command = await get(id);
      return command.status === "pending" ? undefined : command;
    }, timeoutMs);
  const auditOf = (id: string) => db.collection<AuditEntry>("audit").find({ subject: "command", subjectId: id }).toArray();
  const eventsOf = (id: string) => events.filter((e) => e.value.id === id);

  before(async () => {
    env = await isolatedEnv("ctl", { PLC_COUNT: "5", PLC_SCAN_MS: "200", COMMAND_TIMEOUT_MS: String(TIMEOUT_MS) });
    broker = await startServices(env, ["devices", "plc-simulator", "control"]);
    mongo = new MongoClient(env.MONGO_URL);
    await mongo.connect();
    db = mongo.db();
    // Register each PLC from its retained birth, as the preprocessor does.
    births = await connectMqtt(env, { clientId: `${env.MOLECULER_NAMESPACE}-births` });
    births.on("message", (topic, payload) => {
      const address = parseDeviceTopic(env.MQTT_TOPIC_ROOT, topic);
      if (!address || payload.length === 0) return;
      const birth = JSON.parse(payload.toString()) as StatePayload;
      const { site, area, line, device } = address;
      broker.call("devices.register", { site, area, line, device, ...birth }).catch(() => undefined);
    });
    await births.subscribeAsync(kindFilter(env.MQTT_TOPIC_ROOT, "state"), { qos: 1 });
    await waitFor("5 registered devices", async () => (await broker.call<{ total: number }, object>("devices.list", {})).total === 5);
    consumer = await collectTopic(env, "events", events);
  });

  after(async () => {
    await consumer?.disconnect();
    await births?.endAsync();
    await replica?.stop();
    await broker?.stop();
    await mongo?.close();
    if (env) await cleanupRun(env);
  });

  it("sends a setpoint, which the PLC acknowledges; command, audit and events record it", async () => {
    const sent = await send({ id: "oven-01", action: "setpoint", tag: "temp_sp", value: 170 });
    assert.equal(sent.status, "pending");
    assert.deepEqual([sent.device, sent.area, sent.action, sent.tag, sent.value, sent.user], ["oven-01", "paint-shop", "setpoint", "temp_sp", 170, "anonymous"]);
    assert.equal(sent.deadline - sent.requestedAt, TIMEOUT_MS);
    const done = await settled(sent.id);
    assert.equal(done.status, "acknowledged");
    assert.equal(done.reason, null);
    assert.ok(done.ackTs !== null && done.completedAt !== null && done.completedAt >= sent.requestedAt);
    const plc = await waitFor("the new setpoint in force", async () => {
      const plcs = await broker.call<PlcListing[]>("plc-simulator.list");
      return plcs.find((p) => p.device === "oven-01");
    });
    assert.equal(plc.runState, "running");
    const audit = await auditOf(sent.id);
    assert.deepEqual(audit.map((a) => a.action).sort(), ["command.acknowledged", "command.sent"]);
    assert.ok(audit.every((a) => a.user === "anonymous" && a.details.device === "oven-01" && a.details.tag === "temp_sp" && a.details.value === 170));
    await waitFor("both events on Kafka", () => eventsOf(sent.id).length >= 2);
    assert.deepEqual(eventsOf(sent.id).map((e) => [e.key, e.value.type]), [["oven-01", "command.sent"], ["oven-01", "command.acknowledged"]]);
  });

  it("shows the PLC's reason when it rejects a command: reset while running, start while faulted", async () => {
    const reset = await settled((await send({ id: "press-01", action: "reset" })).id);
    assert.equal(reset.status, "rejected");
    assert.equal(reset.reason, "not faulted (state running)");

    // Loss of cooling at full severity trips the pump within seconds (short fault, short time constant).
    await broker.call("plc-simulator.injectFault", { device: "pump-01", type: "overheat", durationMs: 3_000, severity: 1 });
    await waitFor("pump-01 tripped", async () => (await broker.call<PlcListing[]>("plc-simulator.list")).find((p) => p.device === "pump-01")?.runState === "faulted", 20_000);
    const start = await settled((await send({ id: "pump-01", action: "start" })).id);
    assert.equal(start.status, "rejected");
    assert.equal(start.reason, "faulted: reset before starting");
    await waitFor("the rejection event", () => eventsOf(start.id).some((e) => e.value.type === "command.rejected" && e.value.reason === "faulted: reset before starting"));
    assert.deepEqual((await auditOf(start.id)).map((a) => a.action).sort(), ["command.rejected", "command.sent"]);
  });

  it("refuses what the registry already rules out, naming the field, before anything is sent", async () => {
    const refused = async (params: object, code: number, pattern: RegExp) =>
      assert.rejects(send(params), (err: { code: number; message: string; data?: unknown }) => {
        assert.equal(err.code, code, `${JSON.stringify(params)}: ${err.message}`);
        assert.match(JSON.stringify({ message: err.message, data: err.data }), pattern);
        return true;
      });
    await refused({ id: "oven-01", action: "setpoint", tag: "zone_temp", value: 150 }, 400, /"field":"tag".*not a setpoint of oven-01 \(setpoints: temp_sp\)/);
    await refused({ id: "oven-01", action: "setpoint", tag: "temp_sp", value: 999 }, 400, /"field":"value".*outside the range/);
    await refused({ id: "oven-01", action: "setpoint", tag: "temp_sp" }, 400, /"field":"value"/);
    await refused({ id: "oven-01", action: "start", tag: "temp_sp" }, 400, /"field":"tag"/);
    await refused({ id: "oven-01", action: "setpoint", tag: "temp_sp", value: "hot" }, 422, /"field":"value"/);
    await refused({ id: "oven-01", action: "launch" }, 422, /"field":"action"/);
    await refused({ id: "no-such-plc", action: "start" }, 404, /not registered/);
    await assert.rejects(get("no-such-command"), (err: { code: number }) => err.code === 404);
    const { commands } = await broker.call<{ commands: CommandView[] }, object>("control.list", { limit: 500 });
    assert.ok(commands.every((c) => c.device !== "no-such-plc" && !(c.action === "setpoint" && c.value === 999)), "refused commands are not stored");
  });

  it("times out a command nobody answers, and records a late ack without changing the outcome", async () => {
    const ghost = { site: "plant1", area: "nowhere", line: "line9", device: "ghost-01" };
    await broker.call("devices.register", { ...ghost, state: "online", ts: Date.now(), machineType: "oven", tags: [{ name: "temp_sp", unit: "°C", type: "number", min: 50, max: 220 }] });
    const sent = await send({ id: "ghost-01", action: "setpoint", tag: "temp_sp", value: 100 });
    // An ack naming the command but from another device's topic does not complete it.
    const fake = await connectMqtt(env, { clientId: `${env.MOLECULER_NAMESPACE}-fake-plc` });
    try {
      const oven = (await broker.call<DeviceDocument, object>("devices.get", { id: "oven-01" }));
      await fake.publishAsync(deviceTopic(env.MQTT_TOPIC_ROOT, { ...oven, device: oven._id }, "cmd/ack"), JSON.stringify({ id: sent.id, status: "accepted", ts: Date.now() }), { qos: 1 });
      const done = await settled(sent.id);
      assert.equal(done.status, "timed_out");
      assert.equal(done.reason, `no acknowledgement from ghost-01 within ${TIMEOUT_MS} ms`);
      assert.ok(done.completedAt !== null && done.completedAt >= sent.deadline);
      await waitFor("the timedOut event", () => eventsOf(sent.id).some((e) => e.value.type === "command.timedOut"));

      await fake.publishAsync(deviceTopic(env.MQTT_TOPIC_ROOT, ghost, "cmd/ack"), JSON.stringify({ id: sent.id, status: "accepted", ts: Date.now() }), { qos: 1 });
      const late = await waitFor("the late ack", async () => (await get(sent.id)).lateAck);
      assert.equal(late.status, "accepted");
      assert.equal((await get(sent.id)).status, "timed_out", "the outcome stays");
      assert.deepEqual((await auditOf(sent.id)).map((a) => a.action).sort(), ["command.lateAck", "command.sent", "command.timedOut"]);
    } finally {
      await fake.endAsync();
    }
  });

  it("resolves an overdue pending command on GET (its sender died before the timeout)", async () => {
    const device = await broker.call<DeviceDocument, object>("devices.get", { id: "conveyor-01" });
    const orphan = newCommand(`orphan-${Date.now()}`, device, { action: "stop" }, "anonymous", Date.now() - 60_000, TIMEOUT_MS);
    await db.collection<CommandDocument>("commands").insertOne(orphan);
    const seen = await get(orphan._id);
    assert.equal(seen.status, "timed_out");
    const { commands } = await broker.call<{ commands: CommandView[] }, object>("control.list", { device: "conveyor-01" });
    assert.equal(commands.find((c) => c.id === orphan._id)?.status, "timed_out");
  });

  it("lists recent commands newest first, filtered by device", async () => {
    const { commands } = await broker.call<{ commands: CommandView[] }, object>("control.list", { device: "oven-01", limit: "10" });
    assert.ok(commands.length >= 1);
    assert.ok(commands.every((c) => c.device === "oven-01"));
    const all = (await broker.call<{ commands: CommandView[] }, object>("control.list", {})).commands;
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1].requestedAt >= all[i].requestedAt, "newest first");
    assert.equal((await broker.call<{ commands: CommandView[] }, object>("control.list", { limit: 2 })).commands.length, 2);
  });

  it("splits acks between control replicas; whichever gets an ack completes the command", async () => {
    replica = await startServices({ ...env, NODE_ID: `${env.MOLECULER_NAMESPACE}-control-2` }, ["control"]);
    await waitFor("the second replica's subscription", async () => (await replica!.call<{ ok: boolean }>("control.health")).ok);
    const before = await Promise.all([broker, replica].map((b) => b.call<ControlStats, object>("control.stats", {}, { nodeID: b.nodeID })));
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await send({ id: i % 2 === 0 ? "compressor-01" : "conveyor-01", action: "start" })).id);
    const done = await Promise.all(ids.map((id) => settled(id)));
    assert.deepEqual(new Set(done.map((c) => c.status)), new Set(["acknowledged"]));
    const after = await Promise.all([broker, replica].map((b) => b.call<ControlStats, object>("control.stats", {}, { nodeID: b.nodeID })));
    const handled = after.map((s, i) => s.acksHandled - before[i].acksHandled);
    assert.equal(handled[0] + handled[1], 10, `acks handled per replica: ${handled}`);
    assert.ok(handled.every((n) => n > 0), `both replicas took acks: ${handled}`);
  });

  it("after a replica stops, the others get all the acks (no share is left queued for it)", async () => {
    await replica?.stop();
    replica = undefined;
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await send({ id: "compressor-01", action: "start" })).id);
    const done = await Promise.all(ids.map((id) => settled(id)));
    assert.deepEqual(done.map((c) => c.status), Array(6).fill("acknowledged"));
  });
});
