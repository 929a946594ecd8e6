import type { HistoryPoint, LatestValue, TagSample, TelemetryRecord } from "../shared/types.ts";

/**
 * Raw history is stored as bucket documents: one per device and time window, samples keyed by
 * `<ts>_<seq>` so that writing the same record twice (a replayed Kafka batch, an MQTT redelivery)
 * overwrites instead of duplicating.
 */
export interface BucketDocument {
  _id: string;
  device: string;
  site: string;
  area: string;
  line: string;
  start: number;
  end: number;
  first: number;
  last: number;
  samples: Record<string, StoredSample>;
}

export interface StoredSample {
  ts: number;
  seq: number;
  values: Record<string, TagSample>;
}

export interface BucketUpsert {
  filter: { _id: string };
  update: {
    $setOnInsert: Pick<BucketDocument, "device" | "site" | "area" | "line" | "start" | "end">;
    $set: Record<string, StoredSample>;
    $min: { first: number };
    $max: { last: number };
  };
}

export function bucketStart(ts: number, spanMs: number): number {
  return Math.floor(ts / spanMs) * spanMs;
}

export function bucketId(device: string, start: number): string {
  return `${device}:${start}`;
}

/** Groups records into one idempotent upsert per bucket. */
export function bucketUpserts(records: readonly TelemetryRecord[], spanMs: number): BucketUpsert[] {
  const byBucket = new Map<string, BucketUpsert>();
  for (const record of records) {
    const start = bucketStart(record.ts, spanMs);
    const id = bucketId(record.device, start);
    let upsert = byBucket.get(id);
    if (!upsert) {
      const { device, site, area, line } = record;
      upsert = {
        filter: { _id: id },
        update: {
          $setOnInsert: { device, site, area, line, start, end: start + spanMs },
          $set: {},
          $min: { first: record.ts },
          $max: { last: record.ts },
        },
      };
      byBucket.set(id, upsert);
    }
    upsert.update.$set[`samples.${record.ts}_${record.seq}`] = { ts: record.ts, seq: record.seq, values: record.values };
    upsert.update.$min.first = Math.min(upsert.update.$min.first, record.ts);
    upsert.update.$max.last = Math.max(upsert.update.$max.last, record.ts);
  }
  return [...byBucket.values()];
}

/** One tag's points from bucket documents within [from, to], ordered by time then sequence. */
export function historyPoints(buckets: readonly Pick<BucketDocument, "samples">[], tag: string, from: number, to: number, limit: number): HistoryPoint[] {
  const points: HistoryPoint[] = [];
  for (const bucket of buckets) {
    for (const sample of Object.values(bucket.samples ?? {})) {
      const value = sample.values[tag];
      if (value === undefined || sample.ts < from || sample.ts > to) continue;
      points.push({ ts: sample.ts, seq: sample.seq, v: value.v, q: value.q });
    }
  }
  points.sort((a, b) => a.ts - b.ts || a.seq - b.seq);
  return points.slice(0, limit);
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

/** Most buckets one raw history query may read; longer spans need coarser data (rollups). */
export const MAX_BUCKETS_PER_QUERY = 1_500;

/**
 * Ids of the buckets covering [from, to]. Queries read buckets by `_id` because the local
 * MongoDB-wire server answers `_id` lookups from its index but scans for other filters.
 */
export function bucketIdsInRange(device: string, from: number, to: number, spanMs: number): string[] {
  const ids: string[] = [];
  for (let start = bucketStart(from, spanMs); start <= to; start += spanMs) ids.push(bucketId(device, start));
  return ids;
}
