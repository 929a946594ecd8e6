import type { TelemetryRecord } from "../shared/types.ts";
import { bucketStart, sampleKey } from "./buckets.ts";
import { compareSamples, type ChunkPlan } from "./chunks.ts";

export interface RawTierOptions {
  /** Window length in PLC time (config.bucketSpanMs). */
  spanMs: number;
  /**
   * A device's newest window is sealed by the clock once wall time is this far past the window's
   * end and the device has sent nothing for this long (or its oldest buffered record has waited a
   * whole span plus this long), so a device that goes quiet is still stored promptly.
   */
  graceMs: number;
  /** Most samples in one chunk document (MongoDB documents are limited to 16 MB). */
  maxSamplesPerChunk: number;
  /** Windows remembered per device behind its newest one (for late data without a reload). */
  retainWindows: number;
  /** Most windows remembered in all; the least recently used ones without buffered records go first. */
  maxKnownWindows: number;
}

export const DEFAULT_RAW_TIER_OPTIONS: Omit<RawTierOptions, "spanMs"> = {
  graceMs: 5_000,
  maxSamplesPerChunk: 5_000,
  retainWindows: 3,
  maxKnownWindows: 5_000,
};

/** A Kafka position: `offset` is the offset of a record, or the next offset to read in a commit. */
export interface KafkaPosition {
  topic: string;
  partition: number;
  offset: string;
}

export interface WindowRef {
  device: string;
  start: number;
}

interface Pending {
  record: TelemetryRecord;
  source: string;
  offset: bigint;
}

interface WindowState {
  device: string;
  start: number;
  /**
   * True when `stored` and `nextChunk` are exactly what chunks 0..nextChunk-1 in MongoDB hold.
   * False until the window is loaded, and again after a write whose outcome is not known: the
   * window is then reloaded before anything is planned for it.
   */
  known: boolean;
  nextChunk: number;
  stored: Set<string>;
  /** Records received and not stored yet, by sample key. */
  pending: Map<string, Pending>;
  /** Wall-clock time the oldest pending record arrived (0 when nothing is pending). */
  pendingSince: number;
  /** Lowest pending offset per source partition; recomputed lazily after removals. */
  minOffsets: Map<string, bigint> | null;
}

interface DeviceState {
  /** Start of the newest window the device's stream reached. */
  newest: number;
  /** Wall-clock time of its last record. */
  lastArrival: number;
  /** The partition its last record came from. */
  source: string;
}

function sourceKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

function windowKey(device: string, start: number): string {
  return `${device}:${start}`;
}

/**
 * The historian's raw tier in memory, without I/O (the service does the reads and writes): per
 * device, records are buffered in their window until the window is sealed, then written once as
 * an insert-only chunk. What is stored is remembered per window so a replay or a late duplicate
 * is skipped, and the Kafka position to commit never passes a record that is not stored yet.
 *
 * Sealing:
 * - data-driven: once a device's stream reaches a later window, its earlier windows are behind
 *   and their records are written at the end of the batch (the same decision on a replay);
 * - by the clock (`takeDue`): see RawTierOptions.graceMs;
 * - by size (maxSamplesPerChunk) and on stop (`takeAll`).
 * A window's records are written as chunk `nextChunk` (the first one 0, late ones 1, 2, …).
 *
 * Exactly once in storage: each window's knowledge is either exact for chunks 0..n-1 or marked
 * unknown (then reloaded by `_id` before planning). A writer only writes chunk n after knowing
 * chunks 0..n-1, so two writers with overlapping records (a replica that lost its partitions but
 * is still finishing a batch, a retried write whose first attempt landed) collide on the same id;
 * the loser is told (duplicate key), reloads the window and writes only what is still missing.
 */
export class RawWindowBuffer {
  readonly options: RawTierOptions;
  private readonly windows = new Map<string, WindowState>();
  private readonly devices = new Map<string, DeviceState>();
  /** Last offset processed per source partition (everything up to it is stored or pending). */
  private readonly processedUpTo = new Map<string, { topic: string; partition: number; offset: bigint }>();
  private pendingCount = 0;

  constructor(options: RawTierOptions) {
    this.options = options;
  }

  /** Records received and not stored yet. */
  get buffered(): number {
    return this.pendingCount;
  }

  /** Windows whose stored chunks are remembered. */
  get knownWindows(): number {
    return this.windows.size;
  }

  /** The windows of these records that must be loaded (by `_id`) before the records are added. */
  windowsToLoad(records: readonly TelemetryRecord[]): WindowRef[] {
    const refs = new Map<string, WindowRef>();
    for (const record of records) {
      const start = bucketStart(record.ts, this.options.spanMs);
      const key = windowKey(record.device, start);
      if (!this.windows.get(key)?.known) refs.set(key, { device: record.device, start });
    }
    return [...refs.values()];
  }

