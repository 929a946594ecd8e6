// The PLC simulator against the real Mosquitto (1883) and NATS (4222): births, telemetry,
// commands and acks, fault injection with ground truth, reconnect buffering, orderly offline.
import { strict as assert } from "node:assert";
import { Errors, ServiceBroker } from "moleculer";
import type { MqttClient } from "mqtt";
import createPlcSimulatorService, { groundTruthTopic, plcClientId, type PlcListing } from "../../services/plc-simulator.service.ts";
import { loadConfig } from "../../src/shared/config.ts";
import type { ServiceHealth } from "../../src/shared/health.ts";
import { deviceTopic, parseDeviceTopic } from "../../src/shared/topics.ts";
import type { CommandAck, DeviceAddress, GroundTruthRecord, StatePayload, TelemetryPayload } from "../../src/shared/types.ts";
import { cleanupRun, connectMqtt, isolatedEnv, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

interface Received {
  topic: string;
  payload: string;
  retain: boolean;
}

/** Collects what arrives on `filter` (QoS 1) from a fresh client (the system's MQTT admin). */
async function listen(env: TestSystemEnv, clientId: string, filter: string): Promise<{ client: MqttClient; messages: Received[] }> {
  const client = await connectMqtt(env, { clientId, protocolVersion: 5, reconnectPeriod: 0 });
  const messages: Received[] = [];
  client.on("message", (topic, payload, packet) => messages.push({ topic, payload: payload.toString(), retain: packet.retain }));
  await client.subscribeAsync(filter, { qos: 1 });
  return { client, messages };
}

describe("plc-simulator against Mosquitto and NATS", function () {
  this.timeout(60_000);
  let env: TestSystemEnv;
  let run: string;
  let root: string;
  let broker: ServiceBroker | undefined;
  let observer: MqttClient;
  let messages: Received[];
  const addresses = new Map<string, DeviceAddress>();

  const of = (kind: string, device?: string) =>
    messages.filter((m) => {
      const parsed = parseDeviceTopic(root, m.topic);
      return parsed !== null && parsed.kind === kind && (device === undefined || parsed.device === device);
    });
  const seqs = (device: string) => of("telemetry", device).map((m) => (JSON.parse(m.payload) as TelemetryPayload).seq);
  const telemetry = (device: string) => of("telemetry", device).map((m) => JSON.parse(m.payload) as TelemetryPayload);
  const ackFor = (id: string) => of("cmd/ack").map((m) => JSON.parse(m.payload) as CommandAck).find((a) => a.id === id);
  const address = (device: string) => {
    const found = addresses.get(device);
    assert.ok(found, `address of ${device}`);
    return found;
  };
  const sendCommand = async (device: string, command: object) => {
    await observer.publishAsync(deviceTopic(root, address(device), "cmd"), JSON.stringify(command), { qos: 1 });
  };

  before(async () => {
    env = await isolatedEnv("plcsim", { PLC_COUNT: "3", PLC_SCAN_MS: "100" });
    run = env.MOLECULER_NAMESPACE;
    root = env.MQTT_TOPIC_ROOT;
    ({ client: observer, messages } = await listen(env, `${run}-observer`, `${root}/#`));
    broker = new ServiceBroker({ namespace: run, nodeID: `${run}-node`, transporter: { type: "NATS", options: { url: "nats://127.0.0.1:4222" } }, logger: false });
    broker.createService(createPlcSimulatorService(loadConfig({ ...process.env, ...env })));
    await broker.start();
  });

  after(async () => {
    await broker?.stop();
    await observer?.endAsync();
    if (env) await cleanupRun(env);
  });

  it("publishes a retained birth with the machine type and tag list for each PLC", async () => {
    await waitFor("three births", () => of("state").filter((m) => (JSON.parse(m.payload) as StatePayload).state === "online").length >= 3, 10_000);
    for (const m of of("state")) {
      const parsed = parseDeviceTopic(root, m.topic)!;
      addresses.set(parsed.device, parsed);
    }
    assert.deepEqual([...addresses.keys()].sort(), ["oven-01", "press-01", "pump-01"]);
    // A client arriving later gets the births as retained messages.
    const late = await listen(env, `${run}-late`, `${root}/+/+/+/+/state`);
    try {
      const births = await waitFor("three retained births", () => (late.messages.length >= 3 ? late.messages : undefined), 5_000);
      for (const m of births) {
        assert.equal(m.retain, true);
        const birth = JSON.parse(m.payload) as StatePayload;
        assert.equal(birth.state, "online");
        assert.ok(birth.machineType && birth.tags && birth.tags.length >= 4);
        assert.ok(birth.tags.every((t) => typeof t.name === "string" && typeof t.unit === "string"));
        assert.ok(birth.tags.some((t) => t.hi !== undefined), "limits in the tag list");
      }
      assert.equal(addresses.get("oven-01")!.area, "paint-shop");
    } finally {
      await late.client.endAsync();
    }
  });

  it("publishes telemetry every scan with seq increasing by exactly one per device", async () => {
    await waitFor("30 telemetry messages per PLC", () => [...addresses.keys()].every((d) => seqs(d).length >= 30), 15_000);
    for (const device of addresses.keys()) {
      const s = seqs(device);
      for (let i = 1; i < s.length; i++) assert.equal(s[i], s[i - 1] + 1, `${device}: seq ${s[i - 1]} then ${s[i]}`);
      const last = telemetry(device).at(-1)!;
      assert.equal(last.values.state, "running");
      assert.ok(Object.keys(last.values).length >= 5);
    }
    const ts = telemetry("pump-01").map((t) => t.ts);
    const gaps = ts.slice(1).map((t, i) => t - ts[i]);
    assert.ok(gaps.every((g) => g >= 50 && g <= 400), `scan period ≈ 100 ms: ${gaps.join(",")}`);
  });

  it("acknowledges commands on the cmd topic: accepted setpoints take effect, bad ones are rejected with a reason", async () => {
    await sendCommand("oven-01", { id: `${run}-sp`, action: "setpoint", tag: "temp_sp", value: 170, ts: Date.now() });
    const ack = await waitFor("the setpoint ack", () => ackFor(`${run}-sp`), 5_000);
    assert.equal(ack.status, "accepted");
    await waitFor("the new setpoint in the telemetry", () => telemetry("oven-01").at(-1)?.values.temp_sp === 170, 5_000);
    await sendCommand("oven-01", { id: `${run}-bad`, action: "setpoint", tag: "temp_sp", value: 999 });
    const bad = await waitFor("the rejection", () => ackFor(`${run}-bad`), 5_000);
    assert.equal(bad.status, "rejected");
    assert.match(bad.reason!, /outside the engineering range/);
    await sendCommand("oven-01", { id: `${run}-malformed`, action: "explode" });
    const malformed = await waitFor("the malformed command's rejection", () => ackFor(`${run}-malformed`), 5_000);
    assert.match(malformed.reason!, /action must be one of/);
  });

  it("stops on command, winds down, and still acknowledges setpoint changes while stopped", async () => {
    await sendCommand("pump-01", { id: `${run}-stop`, action: "stop", ts: Date.now() });
    assert.equal((await waitFor("the stop ack", () => ackFor(`${run}-stop`), 5_000)).status, "accepted");
    await waitFor("the pump to stop", () => telemetry("pump-01").at(-1)?.values.state === "stopped", 20_000);
    assert.ok(telemetry("pump-01").some((t) => t.values.state === "stopping"), "passes through stopping");
    await sendCommand("pump-01", { id: `${run}-sp2`, action: "setpoint", tag: "valve_sp", value: 80, ts: Date.now() });
    assert.equal((await waitFor("the setpoint ack while stopped", () => ackFor(`${run}-sp2`), 5_000)).status, "accepted");
    // The same code path through the Moleculer action: the ack is returned and published.
    const started = await broker!.call<CommandAck, object>("plc-simulator.command", { device: "pump-01", action: "start" });
    assert.equal(started.status, "accepted");
    await waitFor("the action's ack on MQTT", () => ackFor(started.id), 5_000);
    await waitFor("the pump running again", () => telemetry("pump-01").at(-1)?.values.state === "running", 20_000);
    const list = await broker!.call<PlcListing[], object>("plc-simulator.list", {});
    const pump = list.find((p) => p.device === "pump-01")!;
    assert.equal(pump.runState, "running");
    assert.equal(pump.machineType, "pump");
    assert.ok(pump.connected && typeof pump.seq === "number" && pump.seq > 30);
  });

  it("injects a fault: returns its ground truth, publishes it on the ground-truth topic, and the signal shows it", async () => {
    const truth = await broker!.call<GroundTruthRecord, object>("plc-simulator.injectFault", { device: "press-01", type: "offset", tag: "oil_temp", durationMs: 20_000, severity: 1 });
    assert.equal(truth.device, "press-01");
    assert.deepEqual(truth.tags, ["oil_temp"]);
    assert.equal(truth.end - truth.start, 20_000);
    const published = await waitFor("the ground-truth message", () => messages.find((m) => m.topic === groundTruthTopic(root, address("press-01")) && (JSON.parse(m.payload) as GroundTruthRecord).faultId === truth.faultId), 5_000);
    assert.equal(published.retain, false);
    assert.deepEqual(JSON.parse(published.payload), truth);
    assert.equal(parseDeviceTopic(root, groundTruthTopic(root, address("press-01"))), null, "outside the device topics the pipeline subscribes to");
    await waitFor("oil_temp past hi", () => {
      const last = telemetry("press-01").at(-1);
      return typeof last?.values.oil_temp === "number" && last.values.oil_temp > 58;
    }, 5_000);
    const list = await broker!.call<PlcListing[], object>("plc-simulator.list", {});
    assert.deepEqual(list.find((p) => p.device === "press-01")!.activeFaults, [truth]);
    assert.deepEqual(await broker!.call("plc-simulator.groundTruth", { device: "press-01" }), [truth]);
    const cleared = await broker!.call<GroundTruthRecord[], object>("plc-simulator.clearFaults", { device: "press-01" });
    assert.equal(cleared.length, 1);
    assert.ok(cleared[0].end < truth.end);
    await waitFor("the corrected record", () => messages.filter((m) => m.topic === groundTruthTopic(root, address("press-01"))).length >= 2, 5_000);
  });

  it("answers 404 for a PLC this replica does not own and 422 for a fault that cannot happen", async () => {
    await assert.rejects(broker!.call("plc-simulator.injectFault", { device: "press-99", type: "offset", durationMs: 1000, severity: 1 }), (err: Error) => {
      assert.ok(err instanceof Errors.MoleculerClientError);
      assert.equal((err as Errors.MoleculerClientError).code, 404);
      return true;
    });
    await assert.rejects(broker!.call("plc-simulator.injectFault", { device: "oven-01", type: "leak", durationMs: 1000, severity: 1 }), (err: Error) => {
      assert.equal((err as Errors.MoleculerClientError).code, 422);
      assert.match(err.message, /leak is not a fault of a oven/);
      return true;
    });
    await assert.rejects(broker!.call("plc-simulator.injectFault", { device: "oven-01", type: "offset", durationMs: 1000, severity: 3 }), (err: Error) => {
      assert.equal((err as Errors.MoleculerClientError).code, 422, "parameter validation");
      return true;
    });
  });

  it("reports MQTT health: all PLC clients connected", async () => {
    const health = await broker!.call<ServiceHealth, object>("plc-simulator.health", {});
    assert.equal(health.ok, true);
    assert.deepEqual(health.checks.mqtt, { ok: true, detail: "3 of 3 PLCs connected to the MQTT broker" });
  });

  it("on a lost connection: the Last Will says offline, then the PLC returns, announces itself and resends its buffer in order", async () => {
    const oven = address("oven-01");
    const before = seqs("oven-01").length;
    const births = of("state", "oven-01").length;
    // Taking over the PLC's client id drops its connection, as a network failure would.
    const intruder = await connectMqtt(env, { clientId: plcClientId(root, oven), protocolVersion: 5, reconnectPeriod: 0 });
    await waitFor("the Last Will", () => of("state", "oven-01").slice(births).some((m) => (JSON.parse(m.payload) as StatePayload).state === "offline"), 10_000);
    await waitFor("the PLC back online", () => of("state", "oven-01").slice(births).some((m) => (JSON.parse(m.payload) as StatePayload).state === "online"), 15_000);
    await intruder.endAsync(true);
    await waitFor("more telemetry after the reconnect", () => seqs("oven-01").length >= before + 30, 15_000);
    // At least once: a message in flight at the drop may arrive twice, but none is missing and the order holds.
    const s = seqs("oven-01");
    const unique = [...new Set(s)];
    assert.deepEqual(unique, [...unique].sort((a, b) => a - b), "in order");
    for (let i = 1; i < unique.length; i++) assert.equal(unique[i], unique[i - 1] + 1, `no gap at ${unique[i - 1]}`);
  });

  it("on stop publishes an orderly retained offline state for every PLC", async () => {
    await broker!.stop();
    broker = undefined;
    const late = await listen(env, `${run}-after`, `${root}/+/+/+/+/state`);
    try {
      const states = await waitFor("three retained states", () => (late.messages.length >= 3 ? late.messages : undefined), 5_000);
      for (const m of states) {
        assert.equal(m.retain, true);
        assert.equal((JSON.parse(m.payload) as StatePayload).state, "offline");
      }
    } finally {
      await late.client.endAsync();
    }
  });
});
