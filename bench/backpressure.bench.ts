// Backpressure (issue #6): with the PLC simulator under steady load on a private infrastructure
// stack (every service in its own process), the MongoDB-wire server (FerretDB) is stopped for a
// while and started again. Measured, sampled every second: the Kafka telemetry topic's end offsets
// (ingest must go on), the historian's stored samples and its consumer group's committed offsets
// (it must pause, then catch up), the RSS of the historian and preprocessor processes (memory must
// stay bounded); at the end every seq the PLCs sent must be in MongoDB exactly once.
// Exits 1 if a sample was lost or duplicated, the historian did not catch up, or a process died.
//   node bench/backpressure.bench.ts [--outage-ms 60000] [--before-ms 20000] [--after-ms 20000]
//     [--plcs 10] [--scan-ms 150] [--mode stop|kill] [--bucket-ms 5000] [--catchup-timeout-ms 300000]
//     [--drain-ms 120000]
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { ReplicaRun, rssMiB, sentUpTo, summarize } from "../test/chaos/replica-run.ts";
import { waitFor } from "../test/helpers/wait.ts";

const { values } = parseArgs({
  options: {
    "outage-ms": { type: "string", default: "60000" },
    "before-ms": { type: "string", default: "20000" },
    "after-ms": { type: "string", default: "20000" },
    plcs: { type: "string", default: "10" },
    "scan-ms": { type: "string", default: "150" },
    mode: { type: "string", default: "stop" },
    "catchup-timeout-ms": { type: "string", default: "300000" },
    "drain-ms": { type: "string", default: "120000" },
    "bucket-ms": { type: "string", default: "5000" },
  },
});
const outageMs = Number(values["outage-ms"]);
const beforeMs = Number(values["before-ms"]);
const afterMs = Number(values["after-ms"]);
const catchupTimeoutMs = Number(values["catchup-timeout-ms"]);
const mode = values.mode;
if (mode !== "stop" && mode !== "kill") throw new Error(`--mode must be stop (infra.sh stop: SIGTERM) or kill (SIGKILL), got "${mode}"`);

type Phase = "before" | "outage" | "recovery" | "after";
interface Sample {
  at: number;
  phase: Phase;
  /** Telemetry topic: sum of the partitions' end offsets (records ever written). */
  end?: number;
  /** Historian group: sum of the committed offsets (records stored and committed), and end − committed. */
  committed?: number;
  lag?: number;
  /** historian.stats: samples written to MongoDB since start, and records held in memory. */
  stored?: number;
  buffered?: number;
  /** preprocessor.stats: records forwarded to Kafka. */
  forwarded?: number;
  historianRss?: number;
  preprocessorRss?: number;
}

const run = new ReplicaRun({ plcs: Number(values.plcs), scanMs: Number(values["scan-ms"]), replicas: 1, env: { HISTORIAN_BUCKET_MS: values["bucket-ms"] } });
const samples: Sample[] = [];
let phase: Phase = "before";
let sampling = true;
const t0 = Date.now();

async function sample(): Promise<Sample> {
  const historian = run.nodeId("historian", 0);
  const preprocessor = run.nodeId("preprocessor", 0);
  const s: Sample = { at: Date.now(), phase };
  const [lag, hStats, pStats] = await Promise.all([
    run.kafkaLag().catch(() => undefined),
    run.historianStats(historian).catch(() => undefined),
    run.preprocessorStats(preprocessor).catch(() => undefined),
  ]);
  const topic = lag?.topics.find((t) => t.topic.endsWith("scada.telemetry.v1"));
  const group = lag?.groups.find((g) => g.name === "historian")?.topics[0];
  if (topic && group) {
    s.end = topic.end;
    s.committed = group.partitions.reduce((n, p) => n + (p.committed ?? 0), 0);
    s.lag = group.lag;
  }
  s.stored = hStats?.samples;
  s.buffered = hStats?.buffered;
  s.forwarded = pStats?.forwarded;
  s.historianRss = rssMiB(run.process("historian", 0)?.child.pid);
  s.preprocessorRss = rssMiB(run.process("preprocessor", 0)?.child.pid);
  return s;
}

async function sampleLoop(): Promise<void> {
  while (sampling) {
    const next = Date.now() + 1_000;
    samples.push(await sample());
    await sleep(Math.max(0, next - Date.now()));
  }
}

/** The newest sample (of a phase) with the field set. */
function last<K extends keyof Sample>(key: K, where: (s: Sample) => boolean = () => true): Sample | undefined {
  return samples.filter((s) => s[key] !== undefined && where(s)).at(-1);
}
const max = (xs: (number | undefined)[]) => Math.max(...xs.filter((x): x is number => x !== undefined));
const fmt = (n: number | undefined, digits = 0) => (n === undefined || !Number.isFinite(n) ? "–" : n.toFixed(digits));

