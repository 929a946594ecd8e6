// History query latency per span after loading synthetic history straight into the historian's
// write path: the documents are built by the service's own functions (buildChunk,
// chunkContribution, mergePeriodData, buildRollupDoc) and inserted into an isolated database in
// large unordered batches.
//
//   MONGO_SERVER=mongodb://127.0.0.1:27017 \
//   node bench/history.bench.ts [devices=50] [days=30] [rawHours=25] [tags=20] [repeats=30] [firstStop=5]
//   node bench/history.bench.ts id-lookup <label>=<mongoServer> [<label>=<mongoServer> …]
//
// The signal of device d, tag t at second s (ts = s × 1000) is a per-minute level plus a 7 s
// sawtooth: level(d, t, minute start) + (s mod 7) / 10, with level = 100 + d + 10 t +
// 5 sin(minute start / 600,000 + t). Raw chunks (every 1 s sample, buildChunk) are loaded for
// the last `rawHours` (25 h: the raw tier's reach, so 1 h and 1 d raw queries read real
// chunks); their minutes go into the 1 m tier through chunkContribution, as in the service. For
// the older minutes no sample is generated: each minute's count/sum/min/max/first/last is
// computed in closed form from the same signal (exact, except `sum`, which differs from a
// sample-by-sample sum by rounding only; checked against chunkContribution at start) and fed to
// the same rollup builders. Just computing 2.6 billion samples one by one, storing nothing, took
// 12 s per device on this 2-core machine (10 min for 50), before any document was built.
//
// After each device it times reads by `_id` (a hit and a miss per collection), and it measures
// the queries twice: after `firstStop` devices and after all of them, the same queries (devices
// 0 … firstStop-1), to show whether latency follows the size of the collections.
//
// `id-lookup` is the FerretDB `_id` lookup probe (docs/local-infra.md): for each server, side by
// side, it fills a collection with ~4 KB documents up to 1,000 … 100,000 and times findOne by
// `_id` (hits and misses). Results go to bench/results/ (git-ignored).
import { writeFileSync, mkdirSync } from "node:fs";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import type { ServiceBroker } from "moleculer";
import { MongoClient, type Db } from "mongodb";
import type { HistoryResult } from "../services/historian.service.ts";
import { buildChunk, type ChunkDocument } from "../src/historian/chunks.ts";
import { buildRollupDoc, chunkContribution, emptyPeriodData, mergePeriodData, TIERS, type Aggregate, type PeriodData, type RollupDocument } from "../src/historian/rollups.ts";
import type { TelemetryRecord } from "../src/shared/types.ts";
import { cleanupRun, isolatedEnv, startServices } from "../test/helpers/system.ts";

const SPAN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
/** Documents per insertMany (the driver splits a batch further at 48 MB). */
const BATCH = 500;
const MONGO_SERVER = process.env.MONGO_SERVER ?? "mongodb://127.0.0.1:27017";
const deviceName = (d: number) => `bench-${String(d).padStart(3, "0")}`;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function resultsFile(name: string): URL {
  mkdirSync(new URL("results/", import.meta.url), { recursive: true });
  return new URL(`results/${name}-${new Date().toISOString().replace(/[:.]/g, "-")}.json`, import.meta.url);
}

// ---------------------------------------------------------------------------------------------
// id-lookup: findOne({_id}) cost against the number of documents, several servers side by side

