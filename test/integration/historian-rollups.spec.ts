// Rollups, tier selection, export and retention of the historian against Kafka, MongoDB (FerretDB) and the gateway.
import { strict as assert } from "node:assert";
import type { ServiceBroker } from "moleculer";
import { MongoClient } from "mongodb";
import createHistorianService, { type ExportResult, type HistoryResult, type RollupPoint } from "../../services/historian.service.ts";
import type { ChunkDocument } from "../../src/historian/chunks.ts";
import type { RollupDocument } from "../../src/historian/rollups.ts";
import { loadConfig } from "../../src/shared/config.ts";
import { KAFKA_TOPICS } from "../../src/shared/topics.ts";
import type { Quality, TelemetryRecord } from "../../src/shared/types.ts";
import { apiFetch, cleanupRun, isolatedEnv, kafkaClient, startServices, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const address = { site: "plant1", area: "mixing", line: "line1" };
const TAGS = [
  { name: "temp", unit: "C", type: "number" as const },
  { name: "flow", unit: "l/min", type: "number" as const },
  { name: "running", unit: "", type: "boolean" as const },
];

/** A deterministic sample stream: every `stepMs`, temp and flow vary, running flips now and then, some values bad. */
function stream(device: string, from: number, count: number, stepMs: number, seq0 = 0): TelemetryRecord[] {
  return Array.from({ length: count }, (_, i) => {
    const q: Quality = i % 17 === 5 ? "bad" : i % 13 === 0 ? "uncertain" : "good";
    return {
      ...address,
      device,
      ts: from + i * stepMs,
      seq: seq0 + i,
      receivedAt: from,
      values: { temp: { v: 20 + ((i * 7) % 11) + i / 100, q }, flow: { v: (i * 3) % 5, q: "good" }, running: { v: Math.floor(i / 50) % 2 === 0, q: "good" } },
    };
  });
}

/** What a 1 m (or 1 h) rollup of temp must hold, computed straight from the samples (bad ones left out). */
function expectedIntervals(records: TelemetryRecord[], tag: string, intervalMs: number): Map<number, Omit<RollupPoint, "ts">> {
  const out = new Map<number, Omit<RollupPoint, "ts">>();
  for (const r of [...records].sort((a, b) => a.ts - b.ts)) {
    const s = r.values[tag];
    if (!s || s.q === "bad") continue;
    const v = s.v as number;
    const t = Math.floor(r.ts / intervalMs) * intervalMs;
    const a = out.get(t);
    if (!a) out.set(t, { count: 1, sum: v, min: v, max: v, avg: v, first: v, firstTs: r.ts, last: v, lastTs: r.ts });
    else {
      a.count++;
      a.sum += v;
      a.min = Math.min(a.min, v);
      a.max = Math.max(a.max, v);
      a.avg = a.sum / a.count;
      a.last = v;
      a.lastTs = r.ts;
    }
  }
  return out;
}

function assertIntervals(points: RollupPoint[], expected: Map<number, Omit<RollupPoint, "ts">>, what: string): void {
  assert.deepEqual(points.map((p) => p.ts), [...expected.keys()], `${what}: the intervals`);
  for (const p of points) {
    const e = expected.get(p.ts) as Omit<RollupPoint, "ts">;
    assert.deepEqual([p.count, p.min, p.max, p.first, p.firstTs, p.last, p.lastTs], [e.count, e.min, e.max, e.first, e.firstTs, e.last, e.lastTs], `${what} at ${new Date(p.ts).toISOString()}`);
    assert.ok(Math.abs(p.sum - e.sum) < 1e-6 && Math.abs(p.avg - e.avg) < 1e-9, `${what}: sum/avg at ${p.ts}`);
  }
}

async function produce(env: TestSystemEnv, records: TelemetryRecord[]): Promise<void> {
  const producer = kafkaClient().producer();
  await producer.connect();
  for (let i = 0; i < records.length; i += 500) {
    await producer.send({ topic: env.KAFKA_TOPIC_PREFIX + KAFKA_TOPICS.telemetry, messages: records.slice(i, i + 500).map((r) => ({ key: r.device, value: JSON.stringify(r) })) });
  }
  await producer.disconnect();
}

async function withDb<T>(env: TestSystemEnv, fn: (db: ReturnType<MongoClient["db"]>) => Promise<T>): Promise<T> {
  const mongo = new MongoClient(env.MONGO_URL);
  try {
    return await fn(mongo.db());
  } finally {
    await mongo.close();
  }
}

async function docIds(env: TestSystemEnv, collection: string, device: string): Promise<string[]> {
  return withDb(env, async (db) => (await db.collection(collection).find({ device }, { projection: { _id: 1 } }).toArray()).map((d) => String(d._id)).sort());
}

/** How many times each sample (seq) of a device is stored in the raw tier. */
async function rawSeqCounts(env: TestSystemEnv, device: string): Promise<Map<number, number>> {
  const chunks = await withDb(env, (db) => db.collection<ChunkDocument>("telemetry").find({ device }).toArray());
  const counts = new Map<number, number>();
  for (const c of chunks) for (const seq of c.seq) counts.set(seq, (counts.get(seq) ?? 0) + 1);
  return counts;
}

describe("historian rollups, tiers, export and retention against the real servers", function () {
  this.timeout(180_000);
  let env: TestSystemEnv;
  let broker: ServiceBroker;
  const api = () => `http://127.0.0.1:${env.API_PORT}/api`;
  // Two whole hours of yesterday (UTC), so both hours and the day are over and written.
  const day = Math.floor(Date.now() / DAY) * DAY - DAY;
  const h0 = day + 5 * HOUR;
  const past = stream("mixer-01", h0, 2 * 360, 10_000);

  const restartHistorian = async () => {
    await broker.destroyService("historian");
    broker.createService(createHistorianService(loadConfig({ ...process.env, ...env, SERVICES: "historian", LOG_LEVEL: env.LOG_LEVEL ?? "warn" })));
    await broker.waitForServices(["historian"], 30_000);
  };

  const history = (params: Record<string, unknown>) => broker.call<HistoryResult, object>("historian.history", params);

  before(async () => {
    env = await isolatedEnv("hroll", { HISTORIAN_SEAL_GRACE_MS: "1000", HISTORIAN_RETENTION_SWEEP_MS: "1000" });
    broker = await startServices(env, ["devices", "historian", "api"]);
    for (const device of ["mixer-01", "mixer-02"]) await broker.call("devices.register", { ...address, device, state: "online", ts: Date.now(), machineType: "mixer", tags: TAGS });
  });

  after(async () => {
    await broker?.stop();
    if (env) await cleanupRun(env);
  });

  it("builds 1 m and 1 h rollups from what Kafka delivered, equal to aggregates of the raw samples", async () => {
    await produce(env, past);
    await waitFor("both hours' 1 m documents and the day's 1 h document", async () => {
      const [minute, hour] = await Promise.all([docIds(env, "rollups_1m", "mixer-01"), docIds(env, "rollups_1h", "mixer-01")]);
      return minute.length === 2 && hour.length === 1;
    }, 90_000, 500);
    assert.deepEqual(await docIds(env, "rollups_1m", "mixer-01"), [`mixer-01:${h0}:0`, `mixer-01:${h0 + HOUR}:0`].sort());
    assert.deepEqual(await docIds(env, "rollups_1h", "mixer-01"), [`mixer-01:${day}:0`]);

    const range = { id: "mixer-01", from: h0, to: h0 + 2 * HOUR - 1 };
    const minute = await history({ ...range, tag: "temp", points: 200 });
    assert.equal(minute.source, "1m", "7200 s of samples do not fit in 200 points, 120 minutes do");
    assert.ok(minute.kind === "aggregates");
    assertIntervals(minute.points, expectedIntervals(past, "temp", MIN), "1 m temp");
    const hourly = await history({ ...range, tag: "temp", points: 2 });
    assert.equal(hourly.source, "1h");
    assert.ok(hourly.kind === "aggregates");
    assertIntervals(hourly.points, expectedIntervals(past, "temp", HOUR), "1 h temp");
    // `limit` is still accepted as the name of `points`.
    assert.equal((await history({ ...range, tag: "temp", limit: 2 })).source, "1h");

    // A boolean keeps its changes only, at every tier.
    const expectedChanges = past.filter((r, i) => i === 0 || r.values.running.v !== past[i - 1].values.running.v).map((r) => ({ ts: r.ts, v: r.values.running.v }));
    for (const points of [10_000, 200, 2]) {
      const running = await history({ ...range, tag: "running", points: Math.max(points, expectedChanges.length) });
      assert.ok(running.kind === "changes", `changes at ${running.source}`);
      assert.deepEqual(running.points, expectedChanges, `running's change points from ${running.source}`);
    }
    // A 5-year span is accepted and answered from 1 h.
    const long = await history({ id: "mixer-01", tag: "temp", from: Date.now() - 5 * 365 * DAY, to: Date.now(), points: 100_000 });
    assert.equal(long.source, "1h");
    assert.ok(long.kind === "aggregates");
    assertIntervals(long.points, expectedIntervals(past, "temp", HOUR), "5-year query");
  });

  it("leaves raw and rollup counts unchanged when the same Kafka range is consumed twice", async () => {
    const before = { raw: await rawSeqCounts(env, "mixer-01"), minute: await docIds(env, "rollups_1m", "mixer-01"), hour: await docIds(env, "rollups_1h", "mixer-01") };
    assert.equal(before.raw.size, past.length);
    // Replay: the group's offsets go back to the beginning while the historian is away.
    await broker.destroyService("historian");
    const admin = kafkaClient().admin();
    await admin.connect();
    const topic = env.KAFKA_TOPIC_PREFIX + KAFKA_TOPICS.telemetry;
    try {
      await admin.resetOffsets({ groupId: `${env.MOLECULER_NAMESPACE}.historian`, topic, earliest: true });
      broker.createService(createHistorianService(loadConfig({ ...process.env, ...env, SERVICES: "historian", LOG_LEVEL: env.LOG_LEVEL ?? "warn" })));
      await broker.waitForServices(["historian"], 30_000);
      // Consumed again up to the end: the committed offsets reach the topic's end.
      const ends = await admin.fetchTopicOffsets(topic);
      await waitFor("the replayed range consumed and committed", async () => {
        const [{ partitions }] = await admin.fetchOffsets({ groupId: `${env.MOLECULER_NAMESPACE}.historian`, topics: [topic] });
        // Partitions without records have nothing committed (-1).
        return ends.every((e) => e.high === "0" || partitions.find((p) => p.partition === e.partition)?.offset === e.high);
      }, 60_000, 500);
    } finally {
      await admin.disconnect();
    }
    const after = { raw: await rawSeqCounts(env, "mixer-01"), minute: await docIds(env, "rollups_1m", "mixer-01"), hour: await docIds(env, "rollups_1h", "mixer-01") };
    assert.ok([...after.raw.values()].every((n) => n === 1) && after.raw.size === past.length, "every raw sample once");
    assert.deepEqual([after.minute, after.hour], [before.minute, before.hour], "no further rollup documents");
    const minute = await history({ id: "mixer-01", tag: "temp", from: h0, to: h0 + 2 * HOUR - 1, points: 200 });
    assert.ok(minute.kind === "aggregates");
    assertIntervals(minute.points, expectedIntervals(past, "temp", MIN), "1 m temp after the replay");
  });

  it("keeps the open hour's rollup exact across a historian restart in the middle of the hour", async () => {
    // Samples of the current hour, at 1 s, up to now (the hour before when this one has just begun).
    const now = Date.now();
    const hour = Math.floor(now / HOUR) * HOUR - (now % HOUR < 4 * MIN ? HOUR : 0);
    const start = Math.max(hour, now - 20 * MIN);
    const count = Math.floor((Math.min(now, hour + HOUR) - start) / 1_000) - 1;
    const records = stream("mixer-02", start, count, 1_000);
    const firstPart = records.slice(0, Math.floor(count / 2));
    await produce(env, firstPart);
    const raw = await waitFor("the first part's windows in MongoDB", async () => {
      const stored = await rawSeqCounts(env, "mixer-02");
      return stored.size >= firstPart.length - 60 ? stored : undefined;
    }, 60_000, 500);
    assert.ok(raw.size > 0);
    await restartHistorian();
    await produce(env, records.slice(firstPart.length));
    const query = { id: "mixer-02", tag: "temp", from: hour, to: hour + HOUR - 1, points: 60 };
    const expected = expectedIntervals(records, "temp", MIN);
    const total = [...expected.values()].reduce((n, e) => n + e.count, 0);
    const answer = await waitFor("every sample in the 1 m answer", async () => {
      const result = await history(query);
      return result.kind === "aggregates" && result.points.reduce((n, p) => n + p.count, 0) >= total ? result : undefined;
    }, 60_000, 500);
    assert.equal(answer.source, "1m");
    assert.ok(answer.kind === "aggregates");
    assertIntervals(answer.points, expected, "the open hour after a restart");
  });

  it("exports several tags aligned by timestamp as CSV and JSON, and rejects unknown or too many tags", async () => {
    const base = `${api()}/devices/mixer-01/export?tags=temp,running&from=${h0}&to=${h0 + 10 * MIN - 1}`;
    const csv = await apiFetch(`${base}&points=1000&format=csv`);
    assert.equal(csv.status, 200);
    assert.match(csv.headers.get("content-type") ?? "", /^text\/csv/);
    assert.match(csv.headers.get("content-disposition") ?? "", /attachment; filename="mixer-01-\d+-\d+\.csv"/);
    const lines = (await csv.text()).trim().split("\n");
    assert.equal(lines[0], "ts,time,temp,running");
    const expected = past.filter((r) => r.ts < h0 + 10 * MIN);
    assert.equal(lines.length, 1 + expected.length, "one row per sample time (raw: 600 s fit in 1000 points)");
    assert.equal(lines[1], `${h0},${new Date(h0).toISOString()},20,true`);
    const json = await apiFetch(`${base}&points=10&format=json`);
    assert.equal(json.status, 200);
    const body = (await json.json()) as ExportResult;
    assert.deepEqual([body.source, body.intervalMs, body.tags], ["1m", MIN, ["temp", "running"]]);
    const minutes = expectedIntervals(expected, "temp", MIN);
    assert.deepEqual(body.rows.map((r) => r.ts), [...minutes.keys()]);
    body.rows.forEach((r) => assert.ok(Math.abs((r.values.temp as number) - (minutes.get(r.ts)?.avg as number)) < 1e-9));
    // running turns false with sample 50 (500 s in): the rows hold the value in effect.
    assert.deepEqual(body.rows.map((r) => r.values.running), [true, true, true, true, true, true, true, true, true, false]);

    const unknown = await apiFetch(`${api()}/devices/mixer-01/export?tags=temp,nope`);
    assert.equal(unknown.status, 400);
    assert.match(((await unknown.json()) as { error: { message: string } }).error.message, /nope/);
    const many = await apiFetch(`${api()}/devices/mixer-01/export?tags=${Array.from({ length: 21 }, (_, i) => `t${i}`).join(",")}`);
    assert.equal(many.status, 400);
    assert.match(((await many.json()) as { error: { message: string } }).error.message, /at most 20/);
    assert.equal((await apiFetch(`${api()}/devices/nobody/export?tags=temp`)).status, 404);
  });

  it("deletes documents older than each tier's retention and keeps recent ones", async () => {
    const now = Date.now();
    const doc = (id: string, end: number) => ({ _id: id, device: "retention", start: end - HOUR, end });
    await withDb(env, async (db) => {
      await db.collection<{ _id: string }>("telemetry").insertMany([doc("raw-old", now - 8 * DAY), doc("raw-new", now - 6 * DAY)]);
      await db.collection<{ _id: string }>("rollups_1m").insertMany([doc("1m-old", now - 91 * DAY), doc("1m-new", now - 80 * DAY)]);
      await db.collection<{ _id: string }>("rollups_1h").insertMany([doc("1h-old", now - 1826 * DAY), doc("1h-new", now - 1800 * DAY)]);
    });
    await waitFor("the expired documents removed by the periodic job", async () => {
      const left = await Promise.all(["telemetry", "rollups_1m", "rollups_1h"].map((c) => docIds(env, c, "retention")));
      return left.flat().every((id) => id.endsWith("-new")) ? left : undefined;
    }, 30_000, 500);
    const left = await Promise.all(["telemetry", "rollups_1m", "rollups_1h"].map((c) => docIds(env, c, "retention")));
    assert.deepEqual(left, [["raw-new"], ["1m-new"], ["1h-new"]]);
    assert.equal((await rawSeqCounts(env, "mixer-01")).size, past.length, "yesterday's data is kept");
    const indexes = await withDb(env, (db) => db.collection<RollupDocument>("rollups_1m").indexes());
    assert.ok(indexes.some((i) => JSON.stringify(i.key) === '{"end":1}'), "the retention field is indexed");
  });
});
