import { strict as assert } from "node:assert";
import { parseCommand } from "../../../src/plc/command.ts";

describe("plc command parsing", () => {
  it("accepts a well-formed command and fills a missing ts with the receive time", () => {
    assert.deepEqual(parseCommand(JSON.stringify({ id: "a1", action: "setpoint", tag: "temp_sp", value: 170, ts: 5 }), 9), {
      ok: true,
      command: { id: "a1", action: "setpoint", tag: "temp_sp", value: 170, ts: 5 },
    });
    assert.deepEqual(parseCommand(JSON.stringify({ id: "a2", action: "start" }), 9), { ok: true, command: { id: "a2", action: "start", ts: 9 } });
  });

  it("rejects malformed commands with their id so they can be acknowledged as rejected", () => {
    const cases: [unknown, RegExp][] = [
      [{ id: "x", action: "explode" }, /action must be one of start, stop, reset, setpoint/],
      [{ id: "x", action: "setpoint", tag: 5 }, /tag must be a string/],
      [{ id: "x", action: "setpoint", tag: "t", value: "hot" }, /value must be a finite number/],
      [{ id: "x", action: "start", ts: "now" }, /ts must be epoch milliseconds/],
    ];
    for (const [payload, reason] of cases) {
      const parsed = parseCommand(JSON.stringify(payload), 0);
      assert.equal(parsed.ok, false);
      if (!parsed.ok) {
        assert.equal(parsed.id, "x");
        assert.match(parsed.reason, reason);
      }
    }
  });

  it("cannot acknowledge what has no usable id", () => {
    for (const payload of ["{not json", "[1,2]", "null", JSON.stringify({ action: "start" }), JSON.stringify({ id: "", action: "start" }), JSON.stringify({ id: "y".repeat(200), action: "start" })]) {
      const parsed = parseCommand(payload, 0);
      assert.equal(parsed.ok, false, payload);
      if (!parsed.ok) assert.equal(parsed.id, undefined);
    }
  });
});
