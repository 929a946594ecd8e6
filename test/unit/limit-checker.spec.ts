import { strict as assert } from "node:assert";
import { alarmWrite } from "../../src/alarms/alarm-store.ts";
import { LimitChecker } from "../../src/alarms/limit-checker.ts";
import type { TagDefinition, TelemetryRecord } from "../../src/shared/types.ts";

const tags: TagDefinition[] = [{ name: "temp", unit: "°C", type: "number", min: 0, max: 200, lo: 20, hi: 150 }];

function sample(ts: number, temp: number, q: "good" | "bad" = "good"): TelemetryRecord {
  return { site: "s", area: "a", line: "l", device: "oven-01", ts, seq: ts, receivedAt: ts, values: { temp: { v: temp, q } } };
}

describe("limit checker", () => {
  it("raises once when a value passes the high limit and clears past the deadband", () => {
    const checker = new LimitChecker(0.01); // deadband 2 °C on a 200 °C span
    assert.deepEqual(checker.evaluate(sample(1, 140), tags), []);
    const raised = checker.evaluate(sample(2, 151), tags);
    assert.equal(raised.length, 1);
    assert.deepEqual({ ...raised[0] }, { alarmId: "oven-01:temp:hi:2", device: "oven-01", tag: "temp", kind: "hi", state: "active", value: 151, limit: 150, ts: 2 });
    assert.deepEqual(checker.evaluate(sample(3, 160), tags), [], "still active: no second alarm");
    assert.deepEqual(checker.evaluate(sample(4, 149), tags), [], "inside the deadband: not cleared");
    const cleared = checker.evaluate(sample(5, 147), tags);
    assert.deepEqual(cleared.map((t) => [t.alarmId, t.state, t.ts]), [["oven-01:temp:hi:2", "cleared", 5]]);
  });

  it("raises low alarms and ignores bad-quality samples", () => {
    const checker = new LimitChecker();
    assert.deepEqual(checker.evaluate(sample(1, 5, "bad"), tags), []);
    assert.equal(checker.evaluate(sample(2, 5), tags)[0]?.kind, "lo");
  });

  it("does not raise again after a restart restored the active condition", () => {
    const checker = new LimitChecker();
    checker.restore([{ alarmId: "oven-01:temp:hi:1", device: "oven-01", tag: "temp", kind: "hi", limit: 150 }]);
    assert.deepEqual(checker.evaluate(sample(2, 170), tags), []);
    assert.equal(checker.evaluate(sample(3, 100), tags)[0]?.alarmId, "oven-01:temp:hi:1");
  });

  it("writes transitions idempotently: a cleared alarm stays cleared when its activation is replayed", () => {
    const active = alarmWrite({ alarmId: "x", device: "d", tag: "t", kind: "hi", state: "active", value: 5, limit: 4, ts: 1 });
    const cleared = alarmWrite({ alarmId: "x", device: "d", tag: "t", kind: "hi", state: "cleared", value: 3, limit: 4, ts: 2 });
    assert.ok("updateOne" in active && "updateOne" in cleared);
    // The activation only inserts; it never sets fields on an existing document.
    assert.deepEqual(Object.keys(active.updateOne.update), ["$setOnInsert"]);
    assert.deepEqual((cleared.updateOne.update as { $set: unknown }).$set, { state: "cleared", clearedAt: 2, updatedAt: 2 });
  });
});
