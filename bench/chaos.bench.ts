// Soak variant of test/chaos/chaos.spec.ts: the same scenarios (SIGKILL + restart of each service
// process and each server on a private infrastructure stack, under PLC load) with longer loads.
// Prints the markdown table of docs/reliability.md ("Chaos"); exits 1 if a sample was lost or
// duplicated.
// --drain-ms: how long the history may stop growing after a scenario's load before what it lacks
// counts as lost (it may grow for up to 4 times that).
//   node bench/chaos.bench.ts [--load-ms 30000] [--drain-ms 120000] [--plcs 10] [--scan-ms 150]
//                             [--resend-window-ms 5000] [--only mosquitto,preprocessor,...]
// CHAOS_LOG_DIR=<dir> keeps every service's output and the servers' logs there (CHAOS_LOG_LEVEL=info
// for more than warnings), as it does for the spec.
import { parseArgs } from "node:util";
import { ALL_TARGETS, ChaosRun, describeTarget, formatTable, type ScenarioResult } from "../test/chaos/chaos-run.ts";

const { values } = parseArgs({
  options: {
    "load-ms": { type: "string", default: "30000" },
    "drain-ms": { type: "string", default: "120000" },
    plcs: { type: "string", default: "10" },
    "scan-ms": { type: "string", default: "150" },
    "resend-window-ms": { type: "string", default: "5000" },
    only: { type: "string" },
  },
});
const only = values.only?.split(",");
const targets = only ? ALL_TARGETS.filter((t) => only.includes(t.name)) : ALL_TARGETS;
if (targets.length === 0) throw new Error(`--only names no scenario (known: ${ALL_TARGETS.map((t) => t.name).join(", ")})`);

const run = new ChaosRun({
  plcs: Number(values.plcs),
  scanMs: Number(values["scan-ms"]),
  loadMs: Number(values["load-ms"]),
  drainMs: Number(values["drain-ms"]),
  resendWindowMs: Number(values["resend-window-ms"]),
});
const rows: ScenarioResult[] = [];
const t0 = Date.now();
try {
  await run.start();
  for (const target of targets) {
    const row = await run.scenario(target);
    rows.push(row);
    console.log(`${describeTarget(target)}: lost ${row.lost}, duplicated ${row.duplicated}, resent ${row.resent}, ${row.backlogAtKill} queued for the preprocessor at the kill${row.lastDown ? `; last down before healthy: ${row.lastDown}` : ""}${row.detail.length ? `\n  ${row.detail.join("\n  ")}` : ""}`);
  }
} finally {
  await run.stop();
}
console.log(`\n${process.argv.slice(1).join(" ")}: ${values.plcs} PLCs every ${values["scan-ms"]} ms, ${values["load-ms"]} ms load before each kill and after each restart, ${((Date.now() - t0) / 60_000).toFixed(1)} min\n`);
console.log(formatTable(rows));
if (rows.some((r) => r.lost > 0 || r.duplicated > 0 || !r.drained)) process.exitCode = 1;