  /** Windows holding pending records whose stored state must be reloaded before they are written. */
  windowsToReload(): WindowRef[] {
    const refs: WindowRef[] = [];
    for (const w of this.windows.values()) if (!w.known && w.pending.size > 0) refs.push({ device: w.device, start: w.start });
    return refs;
  }

  /**
   * What a load found: the sample keys of chunks 0, 1, … (read until the first missing id).
   * Pending records that turn out to be stored are dropped.
   */
  learn(ref: WindowRef, chunks: readonly (readonly string[])[]): void {
    const w = this.window(ref.device, ref.start);
    w.known = true;
    w.nextChunk = chunks.length;
    w.stored = new Set(chunks.flat());
    for (const key of w.stored) this.removePending(w, key);
    this.touch(w);
  }

  /**
   * Adds one record read from Kafka at `position`, `now` being wall-clock time. Its window must
   * have been loaded. Returns false for a record already stored or already buffered.
   */
  add(record: TelemetryRecord, position: KafkaPosition, now: number): boolean {
    const start = bucketStart(record.ts, this.options.spanMs);
    const w = this.windows.get(windowKey(record.device, start));
    if (!w?.known) throw new Error(`window ${windowKey(record.device, start)} was not loaded before adding to it`);
    const source = sourceKey(position.topic, position.partition);
    const device = this.devices.get(record.device);
    if (device) {
      device.newest = Math.max(device.newest, start);
      device.lastArrival = now;
      device.source = source;
    } else {
      this.devices.set(record.device, { newest: start, lastArrival: now, source });
    }
    this.touch(w);
    const key = sampleKey(record.ts, record.seq);
    if (w.stored.has(key) || w.pending.has(key)) return false;
    const offset = BigInt(position.offset);
    w.pending.set(key, { record, source, offset });
    if (w.pending.size === 1) w.pendingSince = now;
    if (w.minOffsets) {
      const min = w.minOffsets.get(source);
      if (min === undefined || offset < min) w.minOffsets.set(source, offset);
    }
    this.pendingCount++;
    return true;
  }

  /** Everything up to `offset` of the partition was added (or dead-lettered). */
  processed(topic: string, partition: number, offset: string): void {
    const key = sourceKey(topic, partition);
    const value = BigInt(offset);
    const current = this.processedUpTo.get(key);
    if (!current || value > current.offset) this.processedUpTo.set(key, { topic, partition, offset: value });
  }

  /** Chunks to write at the end of a batch: windows behind their device's newest, and full windows. */
  takeLate(): ChunkPlan[] {
    return this.take((w, device) => w.start < device.newest || w.pending.size >= this.options.maxSamplesPerChunk);
  }

  /** takeLate, plus newest windows the clock has sealed (see RawTierOptions.graceMs). */
  takeDue(now: number): ChunkPlan[] {
    const { spanMs, graceMs } = this.options;
    return this.take(
      (w, device) =>
        w.start < device.newest ||
        w.pending.size >= this.options.maxSamplesPerChunk ||
        (now >= w.start + spanMs + graceMs && (now >= device.lastArrival + graceMs || now >= w.pendingSince + spanMs + graceMs)),
    );
  }

  /** Every pending record, for a stop. */
  takeAll(): ChunkPlan[] {
    return this.take(() => true);
  }

  /** The plan's chunk was acknowledged by MongoDB. */
  written(plan: ChunkPlan): void {
    const w = this.window(plan.device, plan.start);
    for (const record of plan.records) {
      const key = sampleKey(record.ts, record.seq);
      this.removePending(w, key);
      w.stored.add(key);
    }
    w.nextChunk = Math.max(w.nextChunk, plan.n + 1);
  }

  /** The plan's write failed or collided: reload the window before planning for it again. */
  invalidate(ref: WindowRef): void {
    const w = this.windows.get(windowKey(ref.device, ref.start));
    if (w) w.known = false;
  }

  /**
   * Per partition, the offset to commit: the lowest offset still pending (never stored), or the
   * one after the last processed record when nothing of the partition is pending.
   */
  commitPositions(): KafkaPosition[] {
    const mins = new Map<string, bigint>();
    for (const w of this.windows.values()) {
      if (w.pending.size === 0) continue;
      for (const [source, offset] of this.minOffsetsOf(w)) {
        const min = mins.get(source);
        if (min === undefined || offset < min) mins.set(source, offset);
      }
    }
    return [...this.processedUpTo.entries()].map(([source, p]) => ({ topic: p.topic, partition: p.partition, offset: String(mins.get(source) ?? p.offset + 1n) }));
  }