async function idLookup(servers: string[]) {
  const sizes = [1_000, 10_000, 40_000, 100_000];
  const reads = 11;
  const clients = await Promise.all(
    servers.map(async (arg) => {
      const [label, url] = arg.split(/=(.*)/s);
      const client = new MongoClient(url);
      await client.connect();
      const db = client.db(`idlookup${Date.now().toString(36)}`);
      return { label, url, client, db, loaded: 0 };
    }),
  );
  const doc = (i: number) => ({ _id: `dev-${String(i % 50).padStart(3, "0")}:${1_790_000_000_000 + i * 60_000}:0`, device: `dev-${i % 50}`, start: i, end: i + 1, n: 0, payload: "x".repeat(4_000) });
  console.log(`findOne({_id}) p50 of ${reads} reads, documents of ~${(JSON.stringify(doc(0)).length / 1024).toFixed(1)} KB JSON; servers: ${clients.map((c) => `${c.label} ${c.url}`).join(", ")}`);
  const rows: { documents: number; server: string; hitMs: number; missMs: number }[] = [];
  for (const size of sizes) {
    for (const c of clients) {
      const collection = c.db.collection<{ _id: string }>("docs");
      for (let i = c.loaded; i < size; i += 1_000) await collection.insertMany(Array.from({ length: Math.min(1_000, size - i) }, (_, j) => doc(i + j)), { ordered: false });
      c.loaded = size;
      const time = async (id: string) => {
        const t = performance.now();
        await collection.findOne({ _id: id });
        return performance.now() - t;
      };
      const hits: number[] = [];
      const misses: number[] = [];
      for (let r = 0; r < reads; r++) {
        hits.push(await time(doc(Math.floor(((r + 0.5) / reads) * size))._id)); // spread over the collection
        misses.push(await time(`dev-none:${r}:0`));
      }
      const row = { documents: size, server: c.label, hitMs: percentile(hits.sort((a, b) => a - b), 50), missMs: percentile(misses.sort((a, b) => a - b), 50) };
      rows.push(row);
      console.log(`  ${String(size).padStart(7)} documents  ${c.label.padEnd(10)} hit p50 ${row.hitMs.toFixed(1).padStart(7)} ms  miss p50 ${row.missMs.toFixed(1).padStart(7)} ms`);
    }
  }
  for (const c of clients) {
    const explain = await c.db.command({ explain: { find: "docs", filter: { _id: doc(0)._id } }, verbosity: "queryPlanner" });
    console.log(`  ${c.label} explain: ${JSON.stringify(explain.queryPlanner)}`);
    await c.db.dropDatabase();
    await c.client.close();
  }
  const file = resultsFile("id-lookup");
  writeFileSync(file, JSON.stringify({ servers, reads, rows }, null, 2));
  console.log(`raw results: ${file.pathname}`);
}

