// What the screens show, decided without the DOM: device status, alarm priority, trend buffers.
// Pure functions, unit-tested in test/unit/dashboard-model.spec.ts.
import type { AlarmDocument, AlarmSeverity, DeviceDocument, TagValue } from "../../src/shared/types.ts";

/** The four states an operator tells apart on the overview. */
export type DeviceStatus = "running" | "idle" | "faulted" | "offline";

/**
 * A device is offline when the registry says so (its death message) or when its telemetry has
 * stopped for `staleMs`; otherwise its `state` tag (the PLC's run state) decides. Starting,
 * stopping and stopped are all "idle": not producing, not broken.
 */
export function deviceStatus(registryState: DeviceDocument["state"], runState: TagValue | undefined, lastSeenAt: number | undefined, now: number, staleMs: number): DeviceStatus {
  if (registryState === "offline" || lastSeenAt === undefined || now - lastSeenAt > staleMs) return "offline";
  if (runState === "faulted") return "faulted";
  if (runState === "running") return "running";
  return "idle";
}

const SEVERITY_RANK: Record<AlarmSeverity, number> = { critical: 0, high: 1, medium: 2, low: 3 };

/** Alarm-console order: most severe first; at equal severity unacknowledged first, then newest. */
export function compareAlarmPriority(a: AlarmDocument, b: AlarmDocument): number {
  return SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] || Number(a.acked) - Number(b.acked) || b.activatedAt - a.activatedAt || a._id.localeCompare(b._id);
}

/** Each device's highest-priority alarm among `alarms`. */
export function worstAlarmByDevice(alarms: readonly AlarmDocument[]): Map<string, AlarmDocument> {
  const worst = new Map<string, AlarmDocument>();
  for (const alarm of alarms) {
    const current = worst.get(alarm.device);
    if (!current || compareAlarmPriority(alarm, current) < 0) worst.set(alarm.device, alarm);
  }
  return worst;
}

/**
 * The live-stream filter that selects exactly one registered device (every kind). The registry's
 * documents carry the device id as `_id` only (no `device` field), whatever DeviceAddress says.
 */
export function deviceFilter(device: Pick<DeviceDocument, "_id" | "site" | "area" | "line">): string {
  return `${device.site}/${device.area}/${device.line}/${device._id}`;
}

/** Live-stream query string for a set of filters, or "" when there is nothing to subscribe to. */
export function streamQuery(filters: readonly string[], kinds?: readonly ("telemetry" | "alarms")[]): string {
  if (filters.length === 0) return "";
  const params = new URLSearchParams();
  params.set("filter", filters.join(","));
  if (kinds) params.set("kinds", kinds.join(","));
  return params.toString();
}

/** A value as the tag table shows it: numbers at a resolution fitting their size. */
export function formatValue(v: TagValue | undefined): string {
  if (v === undefined) return "—";
  if (typeof v === "number") {
    // PLC values come quantized to their sensor's resolution; rollup averages do not.
    const abs = Math.abs(v);
    return String(Number(v.toFixed(abs >= 100 ? 1 : abs >= 1 ? 2 : 3)));
  }
  if (typeof v === "boolean") return v ? "ON" : "OFF";
  return v;
}

/**
 * One trend series: times (s, as uPlot wants them) and values, history first then the live tail.
 * Appends keep time order (a live value older than the newest point is a duplicate of history)
 * and drop what falls out of the window.
 */
export class TrendBuffer {
  readonly xs: number[] = [];
  readonly ys: (number | null)[] = [];
  historyPoints = 0;
  livePoints = 0;

  /** Replaces the contents with history points (ms timestamps). */
  setHistory(points: readonly { ts: number; v: number | null }[]): void {
    this.xs.length = 0;
    this.ys.length = 0;
    for (const p of points) {
      this.xs.push(p.ts / 1000);
      this.ys.push(p.v);
    }
    this.historyPoints = points.length;
    this.livePoints = 0;
  }

  /** Adds a live value; returns false when it is not newer than the last point. */
  append(tsMs: number, v: number, windowStartMs: number): boolean {
    const x = tsMs / 1000;
    const last = this.xs.length > 0 ? this.xs[this.xs.length - 1] : -Infinity;
    if (x <= last) return false;
    this.xs.push(x);
    this.ys.push(v);
    this.livePoints++;
    const start = windowStartMs / 1000;
    let drop = 0;
    while (drop < this.xs.length && this.xs[drop] < start) drop++;
    if (drop > 0) {
      this.xs.splice(0, drop);
      this.ys.splice(0, drop);
      const fromHistory = Math.min(drop, this.historyPoints);
      this.historyPoints -= fromHistory;
      this.livePoints -= drop - fromHistory;
    }
    return true;
  }
}

/** A numeric reading of a tag value for charts: booleans as 0/1, strings not at all. */
export function numericValue(v: TagValue | undefined): number | null {
  if (typeof v === "number") return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  return null;
}

/**
 * How a consumer group's lag is going. Some lag is normal: the historian commits only after it
 * wrote a whole time window, so its lag rises for a minute and falls again. Abnormal is a lag
 * that has not come down once over `windowMs` while rising, or lag with no consumer at all.
 */
export type LagTrend = "normal" | "growing" | "no-consumer";

/** Keeps each group's recent lag readings (bounded by the window) and judges them. */
export class LagWatch {
  readonly #windowMs: number;
  readonly #readings = new Map<string, { at: number; lag: number }[]>();

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  take(groupId: string, at: number, lag: number, members: number): LagTrend {
    const readings = this.#readings.get(groupId) ?? [];
    this.#readings.set(groupId, readings);
    if (readings.length === 0 || at > readings[readings.length - 1].at) readings.push({ at, lag });
    // Keep one reading at or before the window's start, so the window is known to be covered.
    while (readings.length > 2 && readings[1].at <= at - this.#windowMs) readings.shift();
    if (lag > 0 && members === 0) return "no-consumer";
    const covered = at - readings[0].at >= this.#windowMs;
    const neverFell = readings.every((r, i) => i === 0 || r.lag >= readings[i - 1].lag);
    return covered && neverFell && lag > readings[0].lag ? "growing" : "normal";
  }
}