  /**
   * After a rebalance: forgets what came from partitions this member no longer owns. Their
   * pending records were never committed, so the new owner reads them again; the windows of their
   * devices are forgotten too, since the new owner may write further chunks to them.
   * Returns the number of pending records dropped.
   */
  retainPartitions(owns: (topic: string, partition: number) => boolean): number {
    const ownsSource = (source: string): boolean => {
      const [topic, partition] = source.split("\u0000");
      return owns(topic, Number(partition));
    };
    for (const source of [...this.processedUpTo.keys()]) if (!ownsSource(source)) this.processedUpTo.delete(source);
    const before = this.pendingCount;
    const lostDevices = new Set<string>();
    for (const [name, device] of this.devices) {
      if (!ownsSource(device.source)) {
        lostDevices.add(name);
        this.devices.delete(name);
      }
    }
    for (const [key, w] of this.windows) {
      for (const [sample, p] of w.pending) if (!ownsSource(p.source)) this.removePending(w, sample);
      if (!lostDevices.has(w.device)) continue;
      // Records of the device from a partition still owned (only if the partition count changed) stay; reload first.
      if (w.pending.size === 0) this.windows.delete(key);
      else w.known = false;
    }
    return before - this.pendingCount;
  }

  /** Whether a window of the device overlapping [from, to] holds records not stored yet. */
  hasPending(device: string, from: number, to: number): boolean {
    for (const w of this.windows.values()) if (w.device === device && w.pending.size > 0 && w.start <= to && w.start + this.options.spanMs > from) return true;
    return false;
  }

  /** The device's pending records with ts in [from, to] (not stored yet, so not in any chunk). */
  pendingRecords(device: string, from: number, to: number): TelemetryRecord[] {
    const records: TelemetryRecord[] = [];
    for (const w of this.windows.values()) {
      if (w.device !== device || w.pending.size === 0 || w.start > to || w.start + this.options.spanMs <= from) continue;
      for (const { record } of w.pending.values()) if (record.ts >= from && record.ts <= to) records.push(record);
    }
    return records;
  }

  /**
   * Keeps the memory bounded: forgets windows without pending records that lie more than
   * retainWindows behind their device's newest one, then the least recently used beyond
   * maxKnownWindows, and devices with nothing left that have been silent for a while. A forgotten
   * window is loaded again by `_id` if a record for it ever arrives.
   */
  prune(now: number): void {
    const { spanMs, graceMs, retainWindows, maxKnownWindows } = this.options;
    for (const [key, w] of this.windows) {
      if (w.pending.size > 0) continue;
      const device = this.devices.get(w.device);
      if (!device || w.start < device.newest - retainWindows * spanMs) this.windows.delete(key);
    }
    if (this.windows.size > maxKnownWindows) {
      for (const [key, w] of this.windows) {
        if (this.windows.size <= maxKnownWindows) break;
        if (w.pending.size === 0) this.windows.delete(key);
      }
    }
    const idleMs = 10 * (spanMs + graceMs);
    const withWindows = new Set<string>();
    for (const w of this.windows.values()) withWindows.add(w.device);
    for (const [name, device] of this.devices) if (!withWindows.has(name) && now - device.lastArrival > idleMs) this.devices.delete(name);
  }

  private take(due: (w: WindowState, device: DeviceState) => boolean): ChunkPlan[] {
    const plans: ChunkPlan[] = [];
    for (const w of this.windows.values()) {
      if (w.pending.size === 0 || !w.known) continue;
      // A window without device state (pruned device, which needs pending records: cannot happen) counts as behind.
      const device = this.devices.get(w.device) ?? { newest: Infinity, lastArrival: 0, source: "" };
      if (!due(w, device)) continue;
      const records = [...w.pending.values()].map((p) => p.record).sort(compareSamples);
      for (let i = 0, n = w.nextChunk; i < records.length; i += this.options.maxSamplesPerChunk, n++) {
        plans.push({ device: w.device, start: w.start, n, records: records.slice(i, i + this.options.maxSamplesPerChunk) });
      }
    }
    return plans;
  }

  private window(device: string, start: number): WindowState {
    const key = windowKey(device, start);
    let w = this.windows.get(key);
    if (!w) {
      w = { device, start, known: false, nextChunk: 0, stored: new Set(), pending: new Map(), pendingSince: 0, minOffsets: new Map() };
      this.windows.set(key, w);
    }
    return w;
  }

  /** Moves the window to the most recently used end. */
  private touch(w: WindowState): void {
    const key = windowKey(w.device, w.start);
    this.windows.delete(key);
    this.windows.set(key, w);
  }

  private removePending(w: WindowState, key: string): void {
    if (!w.pending.delete(key)) return;
    this.pendingCount--;
    w.minOffsets = null;
    if (w.pending.size === 0) {
      w.pendingSince = 0;
      w.minOffsets = new Map();
    }
  }

  private minOffsetsOf(w: WindowState): Map<string, bigint> {
    if (!w.minOffsets) {
      w.minOffsets = new Map();
      for (const p of w.pending.values()) {
        const min = w.minOffsets.get(p.source);
        if (min === undefined || p.offset < min) w.minOffsets.set(p.source, p.offset);
      }
    }
    return w.minOffsets;
  }
}
