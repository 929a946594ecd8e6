// The dashboard's decisions without a browser: device status, alarm priority, stream filters,
// value formatting, the trend buffer's window and when consumer lag is abnormal.
import { strict as assert } from "node:assert";
import { compareAlarmPriority, deviceFilter, deviceStatus, formatValue, LagWatch, streamQuery, TrendBuffer, worstAlarmByDevice } from "../../dashboard/src/model.ts";
import type { AlarmDocument } from "../../src/shared/types.ts";

function alarm(id: string, fields: Partial<AlarmDocument>): AlarmDocument {
  return { _id: id, device: "pump-01", tag: "flow", kind: "hi", severity: "medium", acked: false, activatedAt: 1_000, active: true, state: "active-unack", ...fields } as AlarmDocument;
}

describe("dashboard model", () => {
  describe("deviceStatus", () => {
    const now = 100_000;
    it("is offline after a death message or when telemetry stopped", () => {
      assert.equal(deviceStatus("offline", "running", now, now, 10_000), "offline");
      assert.equal(deviceStatus("online", "running", now - 10_001, now, 10_000), "offline");
      assert.equal(deviceStatus("online", "running", undefined, now, 10_000), "offline");
    });
    it("follows the PLC's run state otherwise: running, faulted, and idle for the rest", () => {
      assert.equal(deviceStatus("online", "running", now - 500, now, 10_000), "running");
      assert.equal(deviceStatus("online", "faulted", now, now, 10_000), "faulted");
      for (const state of ["stopped", "starting", "stopping", undefined]) assert.equal(deviceStatus("online", state, now, now, 10_000), "idle");
    });
  });

  it("orders alarms by severity, then unacknowledged first, then newest", () => {
    const alarms = [
      alarm("low-new", { severity: "low", activatedAt: 9_000 }),
      alarm("high-acked", { severity: "high", acked: true }),
      alarm("high-old", { severity: "high", activatedAt: 1_000 }),
      alarm("high-new", { severity: "high", activatedAt: 5_000 }),
      alarm("critical", { severity: "critical", acked: true }),
    ];
    assert.deepEqual(alarms.sort(compareAlarmPriority).map((a) => a._id), ["critical", "high-new", "high-old", "high-acked", "low-new"]);
    const worst = worstAlarmByDevice([alarm("a", { severity: "low" }), alarm("b", { severity: "high" }), alarm("c", { device: "oven-01" })]);
    assert.deepEqual([...worst].map(([device, a]) => [device, a._id]), [["pump-01", "b"], ["oven-01", "c"]]);
  });

  it("subscribes to one device by its registry id, and encodes filters for a URL", () => {
    assert.equal(deviceFilter({ _id: "pump-01", site: "plant1", area: "utilities", line: "line1" }), "plant1/utilities/line1/pump-01");
    assert.equal(streamQuery(["plant1/+/line1/#", "+/+/+/+/alarms"], ["telemetry"]), "filter=plant1%2F%2B%2Fline1%2F%23%2C%2B%2F%2B%2F%2B%2F%2B%2Falarms&kinds=telemetry");
    assert.equal(streamQuery([]), "");
  });

  it("formats values for the tag table", () => {
    assert.deepEqual([formatValue(180.04), formatValue(5.915), formatValue(0.12345), formatValue(12), formatValue(true), formatValue("running"), formatValue(undefined)], ["180", "5.92", "0.123", "12", "ON", "running", "—"]);
  });

  it("keeps a trend in time order, counts history and live points, and drops what leaves the window", () => {
    const trend = new TrendBuffer();
    trend.setHistory([
      { ts: 1_000, v: 1 },
      { ts: 2_000, v: 2 },
      { ts: 3_000, v: 3 },
    ]);
    assert.equal(trend.append(3_000, 3, 0), false, "a live value already in the history is not added twice");
    assert.equal(trend.append(4_000, 4, 0), true);
    assert.deepEqual([trend.historyPoints, trend.livePoints], [3, 1]);
    trend.append(5_000, 5, 2_500);
    assert.deepEqual(trend.xs, [3, 4, 5], "times in seconds, the window starts at 2.5 s");
    assert.deepEqual(trend.ys, [3, 4, 5]);
    assert.deepEqual([trend.historyPoints, trend.livePoints], [1, 2]);
  });

  it("calls consumer lag abnormal only when it rose without falling once over the window, or nobody consumes", () => {
    const watch = new LagWatch(60_000);
    // The historian's sawtooth: rises for most of the window, falls when a time window is written.
    const sawtooth = [0, 300, 600, 900, 1200, 1500, 100, 400, 700, 1000, 1300, 1600, 200];
    assert.deepEqual(new Set(sawtooth.map((lag, i) => watch.take("historian", i * 10_000, lag, 1))), new Set(["normal"]));
    const stuck = [0, 5, 40, 90, 150, 200, 260, 300];
    assert.deepEqual(stuck.map((lag, i) => watch.take("stuck", i * 10_000, lag, 1)), ["normal", "normal", "normal", "normal", "normal", "normal", "growing", "growing"], "growing once a whole minute without a fall is covered");
    assert.equal(watch.take("stuck", 80_000, 20, 1), "normal", "it fell: the consumer caught up");
    assert.equal(watch.take("steady", 0, 5, 1), "normal");
    assert.equal(watch.take("steady", 90_000, 5, 1), "normal", "a constant lag is not growing");
    assert.equal(watch.take("stopped", 0, 12, 0), "no-consumer");
    assert.equal(watch.take("idle", 0, 0, 0), "normal", "no member and nothing to read is fine");
  });
});
