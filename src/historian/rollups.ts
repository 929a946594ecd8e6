import type { Binary } from "mongodb";
import type { TagValue } from "../shared/types.ts";
import { chunkId, columnValues, type ChunkDocument } from "./chunks.ts";
import { packColumns, unpackColumns } from "./packed.ts";

/**
 * Rollup tiers: per numeric tag and interval, min/max/sum/count and first/last (time and value);
 * per other tag (boolean, string, state), its change points. A tier's documents are insert-only
 * like raw chunks: `${device}:${periodStart}:${n}`, one period (an hour of minutes, a day of
 * hours) per document, n = 0 for what was known when the period closed, 1, 2, … for what came
 * later. Each document lists the ids of the source documents it aggregates (`sources`: raw
 * chunks for 1 m, 1 m documents for 1 h), which is what makes the tiers exactly once: a source
 * is aggregated into a tier document only if no stored document of that period lists it yet.
 */
export type RollupTier = "1m" | "1h";

export interface TierSpec {
  tier: RollupTier;
  intervalMs: number;
  /** The span one document covers. */
  periodMs: number;
  collection: string;
}

export const TIERS: Record<RollupTier, TierSpec> = {
  "1m": { tier: "1m", intervalMs: 60_000, periodMs: 3_600_000, collection: "rollups_1m" },
  "1h": { tier: "1h", intervalMs: 3_600_000, periodMs: 86_400_000, collection: "rollups_1h" },
};

export interface Aggregate {
  count: number;
  sum: number;
  min: number;
  max: number;
  firstTs: number;
  first: number;
  lastTs: number;
  last: number;
}

export interface ChangePoint {
  ts: number;
  v: TagValue;
}

/** What a source contributes to one period, or what a period holds. */
export interface PeriodData {
  /** Numeric tags: aggregate per interval start. */
  num: Map<string, Map<number, Aggregate>>;
  /** Other tags: change points in time order, each value different from the one before it. */
  chg: Map<string, ChangePoint[]>;
}

/** One numeric tag's intervals, index-aligned arrays (interval start `t`). */
export interface RollupColumn {
  name: string;
  t: number[];
  count: number[];
  sum: number[];
  min: number[];
  max: number[];
  firstTs: number[];
  first: number[];
  lastTs: number[];
  last: number[];
}

export interface ChangeColumn {
  name: string;
  ts: number[];
  v: TagValue[];
}

/** A period's data by column: stored in documents and sent between replicas. */
export interface PeriodColumns {
  tags: RollupColumn[];
  changes: ChangeColumn[];
}

/** The columns of RollupColumn in their stored order. */
const ROLLUP_FIELDS = ["t", "count", "sum", "min", "max", "firstTs", "first", "lastTs", "last"] as const;

/** A numeric tag's intervals as stored: RollupColumn's nine columns packed in ROLLUP_FIELDS order (see packed.ts). */
export interface StoredRollupColumn {
  name: string;
  columns: Binary;
}

export interface RollupDocument {
  _id: string;
  device: string;
  /** Period start and end (PLC time, epoch ms; end exclusive): the retention job deletes by `end`. */
  start: number;
  end: number;
  n: number;
  /** Ids of the source documents aggregated here (each in exactly one document of the period). */
  sources: string[];
  tags: StoredRollupColumn[];
  changes: ChangeColumn[];
  writtenAt: number;
}

export function emptyPeriodData(): PeriodData {
  return { num: new Map(), chg: new Map() };
}

export function periodStart(ts: number, periodMs: number): number {
  return Math.floor(ts / periodMs) * periodMs;
}

export function addValue(agg: Aggregate | undefined, ts: number, v: number): Aggregate {
  if (!agg) return { count: 1, sum: v, min: v, max: v, firstTs: ts, first: v, lastTs: ts, last: v };
  agg.count++;
  agg.sum += v;
  if (v < agg.min) agg.min = v;
  if (v > agg.max) agg.max = v;
  if (ts < agg.firstTs) {
    agg.firstTs = ts;
    agg.first = v;
  }
  if (ts >= agg.lastTs) {
    agg.lastTs = ts;
    agg.last = v;
  }
  return agg;
}

/** `into` plus `from` (into is changed; a copy of from when into is undefined). */
export function mergeAggregate(into: Aggregate | undefined, from: Aggregate): Aggregate {
  if (!into) return { ...from };
  into.count += from.count;
  into.sum += from.sum;
  into.min = Math.min(into.min, from.min);
  into.max = Math.max(into.max, from.max);
  if (from.firstTs < into.firstTs) {
    into.firstTs = from.firstTs;
    into.first = from.first;
  }
  if (from.lastTs >= into.lastTs) {
    into.lastTs = from.lastTs;
    into.last = from.last;
  }
  return into;
}

/**
 * Adds a sample to a tag's change points, keeping only changes: nothing is added when the value
 * equals the one in effect at `ts`, and a following point that no longer changes anything goes.
 * Samples mostly come in time order, so the search starts at the end.
 */
export function insertChange(points: ChangePoint[], ts: number, v: TagValue): void {
  let i = points.length;
  while (i > 0 && points[i - 1].ts > ts) i--;
  if (i > 0 && points[i - 1].v === v) return;
  points.splice(i, 0, { ts, v });
  if (i + 1 < points.length && points[i + 1].v === v) points.splice(i + 1, 1);
}

function numericTag(data: PeriodData, tag: string): Map<number, Aggregate> {
  let intervals = data.num.get(tag);
  if (!intervals) data.num.set(tag, (intervals = new Map()));
  return intervals;
}

