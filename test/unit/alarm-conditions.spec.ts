// The condition evaluator on a fake clock: sample times drive limits and delays, arrival times
// drive communication loss.
import { strict as assert } from "node:assert";
import { conditionDefinitions } from "../../src/alarms/alarm-definitions.ts";
import { ConditionEvaluator } from "../../src/alarms/condition-evaluator.ts";
import type { AlarmTransition, TagDefinition, TagValue, TelemetryRecord } from "../../src/shared/types.ts";

const temp: TagDefinition = { name: "temp", unit: "°C", type: "number", min: 0, max: 200, lo: 20, hi: 150 };
const STATE: TagDefinition = { name: "state", unit: "", type: "string" };

function record(ts: number, values: Record<string, TagValue>, device = "oven-01", q: "good" | "bad" = "good"): TelemetryRecord {
  return { site: "s", area: "a", line: "l", device, ts, seq: ts, receivedAt: ts, values: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, { v, q }])) };
}

function brief(transitions: AlarmTransition[]): string[] {
  return transitions.map((t) => `${t.alarmId} ${t.state}${t.suppressed ? " suppressed" : ""}`);
}

describe("alarm conditions", () => {
  it("derives L/H from the registry's lo/hi, and LL/HH, rate of change and stuck value where defined", () => {
    assert.deepEqual(conditionDefinitions(temp).map((d) => [d.kind, d.limit, d.severity, d.deadband]), [
      ["hi", 150, "medium", 2],
      ["lo", 20, "medium", 2],
    ]);
    const full: TagDefinition = { ...temp, hihi: 180, lolo: 5, alarm: { severity: { hihi: "critical" }, rocPerSecond: 10, stuckAfterMs: 30_000, onDelayMs: 500 } };
    assert.deepEqual(conditionDefinitions(full).map((d) => [d.kind, d.severity, d.onDelayMs]), [
      ["hihi", "critical", 500],
      ["hi", "medium", 500],
      ["lo", "medium", 500],
      ["lolo", "high", 500],
      ["roc", "medium", 500],
      ["stuck", "low", 0],
    ]);
    assert.deepEqual(conditionDefinitions({ name: "door", unit: "", type: "boolean" }), []);
  });

  it("raises once per excursion with one id per condition and clears past the deadband", () => {
    const c = new ConditionEvaluator();
    assert.deepEqual(c.evaluate(record(1, { temp: 140 }), [temp], 1), []);
    const raised = c.evaluate(record(2, { temp: 151 }), [temp], 2);
    assert.deepEqual(raised, [
      { type: "condition", alarmId: "oven-01:temp:hi", device: "oven-01", tag: "temp", kind: "hi", state: "active", value: 151, limit: 150, ts: 2, severity: "medium", suppressed: false, message: "temp 151 °C above H 150" },
    ]);
    assert.deepEqual(c.evaluate(record(3, { temp: 160 }), [temp], 3), [], "still active: nothing new");
    assert.deepEqual(c.evaluate(record(4, { temp: 149 }), [temp], 4), [], "inside the deadband: not cleared");
    assert.deepEqual(brief(c.evaluate(record(5, { temp: 147 }), [temp], 5)), ["oven-01:temp:hi cleared"]);
    assert.deepEqual(brief(c.evaluate(record(6, { temp: 155 }), [temp], 6)), ["oven-01:temp:hi active"], "the next excursion: same alarm id");
  });

  it("raises H and HH as separate alarms, and L/LL below", () => {
    const c = new ConditionEvaluator();
    const tags = [{ ...temp, hihi: 180, lolo: 5 }];
    assert.deepEqual(brief(c.evaluate(record(1, { temp: 190 }), tags, 1)), ["oven-01:temp:hihi active", "oven-01:temp:hi active"]);
    assert.deepEqual(brief(c.evaluate(record(2, { temp: 160 }), tags, 2)), ["oven-01:temp:hihi cleared"]);
    assert.deepEqual(brief(c.evaluate(record(3, { temp: 1 }), tags, 3)), ["oven-01:temp:hi cleared", "oven-01:temp:lo active", "oven-01:temp:lolo active"]);
  });

  it("applies the on-delay and the off-delay in sample time", () => {
    const c = new ConditionEvaluator();
    const tags = [{ ...temp, alarm: { onDelayMs: 3_000, offDelayMs: 2_000 } }];
    assert.deepEqual(c.evaluate(record(0, { temp: 151 }), tags, 0), []);
    assert.deepEqual(c.evaluate(record(1_000, { temp: 149 }), tags, 1_000), [], "dipped back: delay restarts");
    assert.deepEqual(c.evaluate(record(2_000, { temp: 152 }), tags, 2_000), []);
    assert.deepEqual(c.evaluate(record(4_000, { temp: 153 }), tags, 4_000), []);
    const raised = c.evaluate(record(5_000, { temp: 154 }), tags, 5_000);
    assert.deepEqual(brief(raised), ["oven-01:temp:hi active"]);
    assert.equal(raised[0].ts, 5_000);
    assert.deepEqual(c.evaluate(record(6_000, { temp: 140 }), tags, 6_000), []);
    assert.deepEqual(c.evaluate(record(7_000, { temp: 151 }), tags, 7_000), [], "beyond again during the off-delay");
    assert.deepEqual(c.evaluate(record(8_000, { temp: 140 }), tags, 8_000), []);
    assert.deepEqual(c.evaluate(record(9_000, { temp: 140 }), tags, 9_000), []);
    assert.deepEqual(brief(c.evaluate(record(10_000, { temp: 140 }), tags, 10_000)), ["oven-01:temp:hi cleared"]);
  });

  it("ignores bad-quality samples without resetting the delays", () => {
    const c = new ConditionEvaluator();
    const tags = [{ ...temp, alarm: { onDelayMs: 2_000 } }];
    assert.deepEqual(c.evaluate(record(0, { temp: 5 }, "oven-01", "bad"), tags, 0), []);
    assert.deepEqual(c.evaluate(record(1_000, { temp: 5 }), tags, 1_000), []);
    assert.deepEqual(c.evaluate(record(2_000, { temp: 500 }, "oven-01", "bad"), tags, 2_000), []);
    assert.deepEqual(brief(c.evaluate(record(3_000, { temp: 5 }), tags, 3_000)), ["oven-01:temp:lo active"]);
  });

  it("raises a rate-of-change alarm when the value moves faster than the limit", () => {
    const c = new ConditionEvaluator();
    const tags: TagDefinition[] = [{ name: "p", unit: "bar", type: "number", alarm: { rocPerSecond: 2 } }];
    assert.deepEqual(c.evaluate(record(0, { p: 5 }), tags, 0), []);
    assert.deepEqual(c.evaluate(record(1_000, { p: 6.5 }), tags, 1_000), [], "1.5 bar/s");
    const raised = c.evaluate(record(1_500, { p: 8 }), tags, 1_500);
    assert.deepEqual(raised.map((t) => [t.alarmId, t.state, t.value, t.limit]), [["oven-01:p:roc", "active", 3, 2]]);
    assert.deepEqual(brief(c.evaluate(record(2_500, { p: 8.5 }), tags, 2_500)), ["oven-01:p:roc cleared"]);
  });

  it("raises a stuck-value alarm when a value does not change for the set time, and clears on the first change", () => {
    const c = new ConditionEvaluator();
    const tags: TagDefinition[] = [{ name: "flow", unit: "m³/h", type: "number", alarm: { stuckAfterMs: 10_000 } }];
    for (let t = 0; t < 10_000; t += 1_000) assert.deepEqual(c.evaluate(record(t, { flow: 50 }), tags, t), []);
    const raised = c.evaluate(record(10_000, { flow: 50 }), tags, 10_000);
    assert.deepEqual(raised.map((t) => [t.alarmId, t.state, t.value, t.limit]), [["oven-01:flow:stuck", "active", 10_000, 10_000]]);
    assert.deepEqual(c.evaluate(record(11_000, { flow: 50 }), tags, 11_000), []);
    assert.deepEqual(brief(c.evaluate(record(12_000, { flow: 50.1 }), tags, 12_000)), ["oven-01:flow:stuck cleared"]);
  });

  it("suppresses process alarms while the machine is stopped, starting or stopping, and reveals them when it runs", () => {
    const c = new ConditionEvaluator();
    const tags = [temp, STATE];
    assert.deepEqual(brief(c.evaluate(record(1, { temp: 10, state: "stopped" }), tags, 1)), ["oven-01:temp:lo active suppressed"]);
    assert.deepEqual(c.evaluate(record(2, { temp: 10, state: "starting" }), tags, 2), [], "still suppressed");
    assert.deepEqual(brief(c.evaluate(record(3, { temp: 30, state: "starting" }), tags, 3)), ["oven-01:temp:lo cleared suppressed"], "cleared while suppressed");
    assert.deepEqual(brief(c.evaluate(record(4, { temp: 30, state: "running" }), tags, 4)), ["oven-01:temp:lo cleared"], "unsuppressed, normal");
    assert.deepEqual(c.evaluate(record(5, { temp: 30, state: "stopping" }), tags, 5), [], "a normal condition needs no suppression record");
    assert.deepEqual(brief(c.evaluate(record(6, { temp: 10, state: "running" }), tags, 6)), ["oven-01:temp:lo active"]);
    assert.deepEqual(brief(c.evaluate(record(7, { temp: 10, state: "stopping" }), tags, 7)), ["oven-01:temp:lo active suppressed"], "an active alarm is suppressed when the machine stops");
    assert.deepEqual(brief(c.evaluate(record(8, { temp: 10, state: "faulted" }), tags, 8)), ["oven-01:temp:lo active"], "a trip is not suppressed: its cause must stay visible");
  });

  it("raises communication loss after N scan cycles of silence, at least the minimum, and clears on data", () => {
    const c = new ConditionEvaluator({ commLossScanCycles: 5, commLossMinMs: 2_000 });
    for (let t = 0; t <= 5_000; t += 1_000) c.evaluate(record(t, { temp: 100 }), [temp], t);
    assert.equal(c.commTimeoutMs("oven-01"), 5_000, "5 cycles of the learned 1 s scan");
    assert.deepEqual(c.tick(10_000), [], "exactly at the timeout");
    const lost = c.tick(10_001);
    assert.deepEqual(lost.map((t) => [t.alarmId, t.tag, t.kind, t.state, t.value, t.limit, t.severity]), [["oven-01:*:comm", "*", "comm", "active", 5_001, 5_000, "high"]]);
    assert.deepEqual(c.tick(20_000), [], "raised once");
    assert.deepEqual(brief(c.evaluate(record(21_000, { temp: 100 }), [temp], 21_000)), ["oven-01:*:comm cleared"]);
    const fast = new ConditionEvaluator({ commLossScanCycles: 5, commLossMinMs: 2_000 });
    for (let t = 0; t <= 1_000; t += 100) fast.evaluate(record(t, { temp: 100 }), [temp], t);
    assert.equal(fast.commTimeoutMs("oven-01"), 2_000, "never below the minimum");
  });

  it("raises communication loss on a death message and clears it only after a birth and new data", () => {
    const c = new ConditionEvaluator();
    assert.deepEqual(c.deviceState("pump-09", "offline", 0), [], "a device this evaluator never saw is not judged");
    c.evaluate(record(1_000, { temp: 100 }), [temp], 1_000);
    assert.deepEqual(brief(c.deviceState("oven-01", "offline", 1_500)), ["oven-01:*:comm active"]);
    assert.deepEqual(c.evaluate(record(1_200, { temp: 100 }), [temp], 1_600), [], "late data from before the death does not clear it");
    assert.deepEqual(c.deviceState("oven-01", "online", 3_000), [], "born again, but no data yet");
    assert.deepEqual(brief(c.evaluate(record(3_100, { temp: 100 }), [temp], 3_100)), ["oven-01:*:comm cleared"]);
  });

  it("after a restart, does not raise restored conditions again and clears them when they return", () => {
    const c = new ConditionEvaluator();
    c.restore([
      { device: "oven-01", tag: "temp", kind: "hi", suppressed: false },
      { device: "oven-01", tag: "*", kind: "comm", suppressed: false },
    ]);
    assert.equal(c.activeCount(), 2);
    assert.deepEqual(c.tick(1_000_000), [], "silence is not judged before data arrived");
    assert.deepEqual(brief(c.evaluate(record(2, { temp: 170 }), [temp], 2)), ["oven-01:*:comm cleared"]);
    assert.deepEqual(brief(c.evaluate(record(3, { temp: 100 }), [temp], 3)), ["oven-01:temp:hi cleared"]);
  });

  it("clears an active condition whose limit was removed from the registry", () => {
    const c = new ConditionEvaluator();
    c.evaluate(record(1, { temp: 170 }), [temp], 1);
    const withoutHi: TagDefinition = { ...temp, hi: undefined };
    assert.deepEqual(brief(c.evaluate(record(2, { temp: 170 }), [withoutHi], 2)), ["oven-01:temp:hi cleared"]);
  });

  it("forgets devices whose partitions moved, and does not count a consumption pause as silence", () => {
    const c = new ConditionEvaluator({ commLossMinMs: 1_000 });
    c.evaluate(record(0, { temp: 100 }), [temp], 0);
    c.evaluate(record(0, { temp: 100 }, "pump-01"), [temp], 0);
    c.forget("pump-01");
    assert.deepEqual(c.devices(), ["oven-01"]);
    c.resetSilence(5_000);
    assert.deepEqual(c.tick(5_500), []);
    assert.deepEqual(brief(c.tick(6_001)), ["oven-01:*:comm active"]);
  });
});
