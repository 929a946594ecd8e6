import { MongoBulkWriteError, type Collection } from "mongodb";
import { mapWithConcurrency } from "../shared/concurrency.ts";
import type { TelemetryRecord } from "../shared/types.ts";
import { windowStartsInRange, type StoredSample } from "./buckets.ts";
import { readWindowChunks, type ChunkDocument } from "./chunks.ts";
import { periodStartsInRange } from "./history-query.ts";
import { RollupTierBuffer, type Contribution, type PeriodPlan, type PeriodRef } from "./rollup-buffer.ts";
import { addSample, buildRollupDoc, chunkContribution, chunkPeriods, emptyPeriodData, fromColumns, fromDocument, mergePeriodData, periodStart, TIERS, toColumns, type PeriodColumns, type PeriodData, type RollupDocument, type RollupTier } from "./rollups.ts";

const MINUTE = TIERS["1m"];
const HOUR = TIERS["1h"];
const DUPLICATE_KEY = 11000;
/** Reads in flight per load and per query. */
const READ_CONCURRENCY = 16;
/** Periods loaded at once (each reads with READ_CONCURRENCY). */
const LOAD_CONCURRENCY = 4;

/** In-memory rollup data of one replica for a query, as sent between replicas. */
export interface WireContribution {
  id: string;
  columns: PeriodColumns;
}

export interface RollupStoreOptions {
  telemetry: Collection<ChunkDocument>;
  minute: Collection<RollupDocument>;
  hour: Collection<RollupDocument>;
  /** Raw window span (config.bucketSpanMs). */
  bucketSpanMs: number;
  graceMs: number;
  /** Whether raw records of the device within [from, to] are not stored yet (RawWindowBuffer.hasPending). */
  rawPending: (device: string, from: number, to: number) => boolean;
}

/** The data of a chunk's samples at the 1 h tier's resolution, from a stored 1 m document. */
function hourContribution(doc: RollupDocument): PeriodData {
  return mergePeriodData(emptyPeriodData(), fromDocument(doc), HOUR.intervalMs);
}

/**
 * The historian's rollup tiers with their MongoDB reads and insert-only writes: raw chunks, once
 * MongoDB acknowledged them, feed the 1 m tier (so only samples the raw tier stored as new are
 * counted); 1 m documents, once written, feed the 1 h tier. Periods are loaded by `_id` (see
 * RollupTierBuffer), and a source whose outcome is unknown makes its periods reload, so every
 * stored source ends up in exactly one document of each tier.
 */
export class RollupStore {
  readonly minuteTier: RollupTierBuffer;
  readonly hourTier: RollupTierBuffer;
  private readonly o: RollupStoreOptions;
  /** Periods to load before the next use, kept until loaded: a period whose load failed would otherwise never learn of its stored sources. */
  private readonly hourLoads = new Map<string, PeriodRef>();
  private readonly dayLoads = new Map<string, PeriodRef>();

  constructor(options: RollupStoreOptions) {
    this.o = options;
    this.minuteTier = new RollupTierBuffer(MINUTE, options.graceMs);
    this.hourTier = new RollupTierBuffer(HOUR, options.graceMs);
  }

  /**
   * Loads the hours of records just received (before their chunks exist), so that after a
   * restart or a rebalance the open hour's stored chunks are in memory, and queries see them,
   * as soon as the device's data flows again.
   */
  async prepare(records: readonly Pick<TelemetryRecord, "device" | "ts">[]): Promise<void> {
    this.want(records.map((r) => ({ device: r.device, start: periodStart(r.ts, MINUTE.periodMs) })));
    await this.loadWanted();
  }

  /** Raw chunks MongoDB acknowledged: their samples go into the open (or a late) 1 m period. */
  async addChunks(chunks: readonly ChunkDocument[], now: number): Promise<void> {
    if (chunks.length === 0) return;
    this.want(chunks.flatMap((c) => chunkPeriods(c, MINUTE.periodMs).map((start) => ({ device: c.device, start }))));
    await this.loadWanted();
    for (const c of chunks) for (const start of chunkPeriods(c, MINUTE.periodMs)) this.minuteTier.add({ device: c.device, start }, c._id, chunkContribution(c, start, MINUTE.periodMs, MINUTE.intervalMs), now);
  }

  /** Chunks whose write outcome is unknown (or that collided): their periods are reloaded before use. */
  invalidateChunks(chunks: readonly Pick<ChunkDocument, "device" | "first" | "last">[]): void {
    for (const c of chunks) {
      for (const start of chunkPeriods(c, MINUTE.periodMs)) {
        this.minuteTier.invalidate({ device: c.device, start });
        this.hourLoads.set(`${c.device}:${start}`, { device: c.device, start });
      }
    }
  }

