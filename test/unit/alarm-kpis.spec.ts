import { strict as assert } from "node:assert";
import { computeKpis, isAnnunciation, TEN_MINUTES_MS, type KpiEvent } from "../../src/alarms/alarm-kpis.ts";
import { applyInput, newAlarm, SYSTEM_USER } from "../../src/alarms/alarm-state-machine.ts";
import type { AlarmDocument, AlarmState } from "../../src/shared/types.ts";

const T0 = 1_800_000_000_000 - (1_800_000_000_000 % TEN_MINUTES_MS);

function event(alarmId: string, at: number, from: AlarmState, to: AlarmState, action: KpiEvent["action"] = "activated", ackDelayMs?: number): KpiEvent {
  const [device, tag, kind] = alarmId.split(":");
  const e: KpiEvent = { alarmId, device, tag, kind: kind as KpiEvent["kind"], at, action, from, to };
  if (ackDelayMs !== undefined) e.ackDelayMs = ackDelayMs;
  return e;
}

function alarm(alarmId: string, state: AlarmState, activatedAt: number, chattering = false): AlarmDocument {
  const [device, tag, kind] = alarmId.split(":");
  const doc = newAlarm({ alarmId, device, tag, kind: kind as AlarmDocument["kind"], severity: "medium", limit: 1 }, activatedAt);
  return { ...doc, state, activatedAt, chattering, active: state.startsWith("active") };
}

describe("alarm KPIs", () => {
  it("counts annunciations: transitions into active-unack, whether a new activation or a re-annunciation", () => {
    assert.equal(isAnnunciation({ from: "cleared", to: "active-unack" }), true);
    assert.equal(isAnnunciation({ from: "shelved", to: "active-unack" }), true);
    assert.equal(isAnnunciation({ from: "active-unack", to: "active-unack" }), false, "a comment");
    assert.equal(isAnnunciation({ from: "suppressed", to: "suppressed" }), false, "a hidden activation");
  });

  it("computes the alarm rate per 10 minutes, floods, bad actors, standing alarms, chattering and time to acknowledge", () => {
    const events: KpiEvent[] = [];
    // 12 activations of one pump alarm in the first 10 minutes: a flood and the top bad actor.
    for (let i = 0; i < 12; i++) events.push(event("pump-01:flow:hi", T0 + i * 30_000, "cleared", "active-unack"));
    events.push(event("oven-01:zone_temp:hi", T0 + TEN_MINUTES_MS + 1_000, "rtn-unack", "active-unack"));
    events.push(event("oven-01:zone_temp:hi", T0 + TEN_MINUTES_MS + 2_000, "suppressed", "suppressed"));
    events.push(event("oven-01:zone_temp:hi", T0 + TEN_MINUTES_MS + 31_000, "active-unack", "active-acked", "acknowledged", 30_000));
    events.push(event("pump-01:flow:hi", T0 + 5_000, "rtn-unack", "cleared", "acknowledged", 10_000));
    events.push(event("pump-01:flow:hi", T0 + 6_000, "rtn-unack", "cleared", "acknowledged", 20_000));
    events.push(event("pump-01:flow:hi", T0 - 1, "cleared", "active-unack")); // before the period
    const now = T0 + 30 * 60_000;
    const alarms = [
      alarm("pump-01:flow:hi", "rtn-unack", T0, true),
      alarm("oven-01:zone_temp:hi", "active-acked", T0 + TEN_MINUTES_MS + 1_000),
      alarm("press-01:oil_temp:hi", "active-unack", now - 48 * 3_600_000),
      alarm("press-02:oil_temp:hi", "shelved", now - 48 * 3_600_000),
    ];
    const kpis = computeKpis(events, alarms, { from: T0, to: now, now, standingAfterMs: 24 * 3_600_000, topN: 10, floodPerTenMinutes: 10 });
    assert.equal(kpis.annunciated, 13);
    assert.deepEqual(kpis.perTenMinutes.buckets, [
      { start: T0, count: 12 },
      { start: T0 + TEN_MINUTES_MS, count: 1 },
      { start: T0 + 2 * TEN_MINUTES_MS, count: 0 },
    ]);
    assert.deepEqual([kpis.perTenMinutes.average, kpis.perTenMinutes.peak, kpis.perTenMinutes.floodIntervals], [4.33, 12, 1]);
    assert.deepEqual(kpis.topBadActors.map((a) => [a.alarmId, a.annunciated, a.share]), [
      ["pump-01:flow:hi", 12, 0.923],
      ["oven-01:zone_temp:hi", 1, 0.077],
    ]);
    assert.deepEqual(kpis.standing.alarms.map((a) => [a.alarmId, a.activeForMs]), [["press-01:oil_temp:hi", 48 * 3_600_000]], "a shelved alarm is not standing");
    assert.deepEqual(kpis.timeToAck, { acknowledged: 3, meanMs: 20_000, medianMs: 20_000 });
    assert.deepEqual(kpis.chattering.map((a) => a.alarmId), ["pump-01:flow:hi"]);
    assert.equal(kpis.current["active-unack"], 1);
    assert.equal(kpis.current.shelved, 1);
  });

  it("reports no time to acknowledge when nothing was acknowledged", () => {
    const kpis = computeKpis([], [], { from: T0, to: T0 + 60_000, now: T0 + 60_000, standingAfterMs: 1, topN: 3, floodPerTenMinutes: 10 });
    assert.deepEqual(kpis.timeToAck, { acknowledged: 0, meanMs: null, medianMs: null });
    assert.deepEqual(kpis.perTenMinutes, { average: 0, peak: 0, floodIntervals: 0, buckets: [{ start: T0, count: 0 }] });
  });

  it("agrees with the state machine's own journal", () => {
    let doc = newAlarm({ alarmId: "d:t:hi", device: "d", tag: "t", kind: "hi", severity: "medium", limit: 1 }, T0);
    const journal: KpiEvent[] = [];
    const step = (input: Parameters<typeof applyInput>[1], at: number, user = SYSTEM_USER) => {
      const r = applyInput(doc, input, { user, at });
      assert.ok(r.ok);
      doc = r.alarm;
      journal.push(...r.events);
    };
    step({ type: "condition", active: true, suppressed: false, value: 2, limit: 1, message: null }, T0 + 1_000);
    step({ type: "ack" }, T0 + 46_000, "alice");
    const kpis = computeKpis(journal, [doc], { from: T0, to: T0 + TEN_MINUTES_MS, now: T0 + 60_000, standingAfterMs: 10_000, topN: 5, floodPerTenMinutes: 10 });
    assert.equal(kpis.annunciated, 1);
    assert.equal(kpis.timeToAck.meanMs, 45_000);
    assert.equal(kpis.standing.count, 1);
  });
});
