// The anomaly alarms scored against the PLC simulator's ground truth: the simulator's process
// models run in-process on simulated time; per fault type, faults are injected at random times,
// devices, tags, durations and severities; every scan goes through the same condition sources as
// the anomaly-detector service (learned anomaly condition, and the registry's limit conditions for
// comparison). Prints precision, recall and median detection delay per fault type, and the false
// alarms per device-hour of a healthy plant with machine stops and starts.
//   node_modules/.bin/node bench/anomaly/simulator.ts [--faults 24] [--seed 7] [--threshold 0.5]
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { DEFAULT_ANOMALY_OFF_DELAY_MS, DEFAULT_ANOMALY_SETTLE_MS } from "../../src/alarms/anomaly-condition.ts";
import { LEVEL_PRESETS, type DetectorKind } from "../../src/anomaly/index.ts";
import { FAULT_TYPES } from "../../src/plc/faults.ts";
import type { FaultType } from "../../src/shared/types.ts";
import { anomalySource, DETECTION_TOLERANCE_MS, limitSource, median, schedule, scoreRun, SIM_T0, simulate, type SourceFactory, type SourceScore } from "./sim-harness.ts";

const { values: args } = parseArgs({
  options: {
    faults: { type: "string", default: "24" },
    seed: { type: "string", default: "7" },
    threshold: { type: "string", default: "0.5" },
    detectors: { type: "string", default: "robust-z,ensemble" },
    "healthy-hours": { type: "string", default: "8" },
  },
});
const FAULTS = Number(args.faults);
const SEED = Number(args.seed);
const THRESHOLD = Number(args.threshold);
const HEALTHY_HOURS = Number(args["healthy-hours"]);
const PLC_COUNT = 10;
const DETECTORS = (args.detectors ?? "").split(",") as DetectorKind[];
const SCHEDULE = { learnMs: 30 * 60_000, gapMs: [15 * 60_000, 30 * 60_000] as [number, number], durationMs: [2 * 60_000, 10 * 60_000] as [number, number], severity: [0.3, 1] as [number, number], stopChance: 0.3 };

const sources: Record<string, SourceFactory> = {};
for (const kind of DETECTORS) sources[`anomaly ${kind}`] = anomalySource({ spec: LEVEL_PRESETS[kind], threshold: THRESHOLD });
sources["limits (H/L)"] = limitSource;

const started = performance.now();
console.log(`plantwire anomaly alarms against simulator ground truth — ${new Date().toISOString()}`);
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, Node ${process.versions.node}`);
console.log(
  `plant: ${PLC_COUNT} PLCs (2 of each machine type), 1 s scans, simulated time; seed ${SEED}. Per fault type: ${FAULTS} faults on the machines that support it, ` +
    `after ${SCHEDULE.learnMs / 60_000} min of healthy learning, duration ${SCHEDULE.durationMs.map((v) => v / 60_000).join("–")} min, severity ${SCHEDULE.severity.join("–")}, ` +
    `random analog tag for sensor faults, ${SCHEDULE.gapMs.map((v) => v / 60_000).join("–")} min healthy between faults, a machine stop of 5–15 min in ${SCHEDULE.stopChance * 100} % of the gaps.`,
);
console.log(
  `anomaly condition: LEVEL_PRESETS detector per device over its numeric tags (counters excluded), threshold ${THRESHOLD}, clears below ${THRESHOLD / 2} after ${DEFAULT_ANOMALY_OFF_DELAY_MS / 1000} s, ` +
    `scored only while running, ${DEFAULT_ANOMALY_SETTLE_MS / 1000} s settling after a start. Limits: the registry's H/L limits (condition evaluator, default deadband).`,
);
console.log(`an alarm onset is a true positive if it falls in [fault start, fault end + ${DETECTION_TOLERANCE_MS / 1000} s] on the fault's device; precision = TP onsets / all onsets; recall = faults with a TP onset / faults; delay = first TP onset − fault start.\n`);

function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? "").length)));
  const line = (r: string[]): string => "| " + r.map((v, c) => (c === 0 ? v.padEnd(widths[c] as number) : v.padStart(widths[c] as number))).join(" | ") + " |";
  return [line(cells[0] as string[]), "|" + widths.map((w, c) => (c === 0 ? "-".repeat(w + 2) : "-".repeat(w + 1) + ":")).join("|") + "|", ...cells.slice(1).map(line)].join("\n");
}
const pct = (n: number, d: number): string => (d === 0 ? "—" : `${((100 * n) / d).toFixed(0)}%`);
const secs = (ms: number): string => (Number.isNaN(ms) ? "—" : `${(ms / 1000).toFixed(0)} s`);

const rows: (string | number)[][] = [];
const totals = new Map<string, SourceScore[]>();
for (const type of FAULT_TYPES as readonly FaultType[]) {
  const scenario = schedule({ plcCount: PLC_COUNT, seed: SEED, type, faults: FAULTS, ...SCHEDULE });
  const t0 = performance.now();
  const run = simulate(scenario, sources);
  const took = (performance.now() - t0) / 1000;
  for (const name of Object.keys(sources)) {
    const s = scoreRun(run, name);
    totals.set(name, [...(totals.get(name) ?? []), s]);
    rows.push([type, name, `${s.detected}/${s.faults}`, pct(s.detected, s.faults), pct(s.truePositives, s.alarms), s.falsePositives, secs(median(s.delays))]);
  }
  console.error(`${type}: ${scenario.devices?.join(", ")}; ${(run.deviceMs / 3_600_000).toFixed(1)} device-hours, ${run.scans} scans in ${took.toFixed(1)} s`);
}
console.log("### Per fault type\n");
console.log(table(["fault type", "source", "detected", "recall", "precision", "false alarms", "median delay"], rows));

const healthy = schedule({ plcCount: PLC_COUNT, seed: SEED + 1, type: null, faults: 0, ...SCHEDULE, healthyMs: HEALTHY_HOURS * 3_600_000 });
const healthyRun = simulate(healthy, sources);
console.log(`\n### Healthy plant: ${PLC_COUNT} machines × ${HEALTHY_HOURS} h, ${healthy.stops.length} stop/start cycles, no faults\n`);
console.log(
  table(
    ["source", "false alarms", "per device-hour", "of which in the first hour (warm-up)"],
    Object.keys(sources).map((name) => {
      const falseAlarms = healthyRun.alarms.filter((a) => a.source === name);
      return [name, falseAlarms.length, (falseAlarms.length / (healthyRun.deviceMs / 3_600_000)).toFixed(3), falseAlarms.filter((a) => a.ts < SIM_T0 + 3_600_000).length];
    }),
  ),
);
const examples = healthyRun.alarms.slice(0, 5);
if (examples.length > 0) console.log(`\nfirst false alarms on the healthy plant:\n${examples.map((a) => `  ${a.source} ${a.alarmId} at +${((a.ts - SIM_T0) / 60_000).toFixed(1)} min: ${a.message}`).join("\n")}`);

console.log("\n### All fault types together\n");
console.log(
  table(
    ["source", "recall", "precision", "false alarms per healthy device-hour (fault runs)"],
    [...totals].map(([name, scores]) => {
      const sum = (f: (s: SourceScore) => number): number => scores.reduce((a, s) => a + f(s), 0);
      return [name, pct(sum((s) => s.detected), sum((s) => s.faults)), pct(sum((s) => s.truePositives), sum((s) => s.alarms)), (sum((s) => s.falsePositives) / sum((s) => s.healthyHours)).toFixed(3)];
    }),
  ),
);
console.log(`\nbenchmark took ${((performance.now() - started) / 1000).toFixed(1)} s`);
