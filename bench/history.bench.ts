// History query latency per span after loading synthetic history straight into the historian's
// write path: the chunk and rollup building functions the service uses (buildChunk,
// chunkContribution, mergePeriodData, buildRollupDoc), inserted into an isolated database.
//
//   node bench/history.bench.ts [devices=50] [days=30] [rawDays=7] [tags=20] [repeats=30]
//
// Samples are 1 s apart. Raw chunks are loaded only for the last `rawDays` (older raw would be
// deleted by retention, HISTORIAN_RETENTION_RAW_DAYS); rollups cover all `days`.
import { writeFileSync, mkdirSync } from "node:fs";
import type { ServiceBroker } from "moleculer";
import { MongoClient } from "mongodb";
import type { HistoryResult } from "../services/historian.service.ts";
import { buildChunk, type ChunkDocument } from "../src/historian/chunks.ts";
import { buildRollupDoc, chunkContribution, emptyPeriodData, fromColumns, mergePeriodData, TIERS, type RollupDocument } from "../src/historian/rollups.ts";
import type { TelemetryRecord } from "../src/shared/types.ts";
import { cleanupRun, isolatedEnv, startServices } from "../test/helpers/system.ts";

const [devices = 50, days = 30, rawDays = 7, tagCount = 20, repeats = 30] = process.argv.slice(2).map(Number);
const SPAN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const tags = Array.from({ length: tagCount }, (_, i) => `t${String(i).padStart(2, "0")}`);
const end = Math.floor(Date.now() / DAY) * DAY;
const start = end - days * DAY;
const rawFrom = end - rawDays * DAY;

function value(device: number, tag: number, ts: number): number {
  return 100 + device + tag * 10 + 5 * Math.sin(ts / 600_000 + tag) + ((ts / 1000) % 7) / 10;
}

/** One window of one device as raw records (for the raw tier) or columns (rollup-only days). */
function windowChunk(d: number, device: string, w: number, asRecords: boolean): ChunkDocument | Pick<ChunkDocument, "ts" | "tags"> {
  const ts = Array.from({ length: SPAN / 1000 }, (_, i) => w + i * 1000);
  if (!asRecords) return { ts, tags: tags.map((name, t) => ({ name, v: ts.map((x) => value(d, t, x)) })) };
  const records: TelemetryRecord[] = ts.map((x) => ({
    site: "plant1",
    area: "bench",
    line: "line1",
    device,
    ts: x,
    seq: (x - start) / 1000,
    receivedAt: x,
    values: Object.fromEntries(tags.map((name, t) => [name, { v: value(d, t, x), q: "good" as const }])),
  }));
  return buildChunk({ device, start: w, n: 0, records }, SPAN, Date.now());
}