  /**
   * Writes the periods that are over and wait for nothing: 1 m documents first (then added to
   * their days), then 1 h documents. Returns the number of documents written.
   */
  async flush(now: number): Promise<number> {
    await this.loadWanted();
    const minutePlans = this.minuteTier.take(now, (ref) => this.o.rawPending(ref.device, ref.start, ref.start + MINUTE.periodMs - 1));
    const minuteDocs = await this.write(this.minuteTier, this.o.minute, minutePlans, now, this.hourLoads, (plan) => {
      // The 1 m document may be stored: its day must look again too.
      const day = { device: plan.device, start: periodStart(plan.start, HOUR.periodMs) };
      this.hourTier.invalidate(day);
      this.dayLoads.set(`${day.device}:${day.start}`, day);
    });
    for (const d of minuteDocs) this.dayLoads.set(`${d.device}:${periodStart(d.start, HOUR.periodMs)}`, { device: d.device, start: periodStart(d.start, HOUR.periodMs) });
    await this.loadWanted();
    for (const d of minuteDocs) this.hourTier.add({ device: d.device, start: periodStart(d.start, HOUR.periodMs) }, d._id, hourContribution(d), now);
    const hourPlans = this.hourTier.take(
      now,
      (ref) => this.minuteTier.hasPending(ref.device, ref.start, ref.start + HOUR.periodMs - 1) || this.o.rawPending(ref.device, ref.start, ref.start + HOUR.periodMs - 1),
      (device) => {
        const newest = this.minuteTier.newest(device);
        return Number.isFinite(newest) ? periodStart(newest, HOUR.periodMs) : -Infinity;
      },
    );
    const hourDocs = await this.write(this.hourTier, this.o.hour, hourPlans, now, this.dayLoads, () => undefined);
    this.minuteTier.prune();
    this.hourTier.prune();
    return minuteDocs.length + hourDocs.length;
  }

  /**
   * This replica's rollup data of a device not in a document it could have read before: for 1 m
   * the 1 m tier's pending and recently written sources; for 1 h the 1 h tier's, plus the 1 m
   * tier's pending ones (hours not written yet, so in no 1 h source).
   */
  snapshot(device: string, tier: RollupTier, from: number, to: number): Contribution[] {
    if (tier === "1m") return this.minuteTier.snapshot(device, from, to, true);
    return [...this.hourTier.snapshot(device, from, to, true), ...this.minuteTier.snapshot(device, from, to, false)];
  }

  /**
   * One tag's rollup data of a device over [from, to]: its stored documents (read by `_id`), then
   * the in-memory contributions (this and the other replicas') no document read lists, and the
   * raw records not stored yet. Documents are read first: what is written meanwhile is still in
   * memory (recent sources are kept), so nothing is missed, and the `sources` lists keep
   * anything from counting twice.
   */
  async readParts(device: string, tier: RollupTier, tag: string, from: number, to: number, memory: () => Promise<{ contributions: Contribution[]; samples: StoredSample[] }>): Promise<PeriodData[]> {
    const collection = tier === "1m" ? this.o.minute : this.o.hour;
    const docs = (await mapWithConcurrency(periodStartsInRange(tier, from, to), READ_CONCURRENCY, (start) => readWindowChunks(device, start, (id) => collection.findOne({ _id: id })))).flat();
    const { contributions, samples } = await memory();
    const covered = new Set(docs.flatMap((d) => d.sources));
    const parts = docs.map((d) => fromDocument(d, tag));
    for (const c of contributions) if (!covered.has(c.id)) parts.push(c.data);
    const buffered = emptyPeriodData();
    for (const s of samples) {
      const value = s.values[tag];
      if (value !== undefined && value.q !== "bad" && s.ts >= from && s.ts <= to) addSample(buffered, TIERS[tier].intervalMs, tag, s.ts, value.v);
    }
    parts.push(buffered);
    return parts;
  }

  /** Forgets devices this replica no longer owns. */
  retainDevices(keep: (device: string) => boolean): void {
    this.minuteTier.retainDevices(keep);
    this.hourTier.retainDevices(keep);
  }

  /** Writes plans insert-only; returns the documents written. Collisions and unknown outcomes make their periods reload. */
  /** Hours to load; for a device first seen since start, its previous hour too, which a crash may have left unwritten. */
  private want(refs: PeriodRef[]): void {
    const first = new Map<string, number>();
    for (const ref of refs) {
      if (!this.minuteTier.knowsDevice(ref.device)) first.set(ref.device, Math.min(first.get(ref.device) ?? Infinity, ref.start));
      this.hourLoads.set(`${ref.device}:${ref.start}`, ref);
    }
    for (const [device, start] of first) this.hourLoads.set(`${device}:${start - MINUTE.periodMs}`, { device, start: start - MINUTE.periodMs });
  }

  private async loadWanted(): Promise<void> {
    await this.loadMinutePeriods(this.minuteTier.toLoad([...this.hourLoads.values()]));
    this.hourLoads.clear();
    await this.loadHourPeriods(this.hourTier.toLoad([...this.dayLoads.values()]));
    this.dayLoads.clear();
  }

