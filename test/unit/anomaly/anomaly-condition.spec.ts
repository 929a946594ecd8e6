// The anomaly condition on the simulator's process models (simulated time, a few minutes): it must
// catch injected faults, stay quiet on a healthy machine across stops and starts, survive a
// checkpoint, and follow suppression like the other process alarms.
import { strict as assert } from "node:assert";
import { anomalySource, limitSource, scoreRun, SIM_T0, simulate, type SimScenario } from "../../../bench/anomaly/sim-harness.ts";
import { AnomalyConditionSource } from "../../../src/alarms/anomaly-condition.ts";
import { LEVEL_PRESETS } from "../../../src/anomaly/index.ts";
import type { AlarmTransition, TagDefinition, TelemetryRecord } from "../../../src/shared/types.ts";

const MIN = 60_000;
const OPTIONS = { spec: LEVEL_PRESETS["robust-z"], threshold: 0.5 };
/** plantLayout(2): press-01, oven-01. The detector warms up for 400 one-second scans (~7 min). */
const oven = (faults: SimScenario["faults"], stops: SimScenario["stops"] = [], durationMs = 20 * MIN): SimScenario => ({ plcCount: 2, seed: 3, scanMs: 1000, durationMs, devices: ["oven-01"], faults, stops });

describe("anomaly condition on the simulated plant", () => {
  it("stays quiet on a healthy oven for 40 minutes, including a stop and a restart", () => {
    const run = simulate(oven([], [{ device: "oven-01", at: 15 * MIN, durationMs: 8 * MIN }], 40 * MIN), { anomaly: anomalySource(OPTIONS) });
    assert.deepEqual(run.alarms, []);
  });

  for (const fault of [
    { type: "offset", tag: "zone_temp", severity: 0.8 },
    { type: "spike", tag: "zone_temp", severity: 1 },
    { type: "overheat", severity: 1 },
  ] as const) {
    it(`raises an anomaly alarm for a ${fault.type} within its window and names the tag`, () => {
      const run = simulate(oven([{ device: "oven-01", ...fault, start: SIM_T0 + 12 * MIN, durationMs: 4 * MIN }]), { anomaly: anomalySource(OPTIONS) });
      const score = scoreRun(run, "anomaly");
      assert.equal(score.detected, 1, `detected: ${JSON.stringify(run.alarms)}`);
      assert.equal(score.falsePositives, 0);
      const tag = fault.type === "overheat" ? "zone_temp" : fault.tag;
      assert.match(run.alarms[0]?.message ?? "", new RegExp(`${tag} [-0-9.]+ \\S+, expected [-0-9.]+ \\S+ \\(z [+-]`));
    });
  }

  it("catches a small offset that stays below the H limit", () => {
    const run = simulate(oven([{ device: "oven-01", type: "offset", tag: "zone_temp", severity: 0.3, start: SIM_T0 + 12 * MIN, durationMs: 4 * MIN }]), {
      anomaly: anomalySource(OPTIONS),
      limits: limitSource,
    });
    assert.equal(scoreRun(run, "anomaly").detected, 1);
    assert.equal(scoreRun(run, "limits").detected, 0);
  });
});

