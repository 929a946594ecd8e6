import type { HistoryPoint, LatestValue, TagSample, TelemetryRecord } from "../shared/types.ts";

/**
 * Raw history is kept per device and time window (the bucket span, 60 s by default). A window's
 * samples are stored in insert-only chunk documents (see chunks.ts); this module holds what the
 * write and the read side share: window arithmetic, the query's points and the latest values.
 */
export interface StoredSample {
  ts: number;
  seq: number;
  values: Record<string, TagSample>;
}

export function bucketStart(ts: number, spanMs: number): number {
  return Math.floor(ts / spanMs) * spanMs;
}

/** One sample's identity: a PLC never reuses a sequence number at the same timestamp. */
export function sampleKey(ts: number, seq: number): string {
  return `${ts}_${seq}`;
}

/**
 * One tag's points within [from, to], ordered by time then sequence, each sample once however
 * many sources (stored chunks, buffered records) hold it, up to `limit`.
 */
export function historyPoints(samples: Iterable<StoredSample>, tag: string, from: number, to: number, limit: number): HistoryPoint[] {
  const points = new Map<string, HistoryPoint>();
  for (const sample of samples) {
    const value = sample.values[tag];
    if (value === undefined || sample.ts < from || sample.ts > to) continue;
    const key = sampleKey(sample.ts, sample.seq);
    if (!points.has(key)) points.set(key, { ts: sample.ts, seq: sample.seq, v: value.v, q: value.q });
  }
  return [...points.values()].sort((a, b) => a.ts - b.ts || a.seq - b.seq).slice(0, limit);
}

/** Newest value per tag in a batch, for the latest-value cache. */
export function latestValues(records: readonly TelemetryRecord[]): Map<string, Record<string, LatestValue>> {
  const latest = new Map<string, Record<string, LatestValue>>();
  for (const record of records) {
    const perTag = latest.get(record.device) ?? {};
    for (const [tag, sample] of Object.entries(record.values)) {
      const current = perTag[tag];
      if (!current || current.ts <= record.ts) perTag[tag] = { v: sample.v, q: sample.q, ts: record.ts };
    }
    latest.set(record.device, perTag);
  }
  return latest;
}

/** Most windows one raw history query may read; longer spans need coarser data (rollups). */
export const MAX_BUCKETS_PER_QUERY = 1_500;

/** Start times of the windows covering [from, to], edges included. */
export function windowStartsInRange(from: number, to: number, spanMs: number): number[] {
  const starts: number[] = [];
  for (let start = bucketStart(from, spanMs); start <= to; start += spanMs) starts.push(start);
  return starts;
}
