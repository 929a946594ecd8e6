// The consumers' contracts: Kafka in (real broker), MongoDB (FerretDB) and Redis out.
import { strict as assert } from "node:assert";
import type { ServiceBroker } from "moleculer";
import { MongoClient } from "mongodb";
import createHistorianService, { type HistorianStats, type LatestResult, type RawHistoryResult } from "../../services/historian.service.ts";
import { bucketStart } from "../../src/historian/buckets.ts";
import type { ChunkDocument } from "../../src/historian/chunks.ts";
import { loadConfig } from "../../src/shared/config.ts";
import { KAFKA_TOPICS } from "../../src/shared/topics.ts";
import type { AlarmDocument, TelemetryRecord } from "../../src/shared/types.ts";
import { cleanupRun, isolatedEnv, kafkaClient, startPlantwire, startServices, type RunningProcess, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

const address = { site: "plant1", area: "utilities", line: "line1", device: "pump-01" };

async function produceTelemetry(env: TestSystemEnv, records: TelemetryRecord[]): Promise<void> {
  const producer = kafkaClient().producer();
  await producer.connect();
  await producer.send({ topic: env.KAFKA_TOPIC_PREFIX + KAFKA_TOPICS.telemetry, messages: records.map((r) => ({ key: r.device, value: JSON.stringify(r) })) });
  await producer.disconnect();
}

function records(from: number, count: number, start: number, value: (i: number) => number): TelemetryRecord[] {
  return Array.from({ length: count }, (_, i) => ({ ...address, ts: start + (from + i) * 1000, seq: from + i, receivedAt: start, values: { pressure: { v: value(i), q: "good" as const } } }));
}

const SPAN = 60_000; // the default HISTORIAN_BUCKET_MS

function deviceRecords(device: string, seqs: number[], base: number): TelemetryRecord[] {
  return seqs.map((seq) => ({ ...address, device, ts: base + seq * 1000, seq, receivedAt: base, values: { pressure: { v: 5, q: "good" as const } } }));
}

/** Sends records to chosen partitions (a device's records to one partition, as keyed production does). */
async function produceToPartitions(env: TestSystemEnv, messages: { record: TelemetryRecord; partition: number }[]): Promise<void> {
  const producer = kafkaClient().producer();
  await producer.connect();
  await producer.send({ topic: env.KAFKA_TOPIC_PREFIX + KAFKA_TOPICS.telemetry, messages: messages.map(({ record, partition }) => ({ key: record.device, value: JSON.stringify(record), partition })) });
  await producer.disconnect();
}

/** The stored chunks of a device, read straight from MongoDB (a scan is fine for a test database). */
async function storedChunks(env: TestSystemEnv, device: string): Promise<ChunkDocument[]> {
  const mongo = new MongoClient(env.MONGO_URL);
  try {
    return await mongo.db().collection<ChunkDocument>("telemetry").find({ device }).toArray();
  } finally {
    await mongo.close();
  }
}

/** How many times each seq of a device is stored, over all its chunks. */
function seqCounts(chunks: ChunkDocument[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const chunk of chunks) for (const seq of chunk.seq) counts.set(seq, (counts.get(seq) ?? 0) + 1);
  return counts;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe("historian and alarms against Kafka, MongoDB and Redis", function () {
  this.timeout(90_000);
  let env: TestSystemEnv;
  let broker: ServiceBroker;
  const start = Date.now() - 600_000;

  before(async () => {
    env = await isolatedEnv("hist");
    broker = await startServices(env, ["devices", "historian", "alarms", "anomaly-detector"]);
    await broker.call("devices.register", { ...address, state: "online", ts: start, machineType: "pump", tags: [{ name: "pressure", unit: "bar", type: "number", min: 0, max: 20, lo: 2, hi: 12 }] });
  });

  after(async () => {
    await broker?.stop();
    if (env) await cleanupRun(env);
  });

  it("stores consumed telemetry, answers history in order and the latest value", async () => {
    await produceTelemetry(env, records(0, 100, start, (i) => 5 + (i % 3)));
    const history = await waitFor("100 stored points", async () => {
      const result = await broker.call<RawHistoryResult, object>("historian.history", { id: address.device, tag: "pressure", from: start, to: start + 200_000 });
      return result.points.length === 100 ? result : undefined;
    });
    assert.deepEqual(history.points.map((p) => p.seq), Array.from({ length: 100 }, (_, i) => i));
    const latest = await broker.call<LatestResult, object>("historian.latest", { id: address.device });
    assert.deepEqual(latest.values.pressure, { v: 5 + (99 % 3), q: "good", ts: start + 99_000 });
  });

  it("stores a replayed range exactly once", async () => {
    await produceTelemetry(env, records(0, 100, start, (i) => 5 + (i % 3)));
    await produceTelemetry(env, records(100, 10, start, () => 6));
    const history = await waitFor("the 10 records after the replay", async () => {
      const result = await broker.call<RawHistoryResult, object>("historian.history", { id: address.device, tag: "pressure", from: start, to: start + 200_000 });
      return result.points.some((p) => p.seq === 109) ? result : undefined;
    });
    assert.equal(history.points.length, 110, "no sample duplicated by the replay");
  });

  it("raises an alarm when a value passes a limit and clears it when it returns", async () => {
    await produceTelemetry(env, [...records(200, 5, start, () => 15), ...records(205, 5, start, () => 6)]);
    // ISA-18.2: a returned alarm nobody acknowledged is "rtn-unack", not yet "cleared".
    const alarm = await waitFor("a returned high-pressure alarm", async () => {
      const { alarms } = await broker.call<{ alarms: AlarmDocument[] }, object>("alarms.list", { device: address.device });
      return alarms.find((a) => a.tag === "pressure" && a.state === "rtn-unack");
    });
    assert.deepEqual([alarm.kind, alarm.limit, alarm.value, alarm.activatedAt, alarm.clearedAt], ["hi", 12, 15, start + 200_000, start + 205_000]);
    // The device may also have a communication-loss alarm (tag "*") once the test stops sending.
    const { total } = await broker.call<{ total: number }, object>("alarms.list", { device: address.device, tag: "pressure" });
    assert.equal(total, 1, "one alarm for one excursion");
  });

  it("rejects bad query parameters with 400s naming the field", async () => {
    await assert.rejects(broker.call("historian.history", { id: address.device, tag: "pressure", from: "last tuesday" }), (err: { code: number; message: string }) => err.code === 400 && /from must be/.test(err.message));
    await assert.rejects(broker.call("historian.history", { id: address.device, tag: "pressure", from: 10, to: 5 }), (err: { code: number }) => err.code === 400);
    await assert.rejects(broker.call("historian.history", { id: "nope", tag: "pressure" }), (err: { code: number }) => err.code === 404);
  });

  it("stores a late record for an already-written window exactly once", async () => {
    const device = "pump-02";
    await broker.call("devices.register", { ...address, device, state: "online", ts: start, machineType: "pump", tags: [{ name: "pressure", unit: "bar", type: "number", min: 0, max: 20 }] });
    // An old window: once the device is quiet for the grace, the clock seals it.
    const base = bucketStart(start, SPAN) - 5 * SPAN;
    await produceTelemetry(env, deviceRecords(device, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], base));
    const first = await waitFor("the window written as chunk 0", async () => (await storedChunks(env, device)).find((c) => c._id === `${device}:${base}:0`));
    assert.deepEqual(first.seq, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // The PLC resends part of its buffer after a reconnect (one record already stored, a new one
    // twice), then its stream goes on in the next window.
    const late = { ...deviceRecords(device, [100], base)[0], ts: base + 30_500 };
    await produceTelemetry(env, [...deviceRecords(device, [3], base), late, late, ...deviceRecords(device, [61], base)]);
    await waitFor("the next window written", async () => (await storedChunks(env, device)).some((c) => c._id === `${device}:${base + SPAN}:0`));
    const chunks = await storedChunks(env, device);
    assert.deepEqual(chunks.map((c) => c._id).sort(), [`${device}:${base}:0`, `${device}:${base}:1`, `${device}:${base + SPAN}:0`]);
    assert.deepEqual(chunks.find((c) => c._id === `${device}:${base}:1`)?.seq, [100], "the late record in chunk 1, alone");
    assert.ok([...seqCounts(chunks).values()].every((n) => n === 1), "no sample stored twice");
    const history = await broker.call<RawHistoryResult, object>("historian.history", { id: device, tag: "pressure", from: base, to: base + 2 * SPAN });
    assert.deepEqual(history.points.map((p) => p.seq), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 100, 61]);
  });

  it("stores every record exactly once when the historian restarts in the middle of a stream", async function () {
    this.timeout(120_000);
    const device = "pump-03";
    await broker.call("devices.register", { ...address, device, state: "online", ts: start, machineType: "pump", tags: [{ name: "pressure", unit: "bar", type: "number", min: 0, max: 20 }] });
    const base = bucketStart(start, SPAN) - 10 * SPAN;
    const seqs = Array.from({ length: 150 }, (_, i) => i);
    for (let i = 0; i < 70; i += 10) {
      await produceTelemetry(env, deviceRecords(device, seqs.slice(i, i + 10), base));
      await sleep(100);
    }
    await waitFor("the first records consumed", async () => {
      const { points } = await broker.call<RawHistoryResult, object>("historian.history", { id: device, tag: "pressure", from: base, to: base + 3 * SPAN });
      return points.length >= 60;
    });
    // The stream goes on while the service stops (writing its open windows) and starts again.
    const producing = (async () => {
      for (let i = 70; i < 150; i += 10) {
        await produceTelemetry(env, deviceRecords(device, seqs.slice(i, i + 10), base));
        await sleep(100);
      }
    })();
    await broker.destroyService("historian");
    broker.createService(createHistorianService(loadConfig({ ...process.env, ...env, SERVICES: "historian", LOG_LEVEL: env.LOG_LEVEL ?? "warn" })));
    await broker.waitForServices(["historian"], 30_000);
    await producing;
    const chunks = await waitFor("all 150 records in MongoDB", async () => {
      const stored = await storedChunks(env, device);
      return seqCounts(stored).size === 150 ? stored : undefined;
    }, 60_000, 500);
    for (const [seq, n] of seqCounts(chunks)) assert.equal(n, 1, `seq ${seq} stored ${n} times`);
    const history = await broker.call<RawHistoryResult, object>("historian.history", { id: device, tag: "pressure", from: base, to: base + 3 * SPAN });
    assert.deepEqual(history.points.map((p) => p.seq), seqs);
  });

  it("loses and duplicates nothing when a historian replica is killed in the middle of a stream", async function () {
    this.timeout(180_000);
    const devices = Array.from({ length: 6 }, (_, i) => ({ device: `crash-${i}`, partition: i % 3 }));
    const base = bucketStart(start, SPAN) - 20 * SPAN;
    const replicaNode = `${env.MOLECULER_NAMESPACE}-replica`;
    const stats = (nodeID: string) => broker.call<HistorianStats, object>("historian.stats", {}, { nodeID });
    let replica: RunningProcess | undefined = startPlantwire({ ...env, SERVICES: "historian", NODE_ID: replicaNode });
    try {
      // A second member joins the group: the partitions are split between the two.
      await waitFor("the partitions split between the two replicas", async () => {
        const [local, remote] = await Promise.all([stats(broker.nodeID), stats(replicaNode)]);
        return local.partitions.length > 0 && remote.partitions.length > 0 && local.partitions.length + remote.partitions.length === 3;
      }, 60_000, 500);
      const round = (r: number) => devices.map(({ device, partition }) => ({ record: deviceRecords(device, [r], base)[0], partition }));
      for (let r = 0; r < 75; r += 5) {
        await produceToPartitions(env, [0, 1, 2, 3, 4].flatMap((i) => round(r + i)));
        await sleep(50);
      }
      // Kill the replica while it holds a written window (maybe not committed yet) and an open one.
      await waitFor("the replica holding stored and buffered records", async () => {
        const remote = await stats(replicaNode);
        return remote.samples > 0 && remote.buffered > 0;
      }, 30_000, 200);
      // A query here includes what the other replica holds in memory and has not written yet (it
      // asks its peers): records of a window that is not over for another minute.
      const owned = (await stats(replicaNode)).partitions;
      const livePartition = [0, 1, 2].find((p) => owned.some((o) => o.endsWith(`/${p}`)));
      assert.ok(livePartition !== undefined, "the replica owns a partition");
      const live = "crash-live";
      await broker.call("devices.register", { ...address, device: live, state: "online", ts: start, machineType: "pump", tags: [{ name: "pressure", unit: "bar", type: "number" }] });
      const liveBase = bucketStart(Date.now(), SPAN) + SPAN;
      await produceToPartitions(env, [1, 2, 3].map((seq) => ({ record: deviceRecords(live, [seq], liveBase)[0], partition: livePartition })));
      const liveHistory = await waitFor("the other replica's buffered records in the history", async () => {
        const result = await broker.call<RawHistoryResult, object>("historian.history", { id: live, tag: "pressure", from: liveBase, to: liveBase + SPAN - 1 });
        return result.points.length === 3 ? result : undefined;
      });
      assert.deepEqual(liveHistory.points.map((p) => p.seq), [1, 2, 3]);
      assert.deepEqual(await storedChunks(env, live), [], "not in MongoDB yet");
      replica.child.kill("SIGKILL");
      await replica.stop();
      replica = undefined;
      for (let r = 75; r < 90; r += 5) await produceToPartitions(env, [0, 1, 2, 3, 4].flatMap((i) => round(r + i)));
      // The survivor takes the partitions over after the session timeout and reads what was not committed.
      for (const { device } of devices) {
        const chunks = await waitFor(`all 90 records of ${device} in MongoDB`, async () => {
          const stored = await storedChunks(env, device);
          return seqCounts(stored).size === 90 ? stored : undefined;
        }, 90_000, 500);
        for (const [seq, n] of seqCounts(chunks)) assert.equal(n, 1, `${device} seq ${seq} stored ${n} times`);
      }
    } finally {
      await replica?.stop();
    }
  });
});