describe("AnomalyConditionSource", () => {
  const tags: TagDefinition[] = [
    { name: "temp", unit: "°C", type: "number" },
    { name: "count", unit: "count", type: "number" },
    { name: "state", unit: "", type: "string" },
  ];
  const record = (i: number, temp: number, state = "running"): TelemetryRecord => ({
    site: "s",
    area: "a",
    line: "l",
    device: "d1",
    ts: SIM_T0 + i * 1000,
    seq: i,
    receivedAt: 0,
    values: { temp: { v: temp, q: "good" }, count: { v: i, q: "good" }, state: { v: state, q: "good" } },
  });
  const noise = (i: number): number => 50 + Math.sin(i * 1.7) * 0.3 + Math.cos(i * 0.37) * 0.2;
  const options = { spec: { kind: "robust-z" as const, options: { warmup: 50 } }, threshold: 0.5, offDelayMs: 10_000, settleMs: 5_000 };

  function feed(source: AnomalyConditionSource, from: number, to: number, value: (i: number) => number, state?: (i: number) => string): AlarmTransition[] {
    const out: AlarmTransition[] = [];
    for (let i = from; i < to; i++) out.push(...source.evaluate(record(i, value(i), state?.(i)), tags, 0));
    return out;
  }

  it("watches numeric tags only, counters excluded, and continues identically from a checkpoint", () => {
    const a = new AnomalyConditionSource(options);
    feed(a, 0, 200, noise);
    assert.deepEqual(a.score("d1")?.tags, ["temp"]);
    const checkpoint = JSON.parse(JSON.stringify(a.checkpoint("d1", 0)));
    const b = new AnomalyConditionSource(options);
    b.restoreDevice(checkpoint);
    assert.equal(b.score("d1")?.restored, true);
    assert.equal(b.score("d1")?.warmingUp, false, "a restored detector does not warm up again");
    assert.equal(b.score("d1")?.samples, 200);
    feed(a, 200, 260, noise);
    feed(b, 200, 260, noise);
    assert.deepEqual(b.score("d1")?.last, a.score("d1")?.last);
  });

  it("raises with the tag's value, expected value and z, clears after the off-delay below half the threshold, and suppresses while stopped", () => {
    const source = new AnomalyConditionSource(options);
    assert.deepEqual(feed(source, 0, 200, noise), []);
    const raised = feed(source, 200, 230, (i) => noise(i) + 20);
    assert.equal(raised.length, 1);
    assert.equal(raised[0]?.kind, "anomaly");
    assert.equal(raised[0]?.alarmId, "d1:*:anomaly");
    assert.equal(raised[0]?.state, "active");
    assert.match(raised[0]?.message ?? "", /^anomaly score [0-9.]+ ≥ 0\.5: temp [0-9.]+ °C, expected 50(\.\d+)? °C \(z \+\d/);
    // The machine stops while the alarm is active: suppressed by design, no score learnt meanwhile.
    const stopped = feed(source, 230, 260, (i) => noise(i) + 20, () => "stopped");
    assert.deepEqual(stopped.map((t) => [t.state, t.suppressed]), [["active", true]]);
    const samples = source.score("d1")?.samples;
    // Restarted and healthy again: unsuppressed, then cleared once the score stayed low for the off-delay.
    const back = feed(source, 260, 400, noise);
    assert.equal(source.score("d1")?.samples, (samples ?? 0) + 140);
    assert.deepEqual(back.map((t) => [t.state, t.suppressed]), [["active", false], ["cleared", false]]);
    assert.match(back[1]?.message ?? "", /^back to normal/);
  });

  it("does not alarm while a restarted machine returns to its operating point", () => {
    const source = new AnomalyConditionSource(options);
    feed(source, 0, 200, noise);
    // Stopped and cooled down to 20 °C, then warming back up over a minute after the start.
    const transitions = feed(source, 200, 400, (i) => (i < 260 ? 20 : Math.min(noise(i), 20 + (i - 260))), (i) => (i < 260 ? "stopped" : "running"));
    assert.deepEqual(transitions, []);
    assert.deepEqual(feed(source, 400, 430, (i) => noise(i) + 20).map((t) => t.state), ["active"], "armed again once back at the operating point");
  });

  it("takes over anomaly alarms the alarms service holds active, so it can clear them", () => {
    const source = new AnomalyConditionSource(options);
    source.restoreActive([{ device: "d1", tag: "*", kind: "anomaly", suppressed: false }]);
    const transitions = feed(source, 0, 200, noise);
    assert.deepEqual(transitions.map((t) => t.state), ["cleared"]);
  });
});
