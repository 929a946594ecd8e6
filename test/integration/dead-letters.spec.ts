// The dead-letter queue against the real servers: MQTT in, dead letters stored from Kafka into
// MongoDB, listed and replayed over the REST API, replayed samples stored exactly once.
import { strict as assert } from "node:assert";
import type { ServiceBroker } from "moleculer";
import { MongoClient } from "mongodb";
import type { MqttClient } from "mqtt";
import type { BulkReplayResult, DeadLetterList, DeadLettersStats } from "../../services/dead-letters.service.ts";
import type { HistorianStats } from "../../services/historian.service.ts";
import type { ChunkDocument } from "../../src/historian/chunks.ts";
import type { DeadLetterDocument } from "../../src/dead-letters/records.ts";
import type { ReplayResult } from "../../src/dead-letters/replay.ts";
import { deviceTopic, KAFKA_TOPICS } from "../../src/shared/topics.ts";
import type { IngestOutcome, StatePayload } from "../../src/shared/types.ts";
import { apiFetch, cleanupRun, connectMqtt, isolatedEnv, kafkaClient, startServices, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

const address = { site: "plant1", area: "paint-shop", line: "line1", device: "ghost-01" };
const TAGS: StatePayload["tags"] = [{ name: "temp", unit: "°C", type: "number", min: 0, max: 300 }];

describe("dead letters: store, list, inspect, replay exactly once", function () {
  this.timeout(120_000);
  let env: TestSystemEnv;
  let broker: ServiceBroker;
  let plc: MqttClient;
  let mongo: MongoClient;
  let api: string;
  const t0 = Date.now() - 30_000;

  async function request<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await apiFetch(`${api}${path}`, { method, headers: body === undefined ? {} : { "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as T };
  }

  async function list(query: string): Promise<DeadLetterList> {
    const { status, body } = await request<DeadLetterList>("GET", `/dead-letters?${query}`);
    assert.equal(status, 200, JSON.stringify(body));
    return body;
  }

  async function history(device: string): Promise<number[]> {
    // Raw points (a span of minutes): each carries its seq.
    const { body } = await request<{ points: { seq?: number }[] }>("GET", `/devices/${device}/history?tag=temp&from=${t0 - 60_000}&to=${Date.now()}`);
    return body.points.map((p) => p.seq ?? NaN);
  }

  /** How often each seq of a device is stored in MongoDB, over all its chunks (what history cannot show: it de-duplicates). */
  async function storedSeqs(device: string): Promise<Map<number, number>> {
    const counts = new Map<number, number>();
    for (const chunk of await mongo.db().collection<ChunkDocument>("telemetry").find({ device }).toArray()) {
      for (const seq of chunk.seq) counts.set(seq, (counts.get(seq) ?? 0) + 1);
    }
    return counts;
  }

  /** Waits until the historian has written every buffered sample, then returns the device's stored counts. */
  async function flushedSeqs(device: string, expected: number[]): Promise<Map<number, number>> {
    return waitFor(`seqs ${expected.join(",")} of ${device} written`, async () => {
      const stats = await broker.call<HistorianStats, object>("historian.stats", {});
      const counts = await storedSeqs(device);
      return stats.buffered === 0 && expected.every((seq) => counts.has(seq)) ? counts : undefined;
    }, 60_000, 250);
  }

  async function birth(device: string): Promise<void> {
    const payload: StatePayload = { state: "online", ts: Date.now(), machineType: "oven", tags: TAGS };
    await plc.publishAsync(deviceTopic(env.MQTT_TOPIC_ROOT, { ...address, device }, "state"), JSON.stringify(payload), { qos: 1, retain: true });
    await waitFor(`the birth of ${device} to register it`, () => broker.call("devices.get", { id: device }).then(() => true), 15_000);
  }

  before(async () => {
    // Short windows and grace, so the historian writes replayed samples within the test.
    env = await isolatedEnv("dlq", { HISTORIAN_BUCKET_MS: "5000", HISTORIAN_SEAL_GRACE_MS: "500" });
    api = `http://127.0.0.1:${env.API_PORT}/api`;
    broker = await startServices(env, ["devices", "preprocessor", "historian", "dead-letters", "api"]);
    plc = await connectMqtt(env, { clientId: `${env.MOLECULER_NAMESPACE}-plc` });
    mongo = new MongoClient(env.MONGO_URL);
  });

  after(async () => {
    await plc?.endAsync();
    await broker?.stop();
    await mongo?.close();
    if (env) await cleanupRun(env);
  });

  it("stores what the preprocessor and the historian dead-letter, listed newest first with reasons", async () => {
    const topic = deviceTopic(env.MQTT_TOPIC_ROOT, address, "telemetry");
    for (let seq = 1; seq <= 5; seq++) await plc.publishAsync(topic, JSON.stringify({ ts: t0 + seq * 1000, seq, values: { temp: 180 + seq } }), { qos: 1 });
    await plc.publishAsync(topic, "{not json", { qos: 1 });
    await plc.publishAsync(topic, JSON.stringify({ ts: t0 + 6000, seq: "six", values: { temp: 1 } }), { qos: 1 });
    const producer = kafkaClient().producer();
    await producer.connect();
    await producer.send({ topic: env.KAFKA_TOPIC_PREFIX + KAFKA_TOPICS.telemetry, messages: [{ key: "x", value: "garbage on the telemetry topic" }] });
    await producer.disconnect();

    const all = await waitFor("8 stored dead letters", async () => {
      const page = await list("limit=100");
      return page.total === 8 ? page : undefined;
    }, 30_000, 250);
    assert.deepEqual(all.items.map((d) => d.at), [...all.items.map((d) => d.at)].sort((a, b) => b - a), "newest first");
    assert.ok(all.items.every((d) => !("payload" in d)), "the list leaves payloads out");

    const ghost = await list(`device=${address.device}`);
    assert.equal(ghost.total, 7);
    const codes = ghost.items.map((d) => d.code).sort();
    assert.deepEqual(codes, ["invalid-payload", ...Array(6).fill("unknown-device")]);
    assert.ok(ghost.items.filter((d) => d.code === "unknown-device").every((d) => /unknown device "ghost-01"/.test(d.reason) && d.source === topic && d.status === "new"));

    const malformed = await list("reason=invalid-payload");
    assert.equal(malformed.total, 1);
    assert.match(malformed.items[0].reason, /not UTF-8 JSON/);
    const one = await request<DeadLetterDocument>("GET", `/dead-letters/${malformed.items[0]._id}`);
    assert.equal(one.status, 200);
    assert.deepEqual([one.body.payload, one.body.encoding, one.body.device, one.body.origin], ["{not json", "utf8", "ghost-01", "mqtt"]);

    const fromHistorian = await list("reason=invalid-record");
    assert.equal(fromHistorian.total, 1);
    assert.match(fromHistorian.items[0].source, /scada\.telemetry\.v1\/\d+@\d+$/);
    assert.equal(fromHistorian.items[0].origin, "kafka");

    const range = await list(`from=${Date.now() + 60_000}`);
    assert.equal(range.total, 0, "a time range in the future matches nothing");
  });

  it("answers bad parameters with 400 naming the field, unknown ids with 404", async () => {
    const cases: [string, string][] = [
      ["/dead-letters?status=bogus", "status"],
      ["/dead-letters?reason=bad", "reason"],
      ["/dead-letters?device[$ne]=x", "device"],
      ["/dead-letters?from=yesterday", "from"],
      ["/dead-letters?limit=5000", "limit"],
    ];
    for (const [path, field] of cases) {
      const { status, body } = await request<{ error: { fields?: string[] } }>("GET", path);
      assert.equal(status, 400, path);
      assert.deepEqual(body.error.fields, [field], path);
    }
    assert.equal((await request("GET", "/dead-letters/nope")).status, 400);
    assert.equal((await request("GET", "/dead-letters/t.scada.deadletter.v1:0:999999")).status, 404);
    assert.equal((await request("POST", "/dead-letters/t.scada.deadletter.v1:0:999999/replay")).status, 404);
    assert.equal((await request("POST", "/dead-letters/replay", { status: { $ne: "replayed" } })).status, 400);
  });

  it("replays the unknown device's telemetry once it is registered: stored exactly once, twice replayed or not", async () => {
    await birth(address.device);
    const first = await request<BulkReplayResult>("POST", "/dead-letters/replay", { device: address.device, reason: "unknown-device" });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.matched, 6);
    assert.deepEqual(first.body.counts, { replayed: 5, rejected: 1, "not-replayable": 0, "already-replayed": 0, "in-progress": 0, failed: 0 });
    const rejected = first.body.items.find((r) => r.outcome === "rejected");
    assert.equal(rejected?.code, "invalid-telemetry");
    assert.match(rejected?.reason ?? "", /seq must be/, "the new reason, not the old one");

    await waitFor("5 replayed samples in history", async () => (await history(address.device)).length === 5, 30_000, 250);
    assert.deepEqual(await history(address.device), [1, 2, 3, 4, 5]);

    const second = await request<BulkReplayResult>("POST", "/dead-letters/replay", { device: address.device, reason: "unknown-device" });
    assert.deepEqual(second.body.counts, { replayed: 0, rejected: 1, "not-replayable": 0, "already-replayed": 5, "in-progress": 0, failed: 0 });
    const stillRejected = await request<DeadLetterDocument>("GET", `/dead-letters/${rejected?.id}`);
    assert.deepEqual([stillRejected.body.status, stillRejected.body.attempts, stillRejected.body.lastCode], ["rejected", 2, "invalid-telemetry"]);
    const replayed = await list(`device=${address.device}&status=replayed`);
    assert.equal(replayed.total, 5);
    assert.ok(replayed.items.every((d) => d.replayedBy === "admin" && d.attempts === 1));

    // The historian's own de-duplication, checked rather than assumed: the preprocessor forwards
    // one of them again (bypassing the claim), then a new sample follows it on the same partition.
    const again = await broker.call<IngestOutcome, object>("preprocessor.replay", { topic: replayed.items[0].source, payload: (await request<DeadLetterDocument>("GET", `/dead-letters/${replayed.items[0]._id}`)).body.payload, encoding: "utf8" });
    assert.deepEqual(again, { ok: true });
    await plc.publishAsync(deviceTopic(env.MQTT_TOPIC_ROOT, address, "telemetry"), JSON.stringify({ ts: t0 + 7000, seq: 7, values: { temp: 187 } }), { qos: 1 });
    const counts = await flushedSeqs(address.device, [1, 2, 3, 4, 5, 7]);
    assert.deepEqual([...counts].sort(([a], [b]) => a - b), [[1, 1], [2, 1], [3, 1], [4, 1], [5, 1], [7, 1]], "every sample stored once");
    assert.deepEqual(await history(address.device), [1, 2, 3, 4, 5, 7]);
  });

  it("two operators replaying one dead letter at once forward it once", async () => {
    const device = "ghost-02";
    await plc.publishAsync(deviceTopic(env.MQTT_TOPIC_ROOT, { ...address, device }, "telemetry"), JSON.stringify({ ts: t0 + 1000, seq: 1, values: { temp: 150 } }), { qos: 1 });
    const letter = await waitFor("ghost-02's dead letter", async () => (await list(`device=${device}`)).items[0], 30_000, 250);
    await birth(device);
    const answers = await Promise.all([1, 2, 3].map(() => request<ReplayResult>("POST", `/dead-letters/${letter._id}/replay`)));
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200]);
    assert.deepEqual(answers.map((a) => a.body.outcome).sort(), ["already-replayed", "already-replayed", "replayed"]);
    const counts = await flushedSeqs(device, [1]);
    assert.deepEqual([...counts], [[1, 1]]);
  });

  it("answers rejected for a malformed payload and not-replayable for an unreadable Kafka record", async () => {
    const [malformed] = (await list("reason=invalid-payload")).items;
    const answer = await request<ReplayResult>("POST", `/dead-letters/${malformed._id}/replay`);
    assert.equal(answer.body.outcome, "rejected");
    assert.match(answer.body.reason ?? "", /not UTF-8 JSON/);
    const stored = await request<DeadLetterDocument>("GET", `/dead-letters/${malformed._id}`);
    assert.deepEqual([stored.body.status, stored.body.lastCode], ["rejected", "invalid-payload"]);

    const [unreadable] = (await list("reason=invalid-record")).items;
    assert.equal((await request<ReplayResult>("POST", `/dead-letters/${unreadable._id}/replay`)).body.outcome, "not-replayable");

    const { body: stats } = await request<DeadLettersStats>("GET", "/dead-letters/stats");
    assert.ok(stats.stored >= 9, `stored ${stats.stored}`);
    assert.equal(stats.replays.replayed, 6);
    assert.equal(stats.replays["not-replayable"], 1);
  });
});
