// The live stream against the real servers: api + devices + historian in one broker (a second api
// replica in a second broker), records produced to the run's Kafka topics, SSE clients over fetch.
import { strict as assert } from "node:assert";
import type { Producer } from "kafkajs";
import type { ServiceBroker } from "moleculer";
import type { StreamStats } from "../../mixins/live-stream.mixin.ts";
import { kafkaTopic } from "../../src/shared/topics.ts";
import type { AlarmTransition, DeviceAddress, LatestValue, TelemetryRecord } from "../../src/shared/types.ts";
import { openEventStream, type EventStream, type ReceivedMessage } from "../../src/stream/sse-client.ts";
import { cleanupRun, freePort, isolatedEnv, kafkaClient, startServices, testToken, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

const DEVICES: DeviceAddress[] = [
  { site: "plant1", area: "mixing", line: "line1", device: "mixer-01" },
  { site: "plant1", area: "mixing", line: "line1", device: "mixer-02" },
  { site: "plant1", area: "paint-shop", line: "line2", device: "oven-01" },
  { site: "plant2", area: "utilities", line: "line1", device: "pump-01" },
];
const STREAM_ENV = { STREAM_QUEUE_MAX: "300", STREAM_HEARTBEAT_MS: "300", STREAM_STALL_TIMEOUT_MS: "120000" };
const REPLICA_ENV = { STREAM_QUEUE_MAX: "50", STREAM_HEARTBEAT_MS: "15000", STREAM_STALL_TIMEOUT_MS: "1500" };

function telemetry(address: DeviceAddress, seq: number, extraTags = 0): TelemetryRecord {
  const values: TelemetryRecord["values"] = { temperature: { v: 20 + seq / 100, q: "good" }, running: { v: true, q: "good" } };
  for (let i = 0; i < extraTags; i++) values[`tag_${i}`] = { v: seq + i, q: "good" };
  const now = Date.now();
  return { ...address, ts: now, seq, receivedAt: now, values };
}

/** The stream-relevant settings are read from the environment when the api service is created. */
async function withStreamEnv<T>(settings: Record<string, string>, run: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(settings).map((k) => [k, process.env[k]]));
  Object.assign(process.env, settings);
  try {
    return await run();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

const live = (stream: EventStream, event = "telemetry"): ReceivedMessage[] => stream.messages.filter((m) => m.event === event);
/** Telemetry and alarm events: the ones with ids. */
const liveEvents = (stream: EventStream): ReceivedMessage[] => stream.messages.filter((m) => m.event === "telemetry" || m.event === "alarm");
const data = <T>(message: ReceivedMessage): T => JSON.parse(message.data) as T;

describe("live stream (real Kafka and Redis)", function () {
  this.timeout(120_000);
  let env: TestSystemEnv;
  let broker: ServiceBroker;
  let replica: ServiceBroker | undefined;
  let producer: Producer;
  let api: string;
  let replicaApi: string;
  const streams: EventStream[] = [];
  let nextSeq = 1;

  const open = async (base: string, query: string): Promise<EventStream> => {
    const stream = await openEventStream(`${base}/stream?${query}&access_token=${testToken("viewer")}`);
    streams.push(stream);
    return stream;
  };
  const stats = (on: ServiceBroker = broker): Promise<StreamStats> => on.call<StreamStats, Record<string, never>>("api.streamStats", {}, { nodeID: on.nodeID });
  /** `count` alarm transitions of about 6 KB for one device, `value` numbering them from `first`. */
  async function produceAlarms(device: string, first: number, count: number): Promise<void> {
    const message = "x".repeat(6000);
    for (let sent = 0; sent < count; sent += 100) {
      const batch = Array.from({ length: Math.min(100, count - sent) }, (_, i): AlarmTransition => {
        const value = first + sent + i;
        return { device, tag: "temperature", kind: "hi", state: value % 2 ? "active" : "cleared", value, limit: 90, alarmId: `${device}:temperature:hi`, ts: Date.now(), message };
      });
      await producer.send({ topic: kafkaTopic(env.KAFKA_TOPIC_PREFIX, "alarms"), messages: batch.map((a) => ({ key: device, value: JSON.stringify(a) })) });
    }
  }
  async function produce(records: TelemetryRecord[]): Promise<void> {
    await producer.send({ topic: kafkaTopic(env.KAFKA_TOPIC_PREFIX, "telemetry"), messages: records.map((r) => ({ key: r.device, value: JSON.stringify(r) })) });
  }

  before(async () => {
    env = await isolatedEnv("stream");
    api = `http://127.0.0.1:${env.API_PORT}/api`;
    broker = await withStreamEnv(STREAM_ENV, () => startServices(env, ["api", "devices", "historian"]));
    producer = kafkaClient().producer();
    await producer.connect();
    for (const d of DEVICES) await broker.call("devices.register", { ...d, state: "online", ts: Date.now(), machineType: "test", tags: [] });
    await waitFor("the live-stream consumer to join", async () => (await stats()).consumer.state === "joined", 60_000);
    // Latest values in Redis for every device, before any client connects.
    await produce(DEVICES.map((d) => telemetry(d, nextSeq)));
    nextSeq++;
    for (const d of DEVICES) {
      await waitFor(`latest values of ${d.device}`, async () => {
        const latest = await broker.call<{ values: Record<string, LatestValue> }, { id: string }>("historian.latest", { id: d.device });
        return Object.keys(latest.values).length > 0;
      });
    }
  });

  after(async () => {
    for (const stream of streams) stream.close();
    await producer?.disconnect();
    await replica?.stop();
    await broker?.stop();
    if (env) await cleanupRun(env);
  });

  it("answers 400 naming the parameter for a bad filter or kind, and reports the consumer in health", async () => {
    for (const [query, field, message] of [
      ["", "filter", /filter is required/],
      ["filter=plant1/%23/line2", "filter", /# before its last level/],
      ["filter=plant1/li%2Bne/%23", "filter", /wildcard inside/],
      ["filter=plant1", "filter", /matches no device/],
      [Array.from({ length: 21 }, (_, i) => `filter=s${i}/%23`).join("&"), "filter", /at most 20/],
      ["filter=%23&kinds=telemetry,events", "kinds", /"events"/],
    ] as const) {
      const stream = await open(api, query);
      assert.equal(stream.status, 400, query);
      const body = stream.error as { error: { message: string; fields: string[] } };
      assert.deepEqual(body.error.fields, [field], query);
      assert.match(body.error.message, message, query);
    }
    const health = await broker.call<{ checks: Record<string, { ok: boolean }> }, Record<string, never>>("api.health", {}, { nodeID: broker.nodeID });
    assert.deepEqual(health.checks.stream, { ok: true });
  });

  it("sends the matching devices' latest values first, then only their live records and alarms", async () => {
    const line1 = await open(api, "filter=plant1/%2B/line1/%23");
    const ovenTelemetry = await open(api, `filter=${encodeURIComponent(`${env.MQTT_TOPIC_ROOT}/plant1/+/+/oven-01/telemetry`)}`);
    for (const stream of [line1, ovenTelemetry]) await waitFor("the snapshot", () => live(stream, "snapshot-complete").length === 1);

    const first = line1.messages.slice(0, 3).map((m) => m.event);
    assert.deepEqual(first, ["snapshot", "snapshot", "snapshot-complete"], "snapshot first");
    const snapshot = live(line1, "snapshot").map((m) => data<DeviceAddress & { values: Record<string, LatestValue> }>(m));
    assert.deepEqual(snapshot.map((s) => s.device).sort(), ["mixer-01", "mixer-02"]);
    for (const s of snapshot) {
      assert.equal(s.site, "plant1");
      assert.equal(s.line, "line1");
      assert.equal(s.values.temperature.v, 20.01, "the value stored in Redis");
      assert.equal(s.values.temperature.q, "good");
    }
    assert.deepEqual(data(live(line1, "snapshot-complete")[0]), { devices: 2 });
    assert.deepEqual(live(ovenTelemetry, "snapshot").map((m) => data<DeviceAddress>(m).device), ["oven-01"]);

    const seq = nextSeq++;
    await produce(DEVICES.map((d) => telemetry(d, seq)));
    const alarm = (device: string): AlarmTransition => ({ device, tag: "temperature", kind: "hi", state: "active", value: 99, limit: 90, alarmId: `${device}:temperature:hi`, ts: Date.now() });
    await producer.send({ topic: kafkaTopic(env.KAFKA_TOPIC_PREFIX, "alarms"), messages: ["mixer-01", "oven-01", "pump-01"].map((d) => ({ key: d, value: JSON.stringify(alarm(d)) })) });

    // Everything produced went through this replica's fan-out, and each client holds all it was sent.
    await waitFor("the fan-out of every record", async () => {
      const s = await stats();
      if (s.records.telemetry < DEVICES.length * 2 || s.records.alarms < 3) return false;
      return s.perClient.every((c) => {
        const stream = c.filters[0].startsWith("plant1/+/line1") ? line1 : ovenTelemetry;
        return liveEvents(stream).length === c.sent;
      });
    });
    const line1Live = liveEvents(line1);
    assert.deepEqual(
      line1Live.map((m) => `${m.event}:${data<{ device: string }>(m).device}`).sort(),
      ["alarm:mixer-01", "telemetry:mixer-01", "telemetry:mixer-02"],
      "line 1's devices only, telemetry and alarms",
    );
    assert.deepEqual(line1Live.map((m) => Number(m.id)), [1, 2, 3], "consecutive ids");
    const record = data<TelemetryRecord>(live(line1).find((m) => data<TelemetryRecord>(m).device === "mixer-01") as ReceivedMessage);
    assert.equal(record.seq, seq);
    assert.deepEqual(record.values.temperature, { v: 20 + seq / 100, q: "good" }, "the normalized record as on Kafka");
    assert.deepEqual(
      liveEvents(ovenTelemetry).map((m) => `${m.event}:${data<{ device: string }>(m).device}`),
      ["telemetry:oven-01"],
      "the kind level keeps oven-01's alarm out",
    );
    await waitFor("a heartbeat comment", () => line1.comments() >= 2);
  });

  it("counts drops for a slow reader while a fast reader gets everything and ingest does not wait", async () => {
    const device = DEVICES[0];
    const query = "filter=plant1/mixing/line1/mixer-01&kinds=alarms";
    const fast = await open(api, query);
    const slow = await open(api, query);
    for (const stream of [fast, slow]) await waitFor("the snapshot", () => live(stream, "snapshot-complete").length === 1);
    slow.pause();
    // 3000 alarm records of 6 KB: 18 MB, well past what the loopback socket buffers hold (about
    // 7 MB) plus the queue. Alarms, so the in-process historian is not loaded with them.
    const count = 3000;
    await produceAlarms(device.device, 1, count);

    await waitFor("the fast reader to receive every record", () => live(fast, "alarm").some((m) => data<AlarmTransition>(m).value === count), 60_000);
    const fastValues = live(fast, "alarm").map((m) => data<AlarmTransition>(m).value);
    assert.deepEqual(fastValues, Array.from({ length: count }, (_, i) => i + 1), "every record, in order, for the fast reader");
    assert.equal(live(fast, "dropped").length, 0);
    const [fastStats, during] = (await stats()).perClient.filter((c) => c.filters[0] === "plant1/mixing/line1/mixer-01").sort((a, b) => a.id - b.id);
    assert.equal(fastStats.dropped, 0, "the fast reader lost nothing");
    assert.ok(during.dropped > 0, "the slow reader's queue is dropping");
    assert.ok(during.stalledSince !== null, "its socket buffer is full");
    // Ingest does not wait for the slow reader: a new value reaches the historian while it is stalled.
    const seq = nextSeq++;
    await produce([telemetry(device, seq)]);
    await waitFor("the historian's latest value to be the new record's", async () => {
      const latest = await broker.call<{ values: Record<string, LatestValue> }, { id: string }>("historian.latest", { id: device.device });
      return latest.values.temperature?.v === 20 + seq / 100;
    });
    assert.ok((await stats()).perClient.find((c) => c.id === during.id)?.stalledSince !== null, "the slow reader is still stalled");

    slow.resume();
    await waitFor("the slow reader to catch up", async () => {
      const s = (await stats()).perClient.find((c) => c.id === during.id);
      return s !== undefined && s.queued === 0 && live(slow, "alarm").length === s.sent;
    });
    const slowStats = (await stats()).perClient.find((c) => c.id === during.id);
    assert.ok(slowStats);
    const droppedEvents = live(slow, "dropped").map((m) => data<{ dropped: number; total: number }>(m));
    const announced = droppedEvents.reduce((sum, d) => sum + d.dropped, 0);
    assert.ok(announced > 0, "the slow reader was told about drops");
    assert.equal(announced, slowStats.dropped, "announced drops are the counted drops");
    assert.equal(droppedEvents.at(-1)?.total, slowStats.dropped);
    const received = live(slow, "alarm");
    assert.equal(received.length + announced, count, "every record was either delivered or counted as dropped");
    const ids = received.map((m) => Number(m.id));
    assert.equal(ids.at(-1), count, "ids count every matched event");
    const gaps = ids.reduce((sum, id, i) => sum + (id - (i === 0 ? 0 : ids[i - 1]) - 1), 0);
    assert.equal(gaps, announced, "the id gaps are the dropped events");
    const values = received.map((m) => data<AlarmTransition>(m).value);
    assert.ok(values.every((v, i) => i === 0 || v > values[i - 1]), "what arrives stays in order");
    assert.equal(values.at(-1), count, "drop-oldest keeps the newest");
    const totals = await stats();
    assert.ok(totals.eventsDropped >= announced);
    assert.ok(totals.eventsSent >= count + received.length);
  });

  it("runs a consumer per replica and disconnects a client that stays stalled, the other replica unaffected", async () => {
    const port = String(await freePort());
    replica = await withStreamEnv(REPLICA_ENV, () => startServices({ ...env, API_PORT: port, NODE_ID: `${env.MOLECULER_NAMESPACE}-api2` }, ["api"]));
    const second = replica;
    replicaApi = `http://127.0.0.1:${port}/api`;
    await waitFor("the replica's consumer to join", async () => (await stats(second)).consumer.state === "joined", 60_000);
    assert.notEqual((await stats()).consumer.groupId, (await stats(second)).consumer.groupId, "one consumer group per replica");

    const query = "filter=plant1/%2B/%2B/mixer-02&kinds=alarms";
    const stalled = await open(replicaApi, query);
    const watcher = await open(api, query);
    for (const stream of [stalled, watcher]) await waitFor("the snapshot", () => live(stream, "snapshot-complete").length === 1);
    assert.deepEqual(live(stalled, "snapshot").map((m) => data<DeviceAddress>(m).device), [], "alarms only: no latest values");
    stalled.pause();
    let produced = 0;
    // Keep records coming until the stalled client is cut off (its buffer full for 1.5 s).
    await waitFor(
      "the stalled client's disconnection",
      async () => {
        await produceAlarms("mixer-02", produced + 1, 500);
        produced += 500;
        return (await stats(second)).slowDisconnects === 1;
      },
      60_000,
      200,
    );
    const replicaStats = await stats(second);
    assert.equal(replicaStats.devicesKnown, DEVICES.length, "the replica placed the devices from the registry (its consumer started after their telemetry)");
    assert.equal(replicaStats.clients, 0);
    assert.ok(replicaStats.eventsDropped > 0);
    stalled.resume();
    await stalled.done;
    assert.equal(stalled.ended, true, "the connection was closed by the server");
    await waitFor("the other replica's client to receive everything", () => live(watcher, "alarm").length === produced, 60_000);
    assert.equal((await stats()).slowDisconnects, 0);
  });

  it("ends open streams with a close event when the api stops", async () => {
    const stream = await open(replicaApi, "filter=%23");
    await waitFor("the snapshot", () => live(stream, "snapshot-complete").length === 1);
    const started = Date.now();
    await replica?.stop();
    replica = undefined;
    assert.ok(Date.now() - started < 5_000, "stopping did not wait for the open stream");
    await stream.done;
    assert.equal(live(stream, "close").length, 1);
  });
});
