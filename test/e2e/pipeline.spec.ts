// End to end: the whole system as a user starts it (node src/main.ts), simulated PLCs publishing
// through Mosquitto, the preprocessor, Kafka, the historian and the detector, checked at the REST API.
import { strict as assert } from "node:assert";
import { ServiceBroker } from "moleculer";
import type { MqttClient } from "mqtt";
import type { Consumer } from "kafkajs";
import { addressOf, deviceTopic } from "../../src/shared/topics.ts";
import type { AlarmDocument, DeadLetterRecord, DeviceDocument, GroundTruthRecord, HistoryPoint, TelemetryPayload } from "../../src/shared/types.ts";
import { cleanupRun, connectMqtt, getJson, isolatedEnv, kafkaClient, startPlantwire, waitHealthy, type RunningProcess, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

describe("plantwire end to end", function () {
  this.timeout(180_000);
  let env: TestSystemEnv;
  let system: RunningProcess;
  let api: string;
  let devices: DeviceDocument[];
  let observer: MqttClient;
  const sent = new Map<string, number[]>();

  before(async () => {
    env = await isolatedEnv("e2e", { PLC_COUNT: "5", PLC_SCAN_MS: "200" });
    api = `http://127.0.0.1:${env.API_PORT}/api`;
    system = startPlantwire(env);
    await waitHealthy(env, system);
    // Once the pipeline is up, watch what the PLCs publish, to compare with what the historian stores.
    observer = await connectMqtt(env, { clientId: `e2e-observer-${process.pid}` });
    observer.on("message", (topic, payload) => {
      if (!topic.endsWith("/telemetry")) return;
      const device = topic.split("/").at(-2) ?? "";
      try {
        const seqs = sent.get(device) ?? [];
        seqs.push((JSON.parse(payload.toString()) as TelemetryPayload).seq);
        sent.set(device, seqs);
      } catch {
        // The malformed payload this test publishes itself.
      }
    });
    await observer.subscribeAsync(`${env.MQTT_TOPIC_ROOT}/+/+/+/+/telemetry`, { qos: 1 });
    devices = await waitFor("5 registered devices", async () => {
      const { body } = await getJson<{ total: number; devices: DeviceDocument[] }>(`${api}/devices`);
      return body.total === 5 ? body.devices : undefined;
    });
  });

  after(async () => {
    await observer?.endAsync();
    const code = await system?.stop();
    if (env) await cleanupRun(env);
    assert.equal(code, 0, `plantwire did not stop cleanly:\n${system?.output()}`);
  });

  it("lists the simulated PLCs with their tags, units and limits", () => {
    const types = new Set(devices.map((d) => d.machineType));
    assert.ok(types.size >= 3, `expected several machine types, got ${[...types].join(", ")}`);
    for (const device of devices) {
      assert.equal(device.state, "online");
      assert.ok(device.tags.length >= 3, `${device._id} has tags`);
      assert.ok(device.tags.every((t) => typeof t.unit === "string"));
    }
  });

  it("stores every published sample in order, none missing, and serves the latest values", async () => {
    const device = devices[0];
    const tag = device.tags.find((t) => t.type === "number")?.name ?? "";
    // Wait until a run of at least 20 published samples has been stored completely.
    const points = await waitFor("20 stored samples matching the published sequence numbers", async () => {
      const published = sent.get(device._id) ?? [];
      if (published.length < 20) return undefined;
      const { status, body } = await getJson<{ points: HistoryPoint[] }>(`${api}/devices/${device._id}/history?tag=${tag}&from=${Date.now() - 600_000}`);
      assert.equal(status, 200);
      const stored = body.points.map((p) => p.seq);
      return published.slice(0, 20).every((seq) => stored.includes(seq)) ? body.points : undefined;
    }, 60_000, 250);
    const seqs = points.map((p) => p.seq);
    for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1] + 1, `no gap or duplicate at index ${i}: ${seqs.slice(Math.max(0, i - 2), i + 2)}`);
    for (let i = 1; i < points.length; i++) assert.ok(points[i].ts > points[i - 1].ts, "time order");
    const latest = await getJson<{ values: Record<string, { v: unknown; ts: number }> }>(`${api}/devices/${device._id}/latest`);
    assert.equal(latest.status, 200);
    assert.ok(latest.body.values[tag], `latest value of ${tag}`);
    assert.ok(latest.body.values[tag].ts >= points.at(-1)!.ts - 1_000);
  });

  it("raises an alarm at /api/alarms when a PLC is forced past a limit", async () => {
    const device = devices.find((d) => d.tags.some((t) => t.hi !== undefined));
    assert.ok(device, "a device with a high limit");
    const tag = device.tags.find((t) => t.hi !== undefined)!;
    const operator = new ServiceBroker({ namespace: env.MOLECULER_NAMESPACE, nodeID: `e2e-operator-${process.pid}`, transporter: { type: "NATS", options: { url: "nats://127.0.0.1:4222" } }, logger: false });
    await operator.start();
    try {
      await operator.waitForServices(["plc-simulator"], 10_000);
      const truth = await operator.call<GroundTruthRecord, object>("plc-simulator.injectFault", { device: device._id, type: "offset", tag: tag.name, durationMs: 120_000, severity: 1 });
      assert.deepEqual(truth.tags, [tag.name]);
    } finally {
      await operator.stop();
    }
    const alarm = await waitFor(`an active alarm on ${device._id}/${tag.name}`, async () => {
      const { body } = await getJson<{ alarms: AlarmDocument[] }>(`${api}/alarms?state=active&device=${device._id}`);
      return body.alarms.find((a) => a.tag === tag.name && a.kind === "hi");
    }, 60_000, 250);
    assert.ok(alarm.value > (tag.hi as number), `alarm value ${alarm.value} above the limit ${tag.hi}`);
    assert.equal(alarm.limit, tag.hi);
  });

  it("dead-letters a malformed MQTT payload with its reason while the rest keeps flowing", async () => {
    const device = devices[1];
    const topic = deviceTopic(env.MQTT_TOPIC_ROOT, addressOf(device), "telemetry");
    const marker = `{"ts": broken ${Date.now()}`;
    const deadLetters: DeadLetterRecord[] = [];
    const consumer: Consumer = kafkaClient().consumer({ groupId: `${env.MOLECULER_NAMESPACE}.e2e-deadletters` });
    await consumer.connect();
    await consumer.subscribe({ topics: [`${env.KAFKA_TOPIC_PREFIX}scada.deadletter.v1`], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void deadLetters.push(JSON.parse(message.value?.toString() ?? "{}") as DeadLetterRecord) });
    try {
      const publisher = await connectMqtt(env, { clientId: `e2e-bad-${process.pid}` });
      await publisher.publishAsync(topic, marker, { qos: 1 });
      await publisher.endAsync();
      const publishedAfter = (sent.get(device._id) ?? []).length;
      const letter = await waitFor("the dead letter", () => deadLetters.find((d) => d.payload === marker), 30_000);
      assert.equal(letter.source, topic);
      assert.match(letter.reason, /not UTF-8 JSON/);
      // Samples published after the bad one are still stored.
      const tag = device.tags.find((t) => t.type === "number")?.name ?? "";
      await waitFor("samples published after the malformed one to be stored", async () => {
        const later = (sent.get(device._id) ?? []).slice(publishedAfter, publishedAfter + 5);
        if (later.length < 5) return undefined;
        const { body } = await getJson<{ points: HistoryPoint[] }>(`${api}/devices/${device._id}/history?tag=${tag}&from=${Date.now() - 600_000}`);
        const stored = new Set(body.points.map((p) => p.seq));
        return later.every((seq) => stored.has(seq));
      }, 30_000, 250);
    } finally {
      await consumer.disconnect();
    }
  });

  it("answers bad REST parameters with 4xx errors naming the problem", async () => {
    const id = devices[0]._id;
    const badTime = await getJson<{ error: { message: string } }>(`${api}/devices/${id}/history?tag=x&from=yesterday`);
    assert.equal(badTime.status, 400);
    assert.match(badTime.body.error.message, /from must be/);
    const badLimit = await getJson<{ error: { fields: string[] } }>(`${api}/alarms?limit=lots`);
    assert.equal(badLimit.status, 400);
    assert.deepEqual(badLimit.body.error.fields, ["limit"]);
    const injection = await getJson(`${api}/devices?site[$ne]=x`);
    assert.equal(injection.status, 400);
    const unknown = await getJson<{ error: { message: string } }>(`${api}/devices/no-such-plc/latest`);
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error.message, /not registered/);
    const noRoute = await getJson(`${api}/teleport`);
    assert.equal(noRoute.status, 404);
  });

  it("reports every service and server in /api/health", async () => {
    const { status, body } = await getJson<{ status: string; services: Record<string, { ok: boolean }>; servers: Record<string, { ok: boolean }> }>(`${api}/health`);
    assert.equal(status, 200);
    assert.equal(body.status, "ok");
    for (const service of ["devices", "plc-simulator", "preprocessor", "historian", "anomaly-detector", "alarms", "api"]) assert.ok(body.services[service]?.ok, service);
    for (const server of ["kafka", "mongo", "mqtt", "nats", "redis"]) assert.ok(body.servers[server]?.ok, server);
  });
});