  private async write(
    tier: RollupTierBuffer,
    collection: Collection<RollupDocument>,
    plans: PeriodPlan[],
    now: number,
    reloads: Map<string, PeriodRef>,
    onUnknown: (plan: PeriodPlan) => void,
  ): Promise<RollupDocument[]> {
    if (plans.length === 0) return [];
    const docs = plans.map((p) => buildRollupDoc(p.device, tier.spec, p.start, p.n, p.sources, p.data, now));
    const failed = new Map<number, number>();
    try {
      await collection.insertMany(docs, { ordered: false });
    } catch (err) {
      // A network or server-selection error comes wrapped in a MongoBulkWriteError without write
      // errors: the outcome of every document is unknown then.
      if (!(err instanceof MongoBulkWriteError) || [err.writeErrors].flat().length === 0) {
        for (const plan of plans) {
          tier.invalidate(plan);
          reloads.set(`${plan.device}:${plan.start}`, plan);
          onUnknown(plan);
        }
        throw err;
      }
      for (const e of [err.writeErrors].flat()) failed.set(e.index, e.code);
    }
    const written: RollupDocument[] = [];
    plans.forEach((plan, i) => {
      if (failed.has(i)) {
        tier.invalidate(plan);
        reloads.set(`${plan.device}:${plan.start}`, { device: plan.device, start: plan.start });
      } else {
        tier.written(plan);
        written.push(docs[i]);
      }
    });
    const other = [...failed.values()].find((code) => code !== DUPLICATE_KEY);
    if (other !== undefined) throw new Error(`writing ${failed.size} of ${plans.length} ${tier.spec.tier} rollups failed (code ${other})`);
    return written;
  }

  /** 1 m periods: their documents' sources, then the raw chunks of the hour none of them lists. */
  private async loadMinutePeriods(refs: PeriodRef[]): Promise<void> {
    await mapWithConcurrency(refs, LOAD_CONCURRENCY, async (ref) => {
      const docs = await readWindowChunks(ref.device, ref.start, (id) => this.o.minute.findOne({ _id: id }, { projection: { sources: 1 } }));
      const covered = new Set(docs.flatMap((d) => d.sources));
      const windows = windowStartsInRange(ref.start, ref.start + MINUTE.periodMs - 1, this.o.bucketSpanMs);
      const ids = (await mapWithConcurrency(windows, READ_CONCURRENCY, (w) => readWindowChunks(ref.device, w, (id) => this.o.telemetry.findOne({ _id: id }, { projection: { _id: 1 } })))).flat().map((c) => c._id);
      const uncovered = await mapWithConcurrency(ids.filter((id) => !covered.has(id)), READ_CONCURRENCY, async (id) => {
        const chunk = await this.o.telemetry.findOne({ _id: id }, { projection: { ts: 1, tags: 1 } });
        return { id, data: chunk ? chunkContribution(chunk, ref.start, MINUTE.periodMs, MINUTE.intervalMs) : emptyPeriodData() };
      });
      this.minuteTier.learn(ref, docs.map((d) => d.sources), uncovered);
    });
  }

  /** 1 h periods (days): their documents' sources, then the day's 1 m documents none of them lists. */
  private async loadHourPeriods(refs: PeriodRef[]): Promise<void> {
    await mapWithConcurrency(refs, LOAD_CONCURRENCY, async (ref) => {
      const docs = await readWindowChunks(ref.device, ref.start, (id) => this.o.hour.findOne({ _id: id }, { projection: { sources: 1 } }));
      const covered = new Set(docs.flatMap((d) => d.sources));
      const hours = periodStartsInRange("1m", ref.start, ref.start + HOUR.periodMs - 1);
      const minuteDocs = (await mapWithConcurrency(hours, READ_CONCURRENCY, (h) => readWindowChunks(ref.device, h, (id) => this.o.minute.findOne({ _id: id }, { projection: { _id: 1 } })))).flat();
      const uncovered = await mapWithConcurrency(minuteDocs.map((d) => d._id).filter((id) => !covered.has(id)), READ_CONCURRENCY, async (id) => {
        const doc = await this.o.minute.findOne({ _id: id });
        return { id, data: doc ? hourContribution(doc) : emptyPeriodData() };
      });
      this.hourTier.learn(ref, docs.map((d) => d.sources), uncovered);
    });
  }
}

/** Contributions as sent between replicas, with only `tag`'s data. */
export function toWire(contributions: readonly Contribution[], tag: string): WireContribution[] {
  return contributions.map((c) => {
    const { tags, changes } = toColumns(c.data);
    return { id: c.id, columns: { tags: tags.filter((t) => t.name === tag), changes: changes.filter((t) => t.name === tag) } };
  });
}

export function fromWire(contributions: readonly WireContribution[]): Contribution[] {
  return contributions.map((c) => ({ id: c.id, data: fromColumns(c.columns) }));
}

/** The records a replica holds for a query: raw records not stored yet (StoredSample form). */
export function storedSamples(records: readonly TelemetryRecord[]): StoredSample[] {
  return records.map(({ ts, seq, values }) => ({ ts, seq, values }));
}
