import type { HistoryPoint, TagValue } from "../shared/types.ts";
import { mergePeriodData, emptyPeriodData, insertChange, periodStart, TIERS, type Aggregate, type ChangePoint, type PeriodData, type RollupTier } from "./rollups.ts";

export type HistorySource = "raw" | RollupTier;

/** One interval of a rollup tier (or several merged, see HistorySeries.intervalMs). */
export interface RollupPoint {
  /** Interval start (epoch ms). */
  ts: number;
  min: number;
  max: number;
  avg: number;
  sum: number;
  count: number;
  first: number;
  firstTs: number;
  last: number;
  lastTs: number;
}

/**
 * What a history query answers for one tag: raw samples, rollup intervals (numeric tags) or
 * change points (boolean and string tags), and the tier they came from.
 */
export type HistorySeries =
  | { source: "raw"; kind: "samples"; points: HistoryPoint[] }
  | { source: HistorySource; kind: "aggregates"; intervalMs: number; points: RollupPoint[] }
  | { source: HistorySource; kind: "changes"; points: ChangePoint[]; truncated: boolean };

export interface TierLimits {
  /** Longest span raw history may be read for (windows per query × window). */
  rawMaxSpanMs: number;
  /** The retention of each tier: a tier is only used when `from` is within it. */
  retentionMs: Record<HistorySource, number>;
}

/**
 * Raw samples are expected at most once per second (the PLCs' default scan): raw is chosen when
 * the span has room for that many within `points`; a faster device that turns out to have more
 * samples is answered from 1 m instead (see the service).
 */
export const RAW_NOMINAL_INTERVAL_MS = 1_000;

/** Intervals of `intervalMs` overlapping [from, to]. */
export function intervalCount(from: number, to: number, intervalMs: number): number {
  return Math.floor(to / intervalMs) - Math.floor(from / intervalMs) + 1;
}

/**
 * The finest tier whose interval count over [from, to] fits in `points`, raw only within its
 * maximum span, and each tier only if `from` is within its retention (relative to `now`). When
 * none fits, 1 h: its intervals are then merged so that at most `points` are answered.
 */
export function chooseTier(from: number, to: number, points: number, now: number, limits: TierLimits): HistorySource {
  const span = to - from;
  const retained = (source: HistorySource) => from >= now - limits.retentionMs[source];
  if (span <= limits.rawMaxSpanMs && retained("raw") && intervalCount(from, to, RAW_NOMINAL_INTERVAL_MS) <= points) return "raw";
  if (retained("1m") && intervalCount(from, to, TIERS["1m"].intervalMs) <= points) return "1m";
  return "1h";
}

/** Starts of the tier's periods (documents) overlapping [from, to]. */
export function periodStartsInRange(tier: RollupTier, from: number, to: number): number[] {
  const { periodMs } = TIERS[tier];
  const starts: number[] = [];
  for (let s = periodStart(from, periodMs); s <= to; s += periodMs) starts.push(s);
  return starts;
}

/**
 * One numeric tag's intervals overlapping [from, to] from the given period data, merged into
 * intervals of k × the tier's interval, k the smallest that gives at most `points` intervals.
 */
export function rollupPoints(parts: readonly PeriodData[], tag: string, tier: RollupTier, from: number, to: number, points: number): { intervalMs: number; points: RollupPoint[] } {
  const base = TIERS[tier].intervalMs;
  const intervalMs = base * Math.max(1, Math.ceil(intervalCount(from, to, base) / points));
  const merged = emptyPeriodData();
  for (const part of parts) {
    const intervals = part.num.get(tag);
    if (intervals) mergePeriodData(merged, { num: new Map([[tag, intervals]]), chg: new Map() }, intervalMs);
  }
  const lo = periodStart(from, intervalMs);
  const out: RollupPoint[] = [];
  for (const [ts, a] of merged.num.get(tag) ?? new Map<number, Aggregate>()) {
    if (ts < lo || ts > to) continue;
    out.push({ ts, min: a.min, max: a.max, avg: a.sum / a.count, sum: a.sum, count: a.count, first: a.first, firstTs: a.firstTs, last: a.last, lastTs: a.lastTs });
  }
  return { intervalMs, points: out.sort((a, b) => a.ts - b.ts) };
}

/** One tag's change points within [from, to] from the given period data, at most `points` (the earliest). */
export function changePoints(parts: readonly PeriodData[], tag: string, from: number, to: number, points: number): { points: ChangePoint[]; truncated: boolean } {
  const merged: ChangePoint[] = [];
  for (const part of parts) for (const p of part.chg.get(tag) ?? []) insertChange(merged, p.ts, p.v);
  const inRange = merged.filter((p) => p.ts >= from && p.ts <= to);
  return { points: inRange.slice(0, points), truncated: inRange.length > points };
}

/** Raw samples of a non-numeric tag reduced to their changes. */
export function sampleChanges(samples: readonly HistoryPoint[], points: number): { points: ChangePoint[]; truncated: boolean } {
  const changes: ChangePoint[] = [];
  for (const s of samples) insertChange(changes, s.ts, s.v);
  return { points: changes.slice(0, points), truncated: changes.length > points };
}

/** Export rows: one per timestamp, one value per tag (null where the tag has none). */
export interface ExportRow {
  ts: number;
  values: Record<string, TagValue | null>;
}

/**
 * Aligns several tags' series by timestamp. Samples and interval averages (rollups) make the
 * rows, at their own timestamps; change points hold their value until the next change, so a
 * state tag has a value on every row once it has changed at or before that row (change points
 * make rows only when every tag is a state tag).
 */
export function alignSeries(series: readonly { tag: string; series: HistorySeries }[]): ExportRow[] {
  const rows = new Map<number, ExportRow>();
  const row = (ts: number): ExportRow => {
    let r = rows.get(ts);
    if (!r) rows.set(ts, (r = { ts, values: Object.fromEntries(series.map((s) => [s.tag, null])) }));
    return r;
  };
  for (const { tag, series: s } of series) {
    if (s.kind === "samples") for (const p of s.points) row(p.ts).values[tag] = p.v;
    else if (s.kind === "aggregates") for (const p of s.points) row(p.ts).values[tag] = p.avg;
    else if (series.every((x) => x.series.kind === "changes")) for (const p of s.points) row(p.ts);
  }
  const sorted = [...rows.values()].sort((a, b) => a.ts - b.ts);
  for (const { tag, series: s } of series) {
    if (s.kind !== "changes") continue;
    let i = 0;
    let current: TagValue | null = null;
    for (const r of sorted) {
      while (i < s.points.length && s.points[i].ts <= r.ts) current = s.points[i++].v;
      r.values[tag] = current;
    }
  }
  return sorted;
}

function csvCell(value: TagValue | null): string {
  if (value === null) return "";
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** CSV with a header `ts,time,<tag>…`: epoch ms and ISO-8601 time, then one column per tag. */
export function exportCsv(tags: readonly string[], rows: readonly ExportRow[]): string {
  const lines = [["ts", "time", ...tags].map(csvCell).join(",")];
  for (const r of rows) lines.push([String(r.ts), new Date(r.ts).toISOString(), ...tags.map((t) => csvCell(r.values[t]))].join(","));
  return `${lines.join("\n")}\n`;
}

/** The retention job's cutoffs: documents whose `end` is at or before these are deleted. */
export function retentionCutoffs(now: number, retentionMs: Record<HistorySource, number>): Record<HistorySource, number> {
  return { raw: now - retentionMs.raw, "1m": now - retentionMs["1m"], "1h": now - retentionMs["1h"] };
}