let stoppedAt = 0;
let restartedAt = 0;
let caughtUpMs: number | undefined;
let lagNormalMs: number | undefined;
let endAtRestart: number | undefined;
let lost = 0;
let duplicated = 0;
let drained = false;
let sent = 0;
let detail: string[] = [];
let died: string[] = [];
let steadyMs = 0;
let stopMs = 0;

try {
  await run.start();
  // Steady state first: the historian stores and commits what Kafka held at a moment within a
  // window, its grace and 5 s (it keeps up), not still the backlog of the start.
  const steadyFrom = Date.now();
  const keepsUpMs = Number(values["bucket-ms"]) + 1_000 + 5_000;
  for (;;) {
    const roundFrom = Date.now();
    const end = (await run.kafkaLag()).topics.find((t) => t.topic.endsWith("scada.telemetry.v1"))?.end ?? 0;
    await waitFor(
      "the historian to store what Kafka holds",
      async () => {
        const group = (await run.kafkaLag()).groups.find((g) => g.name === "historian")?.topics[0];
        return group !== undefined && group.partitions.reduce((n, p) => n + (p.committed ?? 0), 0) >= end;
      },
      180_000,
      500,
    );
    if (Date.now() - roundFrom <= keepsUpMs) break;
  }
  steadyMs = Date.now() - steadyFrom;
  const loop = sampleLoop();
  await sleep(beforeMs);

  const stopRequestedAt = Date.now();
  if (mode === "stop") await run.stopServer("mongo");
  else await run.stack.kill("mongo");
  // The outage counts from the moment FerretDB's process is gone.
  phase = "outage";
  stoppedAt = Date.now();
  stopMs = stoppedAt - stopRequestedAt;
  await sleep(outageMs);

  phase = "recovery";
  await run.stack.start(["mongo"]);
  restartedAt = Date.now();
  const atRestart = await run.kafkaLag();
  endAtRestart = atRestart.topics.find((t) => t.topic.endsWith("scada.telemetry.v1"))?.end;
  const lagBefore = max(samples.filter((s) => s.phase === "before").map((s) => s.lag));
  // Caught up: every record written to Kafka by the time MongoDB was back is stored and committed.
  await Promise.all([
    (async () => {
      for (;;) {
        const committed = last("committed", (s) => s.at > restartedAt)?.committed;
        if (committed !== undefined && endAtRestart !== undefined && committed >= endAtRestart) return (caughtUpMs = (last("committed", (s) => s.at > restartedAt) as Sample).at - restartedAt);
        if (Date.now() - restartedAt > catchupTimeoutMs) return;
        await sleep(250);
      }
    })(),
    (async () => {
      for (;;) {
        const s = last("lag", (x) => x.at > restartedAt);
        if (s?.lag !== undefined && s.lag <= lagBefore) return (lagNormalMs = s.at - restartedAt);
        if (Date.now() - restartedAt > catchupTimeoutMs) return;
        await sleep(250);
      }
    })(),
  ]);

  phase = "after";
  await sleep(afterMs);
  sampling = false;
  await loop;

  died = ["historian", "preprocessor", "devices", "api"].filter((name) => (run.process(name, 0)?.child.exitCode ?? null) !== null).map((name) => `${name} exited with ${run.process(name, 0)?.child.exitCode}`);
  const result = await run.drain(sentUpTo(await run.listPlcs()), Number(values["drain-ms"]));
  ({ lost, duplicated, sent } = summarize(result.counts));
  detail = summarize(result.counts).detail;
  drained = result.drained;
} finally {
  sampling = false;
  const historianLog = run.process("historian", 0)?.output() ?? "";
  await run.stop().catch((err: Error) => console.error(`stopping the run failed: ${err.message}`));
  if (process.env.BENCH_VERBOSE) console.log(`--- historian output ---\n${historianLog.slice(-4_000)}`);
}

// ---- report ----
const secs = (ms: number) => (ms / 1000).toFixed(1);
const inPhase = (p: Phase) => samples.filter((s) => s.phase === p);
const before = inPhase("before");
const outage = inPhase("outage");
const rate = (xs: Sample[], key: "end" | "stored" | "forwarded") => {
  const ys = xs.filter((s) => s[key] !== undefined);
  if (ys.length < 2) return undefined;
  return (((ys.at(-1) as Sample)[key] as number) - ((ys[0] as Sample)[key] as number)) / (((ys.at(-1) as Sample).at - (ys[0] as Sample).at) / 1000);
};
const delta = (xs: Sample[], key: "end" | "stored" | "forwarded") => {
  const ys = xs.filter((s) => s[key] !== undefined);
  return ys.length < 2 ? undefined : ((ys.at(-1) as Sample)[key] as number) - ((ys[0] as Sample)[key] as number);
};
const during = samples.filter((s) => s.phase === "outage" || s.phase === "recovery");
const rssBefore = { historian: max(before.map((s) => s.historianRss)), preprocessor: max(before.map((s) => s.preprocessorRss)) };
const rssPeak = { historian: max(during.map((s) => s.historianRss)), preprocessor: max(during.map((s) => s.preprocessorRss)) };
const rssEnd = { historian: last("historianRss")?.historianRss, preprocessor: last("preprocessorRss")?.preprocessorRss };
const ingestDuringOutage = delta(outage, "end");
const storedDuringOutage = delta(outage, "stored");
const lagPeak = max(samples.map((s) => s.lag));

