// Delivery guarantees under faults (issue #6): with the PLC simulator under steady load, each
// service process and each server is SIGKILLed and restarted, one at a time, on a private
// infrastructure stack; afterwards every seq the PLCs sent must be in the history exactly once.
// Short loads for CI; `npm run bench:chaos` runs the same scenarios longer.
import { strict as assert } from "node:assert";
import { ALL_TARGETS, ChaosRun, describeTarget, formatTable, type ScenarioResult } from "./chaos-run.ts";

const LOAD_MS = Number(process.env.CHAOS_LOAD_MS ?? 8_000);

describe("chaos: SIGKILL and restart under load, 0 lost / 0 duplicated", function () {
  // A scenario bounds its own waits (restart 240 s, health 180 s, drain 60 s without progress and
  // 240 s in all); measured: 20-65 s each, Kafka's up to 160 s on a busy machine.
  this.timeout(600_000);
  const run = new ChaosRun({ plcs: 10, scanMs: 150, loadMs: LOAD_MS, drainMs: 60_000, resendWindowMs: 5_000 });
  const rows: ScenarioResult[] = [];

  before(async () => {
    await run.start();
  });

  after(async () => {
    if (rows.length > 0) console.log(`\n${formatTable(rows)}\n`);
    await run.stop();
  });

  // Every service process and every server, in ALL_TARGETS order, on one stack: a scenario starts
  // from whatever state the ones before it left (sessions, offsets, autosaves), as in production.
  for (const target of ALL_TARGETS) {
    it(`${describeTarget(target)}: every sample sent is stored once`, async () => {
      const result = await run.scenario(target);
      rows.push(result);
      console.log(`      back up ${result.downMs} ms, healthy ${result.healthyMs} ms${result.lastDown ? ` (last down: ${result.lastDown})` : ""}, all stored ${result.drainMs} ms after the load; ${result.backlogAtKill} queued for the preprocessor at the kill; sent ${result.sent}, stored ${result.stored}, lost ${result.lost}, duplicated ${result.duplicated}, resent ${result.resent}${result.detail.length ? `\n      ${result.detail.join("\n      ")}` : ""}`);
      assert.ok(result.sent > 0, "the PLCs sent telemetry during the scenario");
      assert.ok(result.drained, `the history stopped growing for 60 s (or 4 min passed) without every sample: lost ${result.lost}\n${result.detail.join("\n")}\n--- ${describeTarget(target)} log ---\n${run.logsOf(target).slice(-3_000)}`);
      assert.deepEqual({ lost: result.lost, duplicated: result.duplicated }, { lost: 0, duplicated: 0 }, result.detail.join("\n"));
    });
  }
});