if (process.argv[2] === "id-lookup") {
  await idLookup(process.argv.slice(3));
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// history: load, then query

const [devices = 50, days = 30, rawHours = 25, tagCount = 20, repeats = 30, firstStop = 5] = process.argv.slice(2).map(Number);
const tags = Array.from({ length: tagCount }, (_, i) => `t${String(i).padStart(2, "0")}`);
const end = Math.floor(Date.now() / DAY) * DAY;
const start = end - days * DAY;
const rawFrom = Math.max(start, end - rawHours * HOUR);

function level(device: number, tag: number, minuteStart: number): number {
  return 100 + device + tag * 10 + 5 * Math.sin(minuteStart / 600_000 + tag);
}

function value(device: number, tag: number, ts: number): number {
  return level(device, tag, ts - (ts % SPAN)) + ((ts / 1000) % 7) / 10;
}

/** The aggregate of one minute (60 samples at 1 s) of the signal, in closed form. */
function minuteAggregate(device: number, tag: number, w: number): Aggregate {
  const k = level(device, tag, w);
  const r0 = (w / 1000) % 7;
  // 60 samples: 8 full sawtooth cycles (0 … 0.6, sum 2.1 each), then residues r0 … r0+3 again.
  let rest = 0;
  for (let j = 0; j < 4; j++) rest += (r0 + j) % 7;
  return { count: 60, sum: 60 * k + (8 * 21 + rest) / 10, min: k, max: k + 6 / 10, firstTs: w, first: k + r0 / 10, lastTs: w + 59_000, last: k + ((r0 + 59) % 7) / 10 };
}

/** One window of one device as a raw chunk, every 1 s sample, built like the service builds it. */
function windowChunk(d: number, device: string, w: number): ChunkDocument {
  const records: TelemetryRecord[] = [];
  for (let x = w; x < w + SPAN; x += 1000) {
    const values: TelemetryRecord["values"] = {};
    for (let t = 0; t < tags.length; t++) values[tags[t]] = { v: value(d, t, x), q: "good" };
    records.push({ site: "plant1", area: "bench", line: "line1", device, ts: x, seq: (x - start) / 1000, receivedAt: x, values });
  }
  return buildChunk({ device, start: w, n: 0, records }, SPAN, Date.now());
}

/** The 1 m data of one hour without raw samples: every minute's aggregate per tag, in closed form. */
function closedFormHour(d: number, hour: number): PeriodData {
  const data = emptyPeriodData();
  for (let t = 0; t < tags.length; t++) {
    const intervals = new Map<number, Aggregate>();
    for (let w = hour; w < hour + HOUR; w += SPAN) intervals.set(w, minuteAggregate(d, t, w));
    data.num.set(tags[t], intervals);
  }
  return data;
}

/** The closed form against chunkContribution of real 1 s samples, for a few windows. */
function checkClosedForm(): string {
  let worstSum = 0;
  for (const [d, w] of [
    [0, rawFrom],
    [3, rawFrom + 7 * SPAN],
    [1, end - SPAN],
  ]) {
    const sampled = chunkContribution(windowChunk(d, deviceName(d), w), w - (w % HOUR), HOUR, SPAN);
    for (let t = 0; t < tags.length; t++) {
      const a = sampled.num.get(tags[t])?.get(w) as Aggregate;
      const b = minuteAggregate(d, t, w);
      for (const f of ["count", "min", "max", "firstTs", "first", "lastTs", "last"] as const) {
        if (a[f] !== b[f]) throw new Error(`closed form differs from the samples: device ${d}, tag ${t}, window ${w}, ${f}: ${a[f]} vs ${b[f]}`);
      }
      worstSum = Math.max(worstSum, Math.abs(a.sum - b.sum) / Math.abs(a.sum));
    }
  }
  if (worstSum > 1e-12) throw new Error(`closed-form sum off by ${worstSum} (relative)`);
  return `count/min/max/first/last identical, sum within ${worstSum.toExponential(1)} (relative)`;
}

interface Loaded {
  devices: number;
  chunks: number;
  rawValues: number;
  minuteDocs: number;
  hourDocs: number;
}

/** Inserts in unordered batches of BATCH, one batch at a time, while the caller builds the next documents. */
class Writer {
  private chain: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private pending = new Map<string, { _id: string }[]>();
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  async add(collection: string, docs: { _id: string }[]): Promise<void> {
    const list = this.pending.get(collection) ?? [];
    this.pending.set(collection, list);
    list.push(...docs);
    while (list.length >= BATCH) this.send(collection, list.splice(0, BATCH));
    // Keep at most a few batches waiting (memory), and let the event loop send them.
    if (this.inFlight > 4) await this.chain;
    else await yieldToLoop();
  }

  private send(collection: string, docs: { _id: string }[]): void {
    this.inFlight++;
    this.chain = this.chain.then(async () => {
      await this.db.collection<{ _id: string }>(collection).insertMany(docs as never, { ordered: false });
      this.inFlight--;
    });
  }

  async flush(): Promise<void> {
    for (const [collection, list] of this.pending) if (list.length > 0) this.send(collection, list.splice(0));
    await this.chain;
  }
}

interface ReadSample {
  devicesLoaded: number;
  documents: Record<string, number>;
  ms: Record<string, { hit: number; miss: number }>;
}

/**
 * Medians of 5 reads by `_id` per collection, a hit (device 0's first document) and a miss.
 * (Document counts come from what was loaded: a count on FerretDB 1.24 decodes every document.)
 */
async function readById(db: Db, loaded: Loaded): Promise<ReadSample> {
  const ids: Record<string, string> = { telemetry: `${deviceName(0)}:${rawFrom}:`, rollups_1m: `${deviceName(0)}:${start}:`, rollups_1h: `${deviceName(0)}:${start}:` };
  const out: ReadSample = { devicesLoaded: loaded.devices, documents: { telemetry: loaded.chunks, rollups_1m: loaded.minuteDocs, rollups_1h: loaded.hourDocs }, ms: {} };
  for (const [collection, prefix] of Object.entries(ids)) {
    const median = async (id: string) => {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t = performance.now();
        await db.collection<{ _id: string }>(collection).findOne({ _id: id });
        times.push(performance.now() - t);
      }
      return times.sort((a, b) => a - b)[2];
    };
    out.ms[collection] = { hit: await median(`${prefix}0`), miss: await median(`${prefix}1`) };
  }
  return out;
}