async function load(mongoUrl: string): Promise<{ chunks: number; minuteDocs: number; hourDocs: number; seconds: number }> {
  const mongo = new MongoClient(mongoUrl);
  await mongo.connect();
  const db = mongo.db();
  const counts = { chunks: 0, minuteDocs: 0, hourDocs: 0 };
  const started = performance.now();
  for (let d = 0; d < devices; d++) {
    const device = `bench-${String(d).padStart(3, "0")}`;
    for (let day = start; day < end; day += DAY) {
      const hourDocs: RollupDocument[] = [];
      const rawChunks: ChunkDocument[] = [];
      for (let hour = day; hour < day + DAY; hour += HOUR) {
        const minutes = emptyPeriodData();
        const sources: string[] = [];
        for (let w = hour; w < hour + HOUR; w += SPAN) {
          const chunk = windowChunk(d, device, w, w >= rawFrom);
          if ("_id" in chunk) rawChunks.push(chunk);
          sources.push(`${device}:${w}:0`);
          mergePeriodData(minutes, chunkContribution(chunk, hour, HOUR, SPAN), SPAN);
        }
        hourDocs.push(buildRollupDoc(device, TIERS["1m"], hour, 0, sources, minutes, Date.now()));
      }
      const hours = emptyPeriodData();
      for (const doc of hourDocs) mergePeriodData(hours, fromColumns(doc), HOUR);
      const dayDoc = buildRollupDoc(device, TIERS["1h"], day, 0, hourDocs.map((h) => h._id), hours, Date.now());
      for (let i = 0; i < rawChunks.length; i += 240) await db.collection<ChunkDocument>("telemetry").insertMany(rawChunks.slice(i, i + 240), { ordered: false });
      await db.collection<RollupDocument>("rollups_1m").insertMany(hourDocs, { ordered: false });
      await db.collection<RollupDocument>("rollups_1h").insertOne(dayDoc);
      counts.chunks += rawChunks.length;
      counts.minuteDocs += hourDocs.length;
      counts.hourDocs += 1;
    }
    console.log(`  loaded ${device}: ${((performance.now() - started) / 1000).toFixed(0)} s so far`);
  }
  await mongo.close();
  return { ...counts, seconds: (performance.now() - started) / 1000 };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function measure(broker: ServiceBroker) {
  const results: { span: string; points: number; source: string; returned: number; p50: number; p95: number }[] = [];
  const spans: [string, number][] = [
    ["1 h", HOUR],
    ["1 d", DAY],
    ["30 d", 30 * DAY],
  ];
  for (const points of [1_000, 10_000]) {
    for (const [label, span] of spans) {
      if (span > days * DAY) continue;
      const times: number[] = [];
      let last: HistoryResult | undefined;
      for (let i = 0; i < repeats; i++) {
        // A different device and a window ending at a different hour each time, so no read is served twice from a cache.
        const device = `bench-${String(i % devices).padStart(3, "0")}`;
        const to = end - 1 - (i % 24) * HOUR;
        const t = performance.now();
        last = await broker.call<HistoryResult, object>("historian.history", { id: device, tag: tags[i % tags.length], from: to - span + 1, to, points }, { timeout: 120_000 });
        times.push(performance.now() - t);
      }
      times.sort((a, b) => a - b);
      results.push({ span: label, points, source: last?.source ?? "?", returned: last?.points.length ?? 0, p50: percentile(times, 50), p95: percentile(times, 95) });
      const r = results[results.length - 1];
      console.log(`  ${label.padEnd(5)} points=${String(points).padEnd(6)} tier ${r.source.padEnd(3)} (${r.returned} points)  p50 ${r.p50.toFixed(1)} ms  p95 ${r.p95.toFixed(1)} ms`);
    }
  }
  return results;
}

const env = await isolatedEnv("benchhist");
console.log(`history benchmark: ${devices} devices × ${tagCount} tags at 1 s, ${days} days of rollups (1 m, 1 h), raw chunks for the last ${rawDays} days only`);
console.log(`  (older raw would be deleted by the raw retention, HISTORIAN_RETENTION_RAW_DAYS=7); database ${env.MONGO_URL}`);
const loaded = await load(env.MONGO_URL);
console.log(`loaded ${loaded.chunks} raw chunks (${loaded.chunks * 60 * tagCount} values), ${loaded.minuteDocs} 1 m documents, ${loaded.hourDocs} 1 h documents in ${loaded.seconds.toFixed(0)} s`);
const broker = await startServices(env, ["devices", "historian"]);
try {
  for (let d = 0; d < devices; d++) {
    await broker.call("devices.register", { site: "plant1", area: "bench", line: "line1", device: `bench-${String(d).padStart(3, "0")}`, state: "online", ts: Date.now(), machineType: "bench", tags: tags.map((name) => ({ name, unit: "", type: "number" })) });
  }
  console.log(`history query latency, one tag, ${repeats} queries each (the historian service in this process, over FerretDB):`);
  const results = await measure(broker);
  mkdirSync(new URL("results/", import.meta.url), { recursive: true });
  const file = new URL(`results/history-${new Date().toISOString().replace(/[:.]/g, "-")}.json`, import.meta.url);
  writeFileSync(file, JSON.stringify({ devices, days, rawDays, tags: tagCount, repeats, loaded, results }, null, 2));
  console.log(`raw results: ${file.pathname}`);
} finally {
  await broker.stop();
  await cleanupRun(env);
}
