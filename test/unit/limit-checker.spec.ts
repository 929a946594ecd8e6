import { strict as assert } from "node:assert";
import { DebouncedCondition, deadbandOf, limitPosition } from "../../src/alarms/limit-checker.ts";
import type { TagDefinition } from "../../src/shared/types.ts";

const temp: TagDefinition = { name: "temp", unit: "°C", type: "number", min: 0, max: 200, lo: 20, hi: 150 };

describe("limit checker", () => {
  it("takes the deadband from the tag, else 1 % of its span, else 1 % of the limit", () => {
    assert.equal(deadbandOf(temp, 150), 2);
    assert.equal(deadbandOf({ ...temp, alarm: { deadband: 0.5 } }, 150), 0.5);
    assert.equal(deadbandOf({ name: "p", unit: "bar", type: "number", hi: 12 }, 12), 0.12);
  });

  it("places values beyond a high or low limit, and back inside only past the deadband", () => {
    assert.deepEqual(limitPosition("hi", 151, 150, 2), { beyond: true, inside: false });
    assert.deepEqual(limitPosition("hi", 149, 150, 2), { beyond: false, inside: false }, "in the deadband");
    assert.deepEqual(limitPosition("hihi", 147, 150, 2), { beyond: false, inside: true });
    assert.deepEqual(limitPosition("lo", 19, 20, 2), { beyond: true, inside: false });
    assert.deepEqual(limitPosition("lolo", 21, 20, 2), { beyond: false, inside: false }, "in the deadband");
    assert.deepEqual(limitPosition("lo", 23, 20, 2), { beyond: false, inside: true });
    assert.deepEqual(limitPosition("hi", 150, 150, 0), { beyond: false, inside: false }, "exactly at the limit is neither");
  });

  it("raises at once and returns at once without delays", () => {
    const c = new DebouncedCondition();
    assert.equal(c.update({ beyond: true, inside: false }, 1, 0, 0), "raised");
    assert.equal(c.update({ beyond: true, inside: false }, 2, 0, 0), null);
    assert.equal(c.update({ beyond: false, inside: true }, 3, 0, 0), "returned");
    assert.equal(c.active, false);
  });

  it("raises only after the value stayed beyond for the on-delay, restarting the delay on a break", () => {
    const c = new DebouncedCondition();
    const beyond = { beyond: true, inside: false };
    assert.equal(c.update(beyond, 1_000, 3_000, 0), null);
    assert.equal(c.update(beyond, 3_000, 3_000, 0), null);
    assert.equal(c.update({ beyond: false, inside: true }, 3_500, 3_000, 0), null, "a break resets the delay");
    assert.equal(c.update(beyond, 4_000, 3_000, 0), null);
    assert.equal(c.update(beyond, 6_999, 3_000, 0), null);
    assert.equal(c.update(beyond, 7_000, 3_000, 0), "raised");
  });

  it("returns only after the value stayed inside for the off-delay; the deadband counts as not inside", () => {
    const c = new DebouncedCondition(true);
    const inside = { beyond: false, inside: true };
    assert.equal(c.update(inside, 0, 0, 2_000), null);
    assert.equal(c.update({ beyond: false, inside: false }, 1_000, 0, 2_000), null, "back in the deadband resets the delay");
    assert.equal(c.update(inside, 1_500, 0, 2_000), null);
    assert.equal(c.update({ beyond: true, inside: false }, 2_000, 0, 2_000), null, "beyond again resets the delay");
    assert.equal(c.update(inside, 2_500, 0, 2_000), null);
    assert.equal(c.update(inside, 4_500, 0, 2_000), "returned");
  });
});
