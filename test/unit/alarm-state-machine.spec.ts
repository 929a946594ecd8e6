// Every ISA-18.2 transition and timer of the alarm state machine, on a fake clock.
import { strict as assert } from "node:assert";
import { applyInput, eventId, newAlarm, nextTimer, stateOf, SYSTEM_USER, type AlarmInput, type AlarmMachineOptions } from "../../src/alarms/alarm-state-machine.ts";
import type { AlarmDocument, AlarmEvent, AlarmState } from "../../src/shared/types.ts";

const OPTIONS: AlarmMachineOptions = { chatterTransitions: 5, chatterWindowMs: 60_000 };

/** An alarm driven through inputs on a fake clock, keeping the whole journal. */
class Harness {
  now = 1_000_000;
  alarm: AlarmDocument = newAlarm({ alarmId: "oven-01:zone_temp:hi", device: "oven-01", tag: "zone_temp", kind: "hi", severity: "medium", limit: 192 }, this.now);
  journal: AlarmEvent[] = [];

  advance(ms: number): this {
    this.now += ms;
    return this;
  }

  /** Applies an input that must be valid; returns the entries it journaled. */
  apply(input: AlarmInput, user = SYSTEM_USER): AlarmEvent[] {
    const result = applyInput(this.alarm, input, { user, at: this.now }, OPTIONS);
    if (!result.ok) throw new Error(`refused: ${result.reason}`);
    this.alarm = result.alarm;
    this.journal.push(...result.events);
    return result.events;
  }

  /** Applies an input that must be refused; returns the reason. */
  refuse(input: AlarmInput, user = "alice"): string {
    const result = applyInput(this.alarm, input, { user, at: this.now }, OPTIONS);
    assert.equal(result.ok, false, `expected ${input.type} to be refused in ${this.alarm.state}`);
    return result.ok ? "" : result.reason;
  }

  condition(active: boolean, suppressed = false, value = active ? 195 : 185): AlarmEvent[] {
    return this.apply({ type: "condition", active, suppressed, value, limit: 192, message: active ? `zone_temp ${value} above H 192` : `zone_temp ${value} back inside H 192` });
  }

  get state(): AlarmState {
    return this.alarm.state;
  }

  steps(): string[] {
    return this.journal.map((e) => `${e.action}: ${e.from} -> ${e.to}`);
  }
}