async function load(db: Db, from: number, to: number, loaded: Loaded, reads: ReadSample[]): Promise<number> {
  const started = performance.now();
  for (let d = from; d < to; d++) {
    const device = deviceName(d);
    const writer = new Writer(db);
    for (let day = start; day < end; day += DAY) {
      const minuteDocs: RollupDocument[] = [];
      const hours = emptyPeriodData();
      for (let hour = day; hour < day + DAY; hour += HOUR) {
        const sources: string[] = [];
        for (let w = hour; w < hour + HOUR; w += SPAN) sources.push(`${device}:${w}:0`);
        let minutes: PeriodData;
        if (hour >= rawFrom) {
          minutes = emptyPeriodData();
          const chunks: ChunkDocument[] = [];
          for (let w = hour; w < hour + HOUR; w += SPAN) {
            const chunk = windowChunk(d, device, w);
            chunks.push(chunk);
            mergePeriodData(minutes, chunkContribution(chunk, hour, HOUR, SPAN), SPAN);
          }
          loaded.chunks += chunks.length;
          loaded.rawValues += chunks.length * (SPAN / 1000) * tags.length;
          await writer.add("telemetry", chunks);
        } else {
          minutes = closedFormHour(d, hour);
        }
        minuteDocs.push(buildRollupDoc(device, TIERS["1m"], hour, 0, sources, minutes, Date.now()));
        mergePeriodData(hours, minutes, HOUR);
      }
      const hourDoc = buildRollupDoc(device, TIERS["1h"], day, 0, minuteDocs.map((h) => h._id), hours, Date.now());
      await writer.add("rollups_1m", minuteDocs);
      await writer.add("rollups_1h", [hourDoc]);
      loaded.minuteDocs += minuteDocs.length;
      loaded.hourDocs += 1;
    }
    await writer.flush();
    loaded.devices = d + 1;
    const r = await readById(db, loaded);
    reads.push(r);
    const text = Object.entries(r.ms)
      .map(([c, ms]) => `${c} (${r.documents[c]}) ${ms.hit.toFixed(1)}/${ms.miss.toFixed(1)}`)
      .join(", ");
    console.log(`  loaded ${device}: ${((performance.now() - started) / 1000).toFixed(0)} s; read by _id hit/miss ms: ${text}`);
  }
  return (performance.now() - started) / 1000;
}

interface Case {
  span: string;
  spanMs: number;
  points: number;
  repeats: number;
}

interface Measured extends Case {
  source: string;
  returned: number;
  p50: number;
  p95: number;
}