function changeTag(data: PeriodData, tag: string): ChangePoint[] {
  let points = data.chg.get(tag);
  if (!points) data.chg.set(tag, (points = []));
  return points;
}

/** Adds one sample: finite numbers are aggregated per interval, other values kept as changes. */
export function addSample(data: PeriodData, intervalMs: number, tag: string, ts: number, v: TagValue): void {
  if (typeof v === "number") {
    if (!Number.isFinite(v)) return;
    const intervals = numericTag(data, tag);
    const t = ts - (((ts % intervalMs) + intervalMs) % intervalMs);
    intervals.set(t, addValue(intervals.get(t), ts, v));
  } else {
    insertChange(changeTag(data, tag), ts, v);
  }
}

/** Adds `from` into `into`, re-bucketed to `intervalMs` (a multiple of from's interval). */
export function mergePeriodData(into: PeriodData, from: PeriodData, intervalMs: number): PeriodData {
  for (const [tag, intervals] of from.num) {
    const target = numericTag(into, tag);
    for (const [t, agg] of intervals) {
      const bucket = t - (((t % intervalMs) + intervalMs) % intervalMs);
      target.set(bucket, mergeAggregate(target.get(bucket), agg));
    }
  }
  for (const [tag, points] of from.chg) {
    const target = changeTag(into, tag);
    for (const p of points) insertChange(target, p.ts, p.v);
  }
  return into;
}

/**
 * What a raw chunk contributes to the 1 m period starting at `start`: its samples within the
 * period. Values of bad quality are left out of rollups (they stay in the raw tier).
 */
export function chunkContribution(chunk: Pick<ChunkDocument, "ts" | "tags">, start: number, periodMs: number, intervalMs: number): PeriodData {
  const data = emptyPeriodData();
  const end = start + periodMs;
  for (const column of chunk.tags) {
    const bad = column.bad && column.bad.length > 0 ? new Set(column.bad) : null;
    const values = columnValues(column);
    for (let i = 0; i < chunk.ts.length; i++) {
      const v = values[i];
      const ts = chunk.ts[i];
      if (v === null || v === undefined || ts < start || ts >= end || bad?.has(i)) continue;
      addSample(data, intervalMs, column.name, ts, v);
    }
  }
  return data;
}

/** The periods (starts) a chunk's samples fall in; a chunk stays within one unless its window crosses a boundary. */
export function chunkPeriods(chunk: Pick<ChunkDocument, "first" | "last">, periodMs: number): number[] {
  const starts: number[] = [];
  for (let s = periodStart(chunk.first, periodMs); s <= chunk.last; s += periodMs) starts.push(s);
  return starts;
}

export function toColumns(data: PeriodData): PeriodColumns {
  const tags: RollupColumn[] = [];
  for (const [name, intervals] of data.num) {
    const column: RollupColumn = { name, t: [], count: [], sum: [], min: [], max: [], firstTs: [], first: [], lastTs: [], last: [] };
    for (const t of [...intervals.keys()].sort((a, b) => a - b)) {
      const a = intervals.get(t) as Aggregate;
      column.t.push(t);
      column.count.push(a.count);
      column.sum.push(a.sum);
      column.min.push(a.min);
      column.max.push(a.max);
      column.firstTs.push(a.firstTs);
      column.first.push(a.first);
      column.lastTs.push(a.lastTs);
      column.last.push(a.last);
    }
    if (column.t.length > 0) tags.push(column);
  }
  const changes: ChangeColumn[] = [];
  for (const [name, points] of data.chg) if (points.length > 0) changes.push({ name, ts: points.map((p) => p.ts), v: points.map((p) => p.v) });
  return { tags, changes };
}

/** The data of stored or sent columns; `onlyTag` keeps one tag. */
export function fromColumns(columns: Partial<PeriodColumns>, onlyTag?: string): PeriodData {
  const data = emptyPeriodData();
  for (const c of columns.tags ?? []) {
    if (onlyTag !== undefined && c.name !== onlyTag) continue;
    const intervals = numericTag(data, c.name);
    c.t.forEach((t, i) =>
      intervals.set(t, { count: c.count[i], sum: c.sum[i], min: c.min[i], max: c.max[i], firstTs: c.firstTs[i], first: c.first[i], lastTs: c.lastTs[i], last: c.last[i] }),
    );
  }
  for (const c of columns.changes ?? []) {
    if (onlyTag !== undefined && c.name !== onlyTag) continue;
    data.chg.set(
      c.name,
      c.ts.map((ts, i) => ({ ts, v: c.v[i] })),
    );
  }
  return data;
}

/** The data of a stored document; `onlyTag` keeps (and unpacks) one tag. */
export function fromDocument(doc: Pick<RollupDocument, "tags" | "changes">, onlyTag?: string): PeriodData {
  const tags = doc.tags
    .filter((c) => onlyTag === undefined || c.name === onlyTag)
    .map((c): RollupColumn => {
      const [t, count, sum, min, max, firstTs, first, lastTs, last] = unpackColumns(c.columns, ROLLUP_FIELDS.length);
      return { name: c.name, t, count, sum, min, max, firstTs, first, lastTs, last };
    });
  return fromColumns({ tags, changes: doc.changes }, onlyTag);
}

export function buildRollupDoc(device: string, spec: TierSpec, start: number, n: number, sources: string[], data: PeriodData, writtenAt: number): RollupDocument {
  const { tags, changes } = toColumns(data);
  const stored = tags.map((c) => ({ name: c.name, columns: packColumns(ROLLUP_FIELDS.map((f) => c[f])) }));
  return { _id: chunkId(device, start, n), device, start, end: start + spec.periodMs, n, sources, tags: stored, changes, writtenAt };
}