describe("alarm state machine (ISA-18.2)", () => {
  it("active-unack -> (ack) active-acked -> (return) cleared, journaling who, when and why", () => {
    const h = new Harness();
    h.condition(true);
    assert.equal(h.state, "active-unack");
    assert.deepEqual([h.alarm.active, h.alarm.acked, h.alarm.activatedAt, h.alarm.clearedAt, h.alarm.value, h.alarm.activations], [true, false, h.now, null, 195, 1]);
    h.advance(30_000).apply({ type: "ack", comment: "checking the burner" }, "alice");
    assert.equal(h.state, "active-acked");
    assert.deepEqual([h.alarm.ackedAt, h.alarm.ackedBy], [h.now, "alice"]);
    h.advance(60_000).condition(false);
    assert.equal(h.state, "cleared");
    assert.equal(h.alarm.clearedAt, h.now);
    assert.deepEqual(h.steps(), ["activated: cleared -> active-unack", "acknowledged: active-unack -> active-acked", "returned: active-acked -> cleared"]);
    const [activated, acked, returned] = h.journal;
    assert.deepEqual([activated.user, activated.comment, activated.value, activated.at], [SYSTEM_USER, "zone_temp 195 above H 192", 195, 1_000_000]);
    assert.deepEqual([acked.user, acked.comment, acked.ackDelayMs, acked.at], ["alice", "checking the burner", 30_000, 1_030_000]);
    assert.deepEqual([returned.user, returned.value], [SYSTEM_USER, 185]);
    assert.deepEqual(h.journal.map((e) => e._id), [1, 2, 3].map((seq) => eventId("oven-01:zone_temp:hi", seq)));
    assert.deepEqual(h.alarm.lastEvents, [returned]);
    assert.equal(h.alarm.rev, 3);
  });

  it("active-unack -> (return) rtn-unack -> (ack) cleared", () => {
    const h = new Harness();
    h.condition(true);
    h.advance(5_000).condition(false);
    assert.equal(h.state, "rtn-unack");
    h.advance(5_000).apply({ type: "ack" }, "bob");
    assert.equal(h.state, "cleared");
    assert.equal(h.journal.at(-1)?.ackDelayMs, 10_000, "time to acknowledge counts from the activation");
  });

  it("rtn-unack -> (active again) active-unack, counting the activation", () => {
    const h = new Harness();
    h.condition(true);
    h.advance(1_000).condition(false);
    h.advance(1_000).condition(true, false, 199);
    assert.equal(h.state, "active-unack");
    assert.deepEqual([h.alarm.activations, h.alarm.value, h.alarm.activatedAt, h.alarm.clearedAt], [2, 199, h.now, null]);
  });

  it("refuses invalid operator actions with the reason", () => {
    const h = new Harness();
    assert.equal(h.refuse({ type: "ack" }), "nothing to acknowledge: the alarm is cleared");
    assert.match(h.refuse({ type: "unshelve" }), /not shelved/);
    assert.match(h.refuse({ type: "return-to-service" }), /in service/);
    h.condition(true);
    h.apply({ type: "ack" }, "alice");
    assert.equal(h.refuse({ type: "ack" }), "the alarm is already acknowledged");
    assert.match(h.refuse({ type: "shelve", durationMs: 0, comment: "x" }), /durationMs/);
    h.apply({ type: "remove-from-service", comment: "sensor replaced" }, "alice");
    assert.equal(h.refuse({ type: "remove-from-service" }), "the alarm is already out of service");
    assert.match(h.refuse({ type: "shelve", durationMs: 60_000, comment: "x" }), /cannot shelve: the alarm is out of service/);
    assert.match(h.refuse({ type: "ack" }), /nothing to acknowledge: the alarm is out of service/);
  });

  it("does not modify the alarm passed in, and records nothing for a condition that did not change", () => {
    const h = new Harness();
    h.condition(true);
    const before = structuredClone(h.alarm);
    const result = applyInput(h.alarm, { type: "ack" }, { user: "alice", at: h.now }, OPTIONS);
    assert.ok(result.ok);
    assert.deepEqual(h.alarm, before);
    const same = applyInput(h.alarm, { type: "condition", active: true, suppressed: false, value: 197, limit: 192, message: null }, { user: SYSTEM_USER, at: h.now + 1 }, OPTIONS);
    assert.ok(same.ok);
    assert.deepEqual(same.events, []);
    assert.equal(same.alarm, h.alarm);
  });

  describe("shelving", () => {
    it("hides an active alarm, follows its condition unseen, and on expiry re-annunciates it if still active", () => {
      const h = new Harness();
      h.condition(true);
      h.apply({ type: "ack" }, "alice");
      h.advance(1_000).apply({ type: "shelve", durationMs: 600_000, comment: "burner maintenance" }, "alice");
      assert.equal(h.state, "shelved");
      assert.equal(h.alarm.shelvedUntil, h.now + 600_000);
      h.advance(10_000).condition(false);
      h.advance(10_000).condition(true);
      assert.equal(h.state, "shelved", "condition changes while shelved stay hidden");
      assert.deepEqual(h.journal.slice(-2).map((e) => [e.action, e.from, e.to]), [["returned", "shelved", "shelved"], ["activated", "shelved", "shelved"]]);
      assert.equal(nextTimer(h.alarm, OPTIONS), 1_001_000 + 600_000);
      assert.deepEqual(h.advance(100_000).apply({ type: "tick" }), [], "not expired yet");
      h.now = 1_001_000 + 600_000 + 700; // the timer runs a little late
      const [expired] = h.apply({ type: "tick" });
      assert.deepEqual([expired.action, expired.from, expired.to, expired.at, expired.user], ["shelve-expired", "shelved", "active-unack", 1_601_000, SYSTEM_USER]);
      assert.equal(h.alarm.shelvedUntil, null);
      assert.equal(nextTimer(h.alarm, OPTIONS), null);
    });

    it("returns to cleared on expiry when the condition went back to normal while shelved", () => {
      const h = new Harness();
      h.condition(true);
      h.apply({ type: "shelve", durationMs: 60_000, comment: "known issue" }, "alice");
      h.advance(1_000).condition(false);
      h.advance(60_000).apply({ type: "tick" });
      assert.equal(h.state, "cleared");
    });

    it("unshelves on request, and may shelve a normal alarm or shelve again to change the duration", () => {
      const h = new Harness();
      h.apply({ type: "shelve", durationMs: 60_000, comment: "noisy transmitter" }, "alice");
      assert.equal(h.state, "shelved");
      h.advance(1_000).apply({ type: "shelve", durationMs: 120_000, comment: "longer" }, "alice");
      assert.equal(h.alarm.shelvedUntil, h.now + 120_000);
      h.apply({ type: "unshelve", comment: "transmitter fixed" }, "bob");
      assert.equal(h.state, "cleared");
      assert.deepEqual(h.journal.map((e) => [e.action, e.user, e.comment]), [
        ["shelved", "alice", "noisy transmitter"],
        ["shelved", "alice", "longer"],
        ["unshelved", "bob", "transmitter fixed"],
      ]);
    });
  });

  describe("suppression by design", () => {
    it("suppresses an activation while the machine is stopped and reveals it as unacknowledged when it runs", () => {
      const h = new Harness();
      h.condition(true, true);
      assert.equal(h.state, "suppressed");
      assert.deepEqual(h.steps(), ["suppressed: cleared -> suppressed", "activated: suppressed -> suppressed"]);
      assert.match(h.refuse({ type: "ack" }), /suppressed by design/);
      assert.match(h.refuse({ type: "shelve", durationMs: 1_000, comment: "x" }), /cannot shelve: the alarm is suppressed by design/);
      h.advance(1_000).condition(true, false);
      assert.equal(h.state, "active-unack");
      assert.equal(h.journal.at(-1)?.action, "unsuppressed");
    });

    it("suppresses an acknowledged active alarm and returns it to cleared if the condition returned meanwhile", () => {
      const h = new Harness();
      h.condition(true);
      h.apply({ type: "ack" }, "alice");
      h.advance(1_000).condition(true, true);
      assert.equal(h.state, "suppressed");
      h.advance(1_000).condition(false, true);
      h.advance(1_000).condition(false, false);
      assert.equal(h.state, "cleared");
      assert.deepEqual(h.steps().slice(2), ["suppressed: active-acked -> suppressed", "returned: suppressed -> suppressed", "unsuppressed: suppressed -> cleared"]);
    });

    it("returns and unsuppresses in one input in that order", () => {
      const h = new Harness();
      h.condition(true, true);
      h.advance(1_000).condition(false, false);
      assert.deepEqual(h.steps().slice(2), ["returned: suppressed -> suppressed", "unsuppressed: suppressed -> cleared"]);
    });
  });

  describe("out of service", () => {
    it("removes an alarm from service whatever its state, follows its condition unseen, and returns it", () => {
      const h = new Harness();
      h.condition(true);
      h.apply({ type: "shelve", durationMs: 60_000, comment: "x" }, "alice");
      h.apply({ type: "remove-from-service", comment: "transmitter out for calibration" }, "alice");
      assert.equal(h.state, "out-of-service");
      assert.equal(h.alarm.shelvedUntil, null, "out of service replaces shelving");
      h.advance(1_000).condition(false);
      h.advance(1_000).condition(true);
      assert.equal(h.state, "out-of-service");
      h.apply({ type: "return-to-service", comment: "calibrated" }, "bob");
      assert.equal(h.state, "active-unack", "an active condition is annunciated again");
      assert.deepEqual(h.journal.at(-1)?.user, "bob");
    });

    it("returns to cleared when the condition is normal", () => {
      const h = new Harness();
      h.apply({ type: "remove-from-service" }, "alice");
      h.apply({ type: "return-to-service" }, "alice");
      assert.equal(h.state, "cleared");
    });
  });

  it("journals comments in any state without changing it", () => {
    const h = new Harness();
    h.condition(true);
    const [entry] = h.apply({ type: "comment", comment: "called maintenance" }, "carol");
    assert.deepEqual([entry.action, entry.from, entry.to, entry.user, entry.comment], ["commented", "active-unack", "active-unack", "carol", "called maintenance"]);
    assert.equal(h.state, "active-unack");
  });

  it("flags chattering after more than K transitions in the window and unflags it once they left the window", () => {
    const h = new Harness();
    for (let i = 0; i < 5; i++) h.advance(5_000).condition(i % 2 === 0);
    assert.equal(h.alarm.chattering, false, "5 transitions: not more than K");
    const events = h.advance(5_000).condition(false);
    assert.deepEqual(events.map((e) => e.action), ["returned", "chattering-started"]);
    assert.equal(h.alarm.chattering, true);
    const first = h.alarm.recentTransitions[0];
    assert.equal(nextTimer(h.alarm, OPTIONS), first + 60_000);
    assert.deepEqual(h.advance(10_000).apply({ type: "tick" }), [], "still 6 transitions within the minute");
    h.now = first + 60_000;
    const [ended] = h.apply({ type: "tick" });
    assert.deepEqual([ended.action, ended.user], ["chattering-ended", SYSTEM_USER]);
    assert.equal(h.alarm.chattering, false);
  });

  it("spells every state from its flags", () => {
    const base = { outOfService: false, suppressed: false, shelvedUntil: null, active: false, acked: true };
    assert.equal(stateOf(base), "cleared");
    assert.equal(stateOf({ ...base, acked: false }), "rtn-unack");
    assert.equal(stateOf({ ...base, active: true, acked: false }), "active-unack");
    assert.equal(stateOf({ ...base, active: true }), "active-acked");
    assert.equal(stateOf({ ...base, shelvedUntil: 5 }), "shelved");
    assert.equal(stateOf({ ...base, shelvedUntil: 5, suppressed: true }), "suppressed");
    assert.equal(stateOf({ ...base, suppressed: true, outOfService: true }), "out-of-service");
  });
});