console.log(`\n${process.argv.slice(1).join(" ")}`);
console.log(
  `setup: private stack (Kafka, FerretDB, Mosquitto, NATS, Redis), every service in its own process, ${values.plcs} PLCs every ${values["scan-ms"]} ms, KAFKA_PARTITIONS ${run.env?.KAFKA_PARTITIONS}, HISTORIAN_BUCKET_MS ${values["bucket-ms"]}; ` +
    `once the historian kept up (stored what Kafka held within ${secs(Number(values["bucket-ms"]) + 6_000)} s; ${secs(steadyMs)} s after the start), ${secs(beforeMs)} s of load, then FerretDB ${mode === "stop" ? "stopped (infra.sh stop: SIGTERM)" : "SIGKILLed"} for ${secs(outageMs)} s, then started (infra.sh start); ${secs(afterMs)} s of load after the catch-up; run took ${((Date.now() - t0) / 60_000).toFixed(1)} min\n`,
);
console.log("timeline (every 5 s): t = s since FerretDB was gone; kafka = telemetry end offsets; stored = historian samples written; lag = historian group end − committed; RSS in MiB");
console.log("| t (s) | phase | kafka | forwarded | stored | buffered | lag | historian RSS | preprocessor RSS |");
console.log("|---|---|---|---|---|---|---|---|---|");
let nextRow = -Infinity;
for (const s of samples) {
  if (s.at < nextRow) continue;
  nextRow = s.at + 5_000;
  console.log(`| ${secs(s.at - stoppedAt)} | ${s.phase} | ${fmt(s.end)} | ${fmt(s.forwarded)} | ${fmt(s.stored)} | ${fmt(s.buffered)} | ${fmt(s.lag)} | ${fmt(s.historianRss, 1)} | ${fmt(s.preprocessorRss, 1)} |`);
}
const caughtUp = caughtUpMs !== undefined;
console.log(`
| measured | value |
|---|---|
| ingest before the outage (Kafka telemetry records/s) | ${fmt(rate(before, "end"), 1)} |
| ingest while FerretDB was down (records/s; records added) | ${fmt(rate(outage, "end"), 1)}; ${fmt(ingestDuringOutage)} |
| historian samples stored before / while down (samples/s) | ${fmt(rate(before, "stored"), 1)} / ${fmt(rate(outage, "stored"), 1)} (${fmt(storedDuringOutage)} in ${secs(outageMs)} s) |
| historian lag: most before the outage / at the restart / peak | ${fmt(max(before.map((s) => s.lag)))} / ${fmt(max(outage.map((s) => s.lag)))} / ${fmt(lagPeak)} |
| FerretDB stopping took / down for (until infra.sh start answered) | ${secs(stopMs)} s / ${secs(restartedAt - stoppedAt)} s |
| caught up: everything in Kafka at the restart (${fmt(endAtRestart)}) stored and committed | ${caughtUp ? `${secs(caughtUpMs as number)} s after the restart` : `NOT within ${secs(catchupTimeoutMs)} s`} |
| lag back to its level before the outage | ${lagNormalMs === undefined ? "not reached" : `${secs(lagNormalMs)} s after the restart`} |
| historian RSS: before (max) / peak while down and catching up / end | ${fmt(rssBefore.historian, 1)} / ${fmt(rssPeak.historian, 1)} / ${fmt(rssEnd.historian, 1)} MiB |
| preprocessor RSS: before (max) / peak / end | ${fmt(rssBefore.preprocessor, 1)} / ${fmt(rssPeak.preprocessor, 1)} / ${fmt(rssEnd.preprocessor, 1)} MiB |
| samples sent (every seq of every PLC) / lost / duplicated in MongoDB | ${sent} / ${lost}${drained ? "" : " (not drained)"} / ${duplicated} |
| processes that died | ${died.length === 0 ? "none" : died.join(", ")} |
`);
if (detail.length > 0) console.log(detail.join("\n"));
const ok = lost === 0 && duplicated === 0 && drained && caughtUp && died.length === 0 && (ingestDuringOutage ?? 0) > 0;
console.log(ok ? "verdict: ok" : "verdict: FAILED");
if (!ok) process.exitCode = 1;
