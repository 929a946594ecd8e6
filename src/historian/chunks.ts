import type { Binary } from "mongodb";
import type { TagSample, TagValue, TelemetryRecord } from "../shared/types.ts";
import { sampleKey, type StoredSample } from "./buckets.ts";
import { packNumbers, unpackNumbers } from "./packed.ts";

/**
 * The raw tier is insert-only: a device's window is written as chunk documents
 * `${device}:${windowStart}:${n}`, n = 0, 1, 2, … Chunk 0 holds what was buffered when the window
 * was sealed; further chunks hold late records (a PLC resending its buffer, a replay reaching
 * records nobody stored yet). A chunk is never updated: writing the same id twice fails with a
 * duplicate-key error, which is what makes concurrent or repeated writers detectable (see
 * RawWindowBuffer). Readers find a window's chunks by `_id` alone: 0, 1, … until the first miss.
 *
 * Samples are stored by column (one array of timestamps, one of sequence numbers, one of values
 * per tag) rather than as one object per sample: FerretDB's cost grows with the number of
 * objects and fields in a document, and this layout has a handful instead of ~9 per sample
 * (measured on FerretDB 1.24/SQLite: 50 windows of 600 samples with 8 tags insert in 0.65 s
 * instead of 4.8 s, and one such chunk reads in 43 ms instead of 230 ms). A column of numbers
 * only is packed as one Binary (packed.ts): a window of 20 tags × 60 samples then reads in
 * ~6 ms instead of ~24 ms. `ts` and `seq` stay arrays: they are what the exactly-once check
 * reads, and what tools inspecting the collection look at.
 */
export interface ChunkDocument {
  _id: string;
  device: string;
  site: string;
  area: string;
  line: string;
  /** Window start and end (PLC time, epoch ms; end exclusive). */
  start: number;
  end: number;
  chunk: number;
  first: number;
  last: number;
  count: number;
  /** Ordered by ts, then seq; each sample (ts, seq) is in exactly one chunk of its window. */
  ts: number[];
  seq: number[];
  tags: TagColumn[];
  writtenAt: number;
}

/**
 * One tag's values, index-aligned with `ts`/`seq`; null where a sample has no value for it.
 * Packed (a Binary of float64) when every sample has a number; read it with columnValues.
 */
export interface TagColumn {
  name: string;
  v: (TagValue | null)[] | Binary;
  /** Indexes whose quality is "uncertain" or "bad" (all others are "good"). */
  uncertain?: number[];
  bad?: number[];
}

/** What the buffer decided to write: one chunk of one window. */
export interface ChunkPlan {
  device: string;
  start: number;
  n: number;
  records: TelemetryRecord[];
}

export function chunkId(device: string, start: number, n: number): string {
  return `${device}:${start}:${n}`;
}

export function compareSamples(a: { ts: number; seq: number }, b: { ts: number; seq: number }): number {
  return a.ts - b.ts || a.seq - b.seq;
}

/** The document for a plan; records must be non-empty and belong to the plan's window. */
export function buildChunk(plan: ChunkPlan, spanMs: number, writtenAt: number): ChunkDocument {
  const records = [...plan.records].sort(compareSamples);
  const columns = new Map<string, TagColumn & { v: (TagValue | null)[] }>();
  records.forEach((record, i) => {
    for (const [name, sample] of Object.entries(record.values)) {
      let column = columns.get(name);
      if (!column) {
        column = { name, v: new Array<TagValue | null>(records.length).fill(null) };
        columns.set(name, column);
      }
      column.v[i] = sample.v;
      if (sample.q === "uncertain") (column.uncertain ??= []).push(i);
      else if (sample.q === "bad") (column.bad ??= []).push(i);
    }
  });
  const { site, area, line } = records[0];
  return {
    _id: chunkId(plan.device, plan.start, plan.n),
    device: plan.device,
    site,
    area,
    line,
    start: plan.start,
    end: plan.start + spanMs,
    chunk: plan.n,
    first: records[0].ts,
    last: records[records.length - 1].ts,
    count: records.length,
    ts: records.map((r) => r.ts),
    seq: records.map((r) => r.seq),
    tags: [...columns.values()].map((c) => (c.v.every((v) => typeof v === "number") ? { ...c, v: packNumbers(c.v as number[]) } : c)),
    writtenAt,
  };
}

/** A column's values as an array, whether stored packed or not. */
export function columnValues(column: TagColumn): (TagValue | null)[] {
  return Array.isArray(column.v) ? column.v : unpackNumbers(column.v);
}

/** A chunk's samples again, one object each (optionally only one tag's values). */
export function chunkSamples(chunk: Pick<ChunkDocument, "ts" | "seq" | "tags">, onlyTag?: string): StoredSample[] {
  const samples: StoredSample[] = chunk.ts.map((ts, i) => ({ ts, seq: chunk.seq[i], values: {} }));
  for (const column of chunk.tags ?? []) {
    if (onlyTag !== undefined && column.name !== onlyTag) continue;
    const quality = new Map<number, TagSample["q"]>();
    for (const i of column.uncertain ?? []) quality.set(i, "uncertain");
    for (const i of column.bad ?? []) quality.set(i, "bad");
    columnValues(column).forEach((v, i) => {
      if (v !== null && samples[i]) samples[i].values[column.name] = { v, q: quality.get(i) ?? "good" };
    });
  }
  return samples;
}

/** The sample keys each stored chunk holds, in chunk order: what the buffer learns from a load. */
export function chunkKeys(chunks: readonly Pick<ChunkDocument, "ts" | "seq">[]): string[][] {
  return chunks.map((c) => (c.ts ?? []).map((ts, i) => sampleKey(ts, c.seq[i])));
}

/**
 * Reads one window's chunks by `_id`: 0, 1, … until the first id that is missing. Chunks are
 * written in order (chunk n only by a writer that knew chunks 0..n-1), so there are no gaps.
 */
export async function readWindowChunks<T>(device: string, start: number, findById: (id: string) => Promise<T | null>, maxChunks = 10_000): Promise<T[]> {
  const chunks: T[] = [];
  for (let n = 0; n < maxChunks; n++) {
    const chunk = await findById(chunkId(device, start, n));
    if (chunk === null) break;
    chunks.push(chunk);
  }
  return chunks;
}