async function measure(broker: ServiceBroker, queryDevices: number): Promise<Measured[]> {
  const cases: Case[] = [
    { span: "1 h", spanMs: HOUR, points: 1_000, repeats },
    { span: "1 d", spanMs: DAY, points: 1_000, repeats },
    { span: "30 d", spanMs: 30 * DAY, points: 1_000, repeats },
    { span: "1 h", spanMs: HOUR, points: 10_000, repeats },
    { span: "1 d", spanMs: DAY, points: 10_000, repeats },
    { span: "30 d", spanMs: 30 * DAY, points: 10_000, repeats },
    // 1 d of raw (1,441 windows): the raw tier's reach; fewer repeats, each reads ~2,900 ids.
    { span: "1 d", spanMs: DAY, points: 100_000, repeats: Math.min(repeats, 5) },
  ];
  const results: Measured[] = [];
  for (const c of cases) {
    if (c.spanMs > days * DAY) continue;
    const times: number[] = [];
    let last: HistoryResult | undefined;
    for (let i = 0; i < c.repeats; i++) {
      // A different device, tag and end each time (ends up to 50 min apart, so 1 d stays within
      // the loaded raw hours), so no read is served twice from a cache.
      const to = end - 1 - (i % 6) * 10 * SPAN;
      const t = performance.now();
      last = await broker.call<HistoryResult, object>("historian.history", { id: deviceName(i % queryDevices), tag: tags[i % tags.length], from: to - c.spanMs + 1, to, points: c.points }, { timeout: 600_000 });
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const r: Measured = { ...c, source: last?.source ?? "?", returned: last?.points.length ?? 0, p50: percentile(times, 50), p95: percentile(times, 95) };
    results.push(r);
    console.log(`  ${c.span.padEnd(5)} points=${String(c.points).padEnd(6)} tier ${r.source.padEnd(3)} (${r.returned} points)  p50 ${r.p50.toFixed(1)} ms  p95 ${r.p95.toFixed(1)} ms  (${c.repeats} queries)`);
  }
  return results;
}

const env = await isolatedEnv("benchhist", {}, MONGO_SERVER);
const stop1 = Math.min(firstStop, devices);
console.log(`history benchmark: ${devices} devices × ${tagCount} tags at 1 s over ${days} days (${new Date(start).toISOString()} … ${new Date(end).toISOString()})`);
console.log(`  raw chunks (every 1 s sample) for the last ${(end - rawFrom) / HOUR} h; 1 m and 1 h rollups for all ${days} days (minutes before the raw hours in closed form)`);
console.log(`  database ${env.MONGO_URL}; queries measured after ${stop1} and after ${devices} devices, on devices 0…${stop1 - 1}`);
console.log(`  closed-form minutes vs chunkContribution of 1 s samples: ${checkClosedForm()}`);
const mongo = new MongoClient(env.MONGO_URL);
await mongo.connect();
const db = mongo.db();
const loaded: Loaded = { devices: 0, chunks: 0, rawValues: 0, minuteDocs: 0, hourDocs: 0 };
const reads: ReadSample[] = [];
const phases: { loaded: Loaded; loadSeconds: number; results: Measured[] }[] = [];
const describe = (l: Loaded) =>
  `${l.devices} devices: ${l.chunks} raw chunks (${l.rawValues.toLocaleString("en")} values), ${l.minuteDocs} 1 m documents (${(l.minuteDocs * 60 * tagCount * 60).toLocaleString("en")} samples' worth), ${l.hourDocs} 1 h documents`;
let broker: ServiceBroker | undefined;
try {
  for (const upTo of stop1 < devices ? [stop1, devices] : [devices]) {
    const seconds = await load(db, loaded.devices, upTo, loaded, reads);
    console.log(`loaded ${describe(loaded)} (this step ${seconds.toFixed(0)} s)`);
    if (!broker) {
      broker = await startServices(env, ["devices", "historian"]);
      for (let d = 0; d < devices; d++) {
        await broker.call("devices.register", { site: "plant1", area: "bench", line: "line1", device: deviceName(d), state: "online", ts: Date.now(), machineType: "bench", tags: tags.map((name) => ({ name, unit: "", type: "number" })) });
      }
    }
    console.log(`history query latency with ${loaded.devices} devices loaded, one tag per query (historian.history in this process, over ${MONGO_SERVER}):`);
    phases.push({ loaded: { ...loaded }, loadSeconds: seconds, results: await measure(broker, stop1) });
  }
  const file = resultsFile("history");
  writeFileSync(file, JSON.stringify({ mongoServer: MONGO_SERVER, devices, days, rawHours, tags: tagCount, repeats, phases, reads }, null, 2));
  console.log(`raw results: ${file.pathname}`);
} finally {
  await broker?.stop();
  await mongo.close();
  await cleanupRun(env);
}
