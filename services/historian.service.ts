import type { Context, ServiceSchema } from "moleculer";
import { Errors } from "moleculer";
import type { Consumer, EachBatchPayload } from "kafkajs";
import { MongoBulkWriteError, type Collection, type Db } from "mongodb";
import type { Redis } from "ioredis";
import { healthMixin } from "../mixins/health.mixin.ts";
import { kafkaMixin } from "../mixins/kafka.mixin.ts";
import { mongoMixin } from "../mixins/mongo.mixin.ts";
import { redisMixin } from "../mixins/redis.mixin.ts";
import { historyPoints, latestValues, MAX_BUCKETS_PER_QUERY, windowStartsInRange, type StoredSample } from "../src/historian/buckets.ts";
import { buildChunk, chunkKeys, chunkSamples, readWindowChunks, type ChunkDocument, type ChunkPlan } from "../src/historian/chunks.ts";
import {
  alignSeries,
  changePoints,
  chooseTier,
  exportCsv,
  retentionCutoffs,
  rollupPoints,
  sampleChanges,
  type ExportRow,
  type HistorySeries,
  type HistorySource,
  type TierLimits,
} from "../src/historian/history-query.ts";
import { OffsetCommitter } from "../src/historian/offset-committer.ts";
import { rawTierOptions } from "../src/historian/raw-tier-config.ts";
import { RawWindowBuffer, type KafkaPosition, type WindowRef } from "../src/historian/raw-window-buffer.ts";
import type { Contribution } from "../src/historian/rollup-buffer.ts";
import { fromWire, RollupStore, storedSamples, toWire, type WireContribution } from "../src/historian/rollup-store.ts";
import { TIERS, type RollupDocument, type RollupTier } from "../src/historian/rollups.ts";
import { SerialQueue } from "../src/historian/serial.ts";
import { mapWithConcurrency } from "../src/shared/concurrency.ts";
import type { PlantwireConfig } from "../src/shared/config.ts";
import { ValidationError } from "../src/shared/errors.ts";
import { LatencyHistogram } from "../src/shared/latency-histogram.ts";
import { parseTimeParam } from "../src/shared/time.ts";
import { kafkaTopic } from "../src/shared/topics.ts";
import type { DeadLetterRecord, DeviceDocument, LatestValue, TagDefinition, TelemetryRecord } from "../src/shared/types.ts";

export type { HistorySeries, HistorySource, RollupPoint } from "../src/historian/history-query.ts";
export type { ChangePoint } from "../src/historian/rollups.ts";

export interface HistoryParams {
  id: string;
  tag: string;
  from?: string | number;
  to?: string | number;
  points?: number;
  /** Alias of `points` (the parameter's earlier name). */
  limit?: number;
}

/** `GET /api/devices/{id}/history`: one tag over [from, to] from the tier named by `source`. */
export type HistoryResult = { device: string; tag: string; from: number; to: number } & HistorySeries;
/** A history answer from the raw tier (numeric tag, span and points within raw's reach). */
export type RawHistoryResult = HistoryResult & { kind: "samples" };

export interface ExportParams {
  id: string;
  tags: string;
  from?: string | number;
  to?: string | number;
  points?: number;
  format?: "csv" | "json";
}

/** `GET /api/devices/{id}/export?format=json`: the tags' series aligned by timestamp. */
export interface ExportResult {
  device: string;
  from: number;
  to: number;
  source: HistorySource;
  /** Interval of each row for rollups (then each value is the interval's average); null for raw. */
  intervalMs: number | null;
  tags: string[];
  rows: ExportRow[];
}

export interface LatestResult {
  device: string;
  values: Record<string, LatestValue>;
}

export interface HistorianStats {
  /** Samples written to MongoDB since start (or the last reset). */
  samples: number;
  points: number;
  /** PLC timestamp → chunk acknowledged by MongoDB, per sample. */
  latencyMs: ReturnType<LatencyHistogram["summary"]>;
  /** Samples received and not in MongoDB yet (open windows); served by history from memory. */
  buffered: number;
  /** Rollup sources (raw chunks, 1 m documents) aggregated in memory, not written yet (open hours and days). */
  rollupsPending: { "1m": number; "1h": number };
  /** Partitions this member owns ("topic/partition"), as of the last group join. */
  partitions: string[];
}

/** What a replica holds in memory for a query (the `buffered` action). */
interface ReplicaMemory {
  samples: StoredSample[];
  contributions: WireContribution[];
}

const ID = { type: "string", pattern: /^[A-Za-z0-9_.-]{1,64}$/ } as const;
const TAG = { type: "string", pattern: /^[A-Za-z0-9_.-]{1,64}$/ } as const;
const TIME = { type: "multi", optional: true, rules: [{ type: "number", integer: true }, { type: "string", max: 40 }] } as const;
const POINTS = { type: "number", integer: true, min: 1, max: 100_000, optional: true, convert: true } as const;
const DEFAULT_POINTS = 1_000;
const MAX_EXPORT_TAGS = 20;
const DAY_MS = 86_400_000;
/** Clock-driven seals are checked this often. */
const TICK_MS = 1_000;
/** Reads of chunks in flight per query and per load. */
const READ_CONCURRENCY = 16;
/** Attempts at writing a batch's chunks when their ids collide with chunks written by someone else. */
const MAX_WRITE_ATTEMPTS = 5;
const DUPLICATE_KEY = 11000;

function isTelemetryRecord(value: unknown): value is TelemetryRecord {
  const r = value as TelemetryRecord;
  return typeof r === "object" && r !== null && typeof r.device === "string" && r.device !== "" && Number.isFinite(r.ts) && Number.isInteger(r.seq) && typeof r.values === "object" && r.values !== null;
}

function invalidParameter(message: string, field: string): Errors.MoleculerClientError {
  return new Errors.MoleculerClientError(message, 400, "INVALID_PARAMETER", { field });
}

/**
 * Kafka → MongoDB history: raw samples (insert-only chunks per device and window, see
 * src/historian/raw-window-buffer.ts), 1 m and 1 h rollups built from the stored chunks (see
 * src/historian/rollup-store.ts), retention per tier; Redis (latest values). Answers history
 * (picking the tier), multi-tag export and latest values. docs/historian.md explains the design.
 */
export default function createHistorianService(config: PlantwireConfig): ServiceSchema {
  const options = rawTierOptions(config);
  const telemetryTopic = kafkaTopic(config.kafkaTopicPrefix, "telemetry");
  const { rawDays, minuteDays, hourDays, sweepMs } = config.historianRetention;
  const limits: TierLimits = {
    rawMaxSpanMs: MAX_BUCKETS_PER_QUERY * config.bucketSpanMs,
    retentionMs: { raw: rawDays * DAY_MS, "1m": minuteDays * DAY_MS, "1h": hourDays * DAY_MS },
  };
  // Five years at least, whatever the 1 h retention: the longest span.
  const maxSpanMs = Math.max(hourDays, 1_826) * DAY_MS;
  return {
    name: "historian",
    mixins: [kafkaMixin(config), mongoMixin(config), redisMixin(config), healthMixin()],

    settings: { rest: "/" },

    actions: {
      /** Samples stored and their PLC-timestamp → stored latency since start (or the last reset). */
      stats: {
        params: { reset: { type: "boolean", optional: true, convert: true } },
        handler(ctx: Context<{ reset?: boolean }>): HistorianStats {
          const latency = this.latency as LatencyHistogram;
          const owned = this.ownedPartitions as Map<string, Set<number>> | null;
          const rollups = this.rollups as RollupStore;
          const result: HistorianStats = {
            samples: latency.count,
            points: this.storedPoints as number,
            latencyMs: latency.summary(),
            buffered: (this.rawBuffer as RawWindowBuffer).buffered,
            rollupsPending: { "1m": rollups.minuteTier.pendingSources, "1h": rollups.hourTier.pendingSources },
            partitions: owned ? [...owned].flatMap(([topic, partitions]) => [...partitions].sort((a, b) => a - b).map((p) => `${topic}/${p}`)) : [],
          };
          if (ctx.params.reset) {
            latency.reset();
            this.storedPoints = 0;
          }
          return result;
        },
      },

      latest: {
        rest: "GET /devices/:id/latest",
        role: "viewer",
        openapi: { summary: "Newest value of every tag of a device, with quality and source timestamp (from Redis)" },
        params: { id: ID },
        async handler(ctx: Context<{ id: string }>): Promise<LatestResult> {
          const stored = await (this.redis as Redis).hgetall(this.redisKey("latest", ctx.params.id));
          if (Object.keys(stored).length === 0) await ctx.call("devices.get", { id: ctx.params.id });
          const values: Record<string, LatestValue> = {};
          for (const [tag, json] of Object.entries(stored)) values[tag] = JSON.parse(json) as LatestValue;
          return { device: ctx.params.id, values };
        },
      },

      history: {
        rest: "GET /devices/:id/history",
        role: "viewer",
        openapi: {
          summary: "One tag's history from raw samples, 1-minute or 1-hour rollups, chosen by span and points",
          description:
            "`from`/`to` as epoch ms or ISO-8601 (default: the last hour). The finest tier whose interval count over the span fits in `points` (default 1000) answers; `source` names it. Numeric tags: raw samples, or per interval min/max/avg/sum/count/first/last. Boolean and string tags: their change points. `limit` is an alias of `points`.",
        },
        params: { id: ID, tag: TAG, from: TIME, to: TIME, points: POINTS, limit: POINTS },
        async handler(ctx: Context<HistoryParams>): Promise<HistoryResult> {
          const { id, tag } = ctx.params;
          const { from, to } = this.timeRange(ctx.params);
          const points = ctx.params.points ?? ctx.params.limit ?? DEFAULT_POINTS;
          const [definition] = await this.tagDefinitions(ctx, id, [tag], "tag");
          const series = await this.readSeries(ctx, id, definition, from, to, points, chooseTier(from, to, points, Date.now(), limits));
          return { device: id, tag, from, to, ...series };
        },
      },

      export: {
        rest: "GET /devices/:id/export",
        role: "viewer",
        openapi: {
          summary: "Several tags' history aligned by timestamp, as CSV or JSON",
          description:
            "`tags` is a comma-separated list (at most 20). One tier for all tags, chosen like history's; one row per timestamp, one column per tag: the sample, the interval's average (rollups) or the state in effect (boolean and string tags). `format=csv` answers text/csv as a download.",
          contentType: "text/csv",
        },
        params: {
          id: ID,
          tags: { type: "string", min: 1, max: 2_000 },
          from: TIME,
          to: TIME,
          points: POINTS,
          format: { type: "enum", values: ["csv", "json"], optional: true },
        },
        async handler(ctx: Context<ExportParams, { $responseType?: string; $responseHeaders?: Record<string, string> }>): Promise<ExportResult | string> {
          const { id, format = "json" } = ctx.params;
          const tags = [...new Set(ctx.params.tags.split(",").map((t) => t.trim()))];
          const bad = tags.find((t) => !/^[A-Za-z0-9_.-]{1,64}$/.test(t));
          if (bad !== undefined) throw invalidParameter(`tags: "${bad.slice(0, 64)}" is not a tag name`, "tags");
          if (tags.length > MAX_EXPORT_TAGS) throw invalidParameter(`tags: at most ${MAX_EXPORT_TAGS} tags per export, got ${tags.length}`, "tags");
          const { from, to } = this.timeRange(ctx.params);
          const points = ctx.params.points ?? DEFAULT_POINTS;
          const definitions = await this.tagDefinitions(ctx, id, tags, "tags");
          // One tier for every tag, so the rows line up; a tag that needs a coarser one (raw with
          // more samples than points) moves them all.
          let source = chooseTier(from, to, points, Date.now(), limits);
          let series: HistorySeries[];
          for (;;) {
            const tier = source;
            series = await mapWithConcurrency(definitions, 4, (d) => this.readSeries(ctx, id, d, from, to, points, tier));
            const coarser = series.find((s) => s.source !== tier);
            if (!coarser) break;
            source = coarser.source;
          }
          const rows = alignSeries(series.map((s, i) => ({ tag: tags[i], series: s })));
          const aggregated = series.find((s) => s.kind === "aggregates");
          if (format === "csv") {
            ctx.meta.$responseType = "text/csv; charset=utf-8";
            ctx.meta.$responseHeaders = { "Content-Disposition": `attachment; filename="${id}-${from}-${to}.csv"` };
            return exportCsv(tags, rows);
          }
          return { device: id, from, to, source, intervalMs: aggregated?.kind === "aggregates" ? aggregated.intervalMs : null, tags, rows };
        },
      },

      /**
       * What this replica holds of a device in memory and not in MongoDB yet (for the other
       * replicas' queries): raw records, and with `tier` the rollup data of one tag.
       */
      buffered: {
        visibility: "public",
        params: {
          id: ID,
          from: { type: "number", integer: true },
          to: { type: "number", integer: true },
          tier: { type: "enum", values: ["1m", "1h"], optional: true },
          tag: { ...TAG, optional: true },
        },
        handler(ctx: Context<{ id: string; from: number; to: number; tier?: RollupTier; tag?: string }>): ReplicaMemory {
          const { id, from, to, tier, tag } = ctx.params;
          const memory = this.localMemory(id, from, to, tier);
          return { samples: memory.samples, contributions: tier && tag ? toWire(memory.contributions, tag) : [] };
        },
      },
    },

    methods: {
      /** from/to of a query, validated (400 naming the field). */
      timeRange(params: { from?: string | number; to?: string | number }): { from: number; to: number } {
        let from: number;
        let to: number;
        try {
          to = parseTimeParam(params.to, "to", Date.now());
          from = parseTimeParam(params.from, "from", to - 3_600_000);
        } catch (err) {
          if (err instanceof ValidationError) throw invalidParameter(err.message, err.field ?? "from");
          throw err;
        }
        if (from > to) throw invalidParameter("from must not be after to", "from");
        if (to - from > maxSpanMs) throw invalidParameter(`history spans at most ${maxSpanMs / DAY_MS} days per query`, "from");
        return { from, to };
      },

      /** The registry's definitions of the device's tags (404 for an unknown device, 400 naming an unknown tag). */
      async tagDefinitions(ctx: Context, id: string, tags: string[], field: string): Promise<TagDefinition[]> {
        const device = await ctx.call<DeviceDocument, { id: string }>("devices.get", { id });
        return tags.map((name) => {
          const definition = device.tags.find((t) => t.name === name);
          if (!definition) throw invalidParameter(`${field}: device ${id} has no tag "${name}"`, field);
          return definition;
        });
      },

      /**
       * One tag's series from the given tier. Raw that turns out to hold more samples than
       * `points` is answered from 1 m instead.
       */
      async readSeries(ctx: Context, id: string, definition: TagDefinition, from: number, to: number, points: number, source: HistorySource): Promise<HistorySeries> {
        const tag = definition.name;
        const numeric = definition.type === "number";
        if (source === "raw") {
          const samples = await this.readRaw(ctx, id, tag, from, to, points + 1);
          if (!numeric) return { source, kind: "changes", ...sampleChanges(samples, points) };
          if (samples.length <= points) return { source, kind: "samples", points: samples };
          return this.readSeries(ctx, id, definition, from, to, points, "1m");
        }
        const parts = await (this.rollups as RollupStore).readParts(id, source, tag, from, to, () => this.memory(ctx, id, from, to, source, tag));
        if (!numeric) return { source, kind: "changes", ...changePoints(parts, tag, from, to, points) };
        return { source, kind: "aggregates", ...rollupPoints(parts, tag, source, from, to, points) };
      },

      /** Raw points of one tag: buffered records (this replica's, then its peers'), then stored chunks. */
      async readRaw(ctx: Context, id: string, tag: string, from: number, to: number, limit: number) {
        // Records not in MongoDB yet live in the memory of the replica that owns the device's
        // partition: take this replica's and ask the other historian replicas for theirs, before
        // reading the chunks. In that order a record written meanwhile is seen in memory or in
        // MongoDB (or both: points are de-duplicated), never in neither.
        const { samples: buffered } = await this.memory(ctx, id, from, to);
        const collection = this.chunks as Collection<ChunkDocument>;
        const windows = await mapWithConcurrency(windowStartsInRange(from, to, config.bucketSpanMs), READ_CONCURRENCY, (start) =>
          readWindowChunks(id, start, (chunkId) => collection.findOne({ _id: chunkId }, { projection: { ts: 1, seq: 1, tags: 1 } })),
        );
        const samples = windows.flat().flatMap((chunk) => chunkSamples(chunk, tag));
        return historyPoints([...samples, ...buffered], tag, from, to, limit);
      },

      /** This replica's memory for a query: raw records not stored, and rollup data of `tier` not in documents read before. */
      localMemory(id: string, from: number, to: number, tier?: RollupTier): { samples: StoredSample[]; contributions: Contribution[] } {
        // Taken in one go (no await between), so a record is in exactly one of the two.
        return {
          samples: storedSamples((this.rawBuffer as RawWindowBuffer).pendingRecords(id, from, to)),
          contributions: tier ? (this.rollups as RollupStore).snapshot(id, tier, from, to) : [],
        };
      },

      /**
       * This replica's memory and its peers': with several historian replicas, each buffers the
       * open windows and periods of its own partitions' devices. A replica that does not answer
       * within the timeout is left out (logged): the answer then lacks at most what that replica
       * holds of the device in memory, until it is written.
       */
      async memory(ctx: Context, id: string, from: number, to: number, tier?: RollupTier, tag?: string): Promise<{ samples: StoredSample[]; contributions: Contribution[] }> {
        const local = this.localMemory(id, from, to, tier);
        const services = this.broker.registry.getServiceList({ onlyAvailable: true, skipInternal: true }) as unknown as { name: string; nodeID: string }[];
        const peers = [...new Set(services.filter((s) => s.name === "historian" && s.nodeID !== this.broker.nodeID).map((s) => s.nodeID))];
        const answers = await Promise.all(
          peers.map((nodeID) =>
            (ctx.call("historian.buffered", { id, from, to, tier, tag }, { nodeID, timeout: 2_000, retries: 0 }) as Promise<ReplicaMemory>).catch((err: Error) => {
              this.logger.warn("history: a historian replica did not return its buffered records", { nodeID, error: err.message });
              return { samples: [], contributions: [] };
            }),
          ),
        );
        return {
          samples: [...local.samples, ...answers.flatMap((a) => a.samples)],
          contributions: [...local.contributions, ...answers.flatMap((a) => fromWire(a.contributions))],
        };
      },

      /** Deletes what each tier keeps no longer: one deleteMany on the indexed `end` per collection. */
      async sweepRetention(): Promise<void> {
        const cutoffs = retentionCutoffs(Date.now(), limits.retentionMs);
        const targets: [HistorySource, Collection<ChunkDocument> | Collection<RollupDocument>][] = [
          ["raw", this.chunks],
          ["1m", this.minuteRollups],
          ["1h", this.hourRollups],
        ];
        const deleted: Record<string, number> = {};
        for (const [tier, collection] of targets) deleted[tier] = (await collection.deleteMany({ end: { $lte: cutoffs[tier] } })).deletedCount;
        if (Object.values(deleted).some((n) => n > 0)) this.logger.info("retention removed expired history documents", deleted);
      },

      async storeBatch({ batch }: EachBatchPayload): Promise<void> {
        if (this.stopping) return;
        const records: { record: TelemetryRecord; offset: string }[] = [];
        const rejected: DeadLetterRecord[] = [];
        for (const message of batch.messages) {
          let reason: string;
          try {
            const record: unknown = JSON.parse(message.value?.toString() ?? "");
            if (isTelemetryRecord(record)) {
              records.push({ record, offset: message.offset });
              continue;
            }
            reason = "not a telemetry record: device, ts, seq or values missing";
          } catch (err) {
            reason = `not a telemetry record: ${(err as Error).message}`;
          }
          const payload = message.value?.toString("base64") ?? "";
          rejected.push({ source: `${batch.topic}/${batch.partition}@${message.offset}`, code: "invalid-record", reason, payload, encoding: "base64", at: Date.now() });
        }
        // Dead letters are sent before their offsets can be committed.
        await this.kafkaProduce("deadletter", rejected.map((r) => ({ key: r.source, value: JSON.stringify(r) })));
        // Latest values first: they come from Kafka, so they are valid before the history write lands.
        if (records.length > 0) await this.cacheLatest(records.map((r) => r.record));
        await (this.serial as SerialQueue).run(async () => {
          const owned = this.ownedPartitions as Map<string, Set<number>> | null;
          // A batch fetched before a rebalance took the partition away: the new owner reads it again.
          if (owned && !owned.get(batch.topic)?.has(batch.partition)) return;
          const buffer = this.rawBuffer as RawWindowBuffer;
          await this.loadWindows(buffer.windowsToLoad(records.map((r) => r.record)));
          await this.prepareRollups(records.map((r) => r.record));
          const now = Date.now();
          const devicePartitions = this.devicePartitions as Map<string, string>;
          for (const { record, offset } of records) {
            buffer.add(record, { topic: batch.topic, partition: batch.partition, offset }, now);
            devicePartitions.set(record.device, `${batch.topic}/${batch.partition}`);
          }
          buffer.processed(batch.topic, batch.partition, batch.lastOffset());
          const written = await this.writeChunks(() => buffer.takeLate());
          buffer.prune(Date.now());
          (this.committer as OffsetCommitter).request(buffer.commitPositions());
          await this.flushRollups();
          if (written > 0) this.logger.debug("stored late or sealed windows", { partition: batch.partition, records: records.length, chunks: written });
        });
      },

      /** Seals what the clock says is due (see RawTierOptions.graceMs) and commits. */
      async sealDue(): Promise<void> {
        const buffer = this.rawBuffer as RawWindowBuffer;
        await this.writeChunks(() => buffer.takeDue(Date.now()));
        buffer.prune(Date.now());
        (this.committer as OffsetCommitter).request(buffer.commitPositions());
        await this.flushRollups();
      },

      /**
       * Writes the rollup periods that are due. Rollups are derived from stored chunks, so a
       * failure here is logged and retried with the next batch or tick, never holding up ingest.
       */
      async prepareRollups(records: TelemetryRecord[]): Promise<void> {
        try {
          await (this.rollups as RollupStore).prepare(records);
        } catch (err) {
          this.logger.warn("loading rollup hours failed; retrying before their next use", { error: (err as Error).message });
        }
      },

      async flushRollups(): Promise<void> {
        try {
          await (this.rollups as RollupStore).flush(Date.now());
        } catch (err) {
          this.logger.warn("writing rollups failed; retrying with the next batch", { error: (err as Error).message });
        }
      },

      /** Loads windows' stored chunks by `_id` into the buffer's knowledge. */
      async loadWindows(refs: WindowRef[]): Promise<void> {
        if (refs.length === 0) return;
        const collection = this.chunks as Collection<ChunkDocument>;
        const buffer = this.rawBuffer as RawWindowBuffer;
        await mapWithConcurrency(refs, READ_CONCURRENCY, async (ref) => {
          const chunks = await readWindowChunks(ref.device, ref.start, (chunkId) => collection.findOne({ _id: chunkId }, { projection: { ts: 1, seq: 1 } }));
          buffer.learn(ref, chunkKeys(chunks));
        });
      },

      /**
       * Writes the chunks `take` plans, insert-only. A duplicate `_id` means someone else (or an
       * earlier attempt whose acknowledgement was lost) wrote that chunk: the window is reloaded
       * and only what is still missing is planned again, under the next number. Any other error
       * fails the caller, so nothing is committed past the records not written. Returns the
       * number of chunks written.
       */
      async writeChunks(take: () => ChunkPlan[]): Promise<number> {
        const buffer = this.rawBuffer as RawWindowBuffer;
        const collection = this.chunks as Collection<ChunkDocument>;
        let written = 0;
        for (let attempt = 1; ; attempt++) {
          await this.loadWindows(buffer.windowsToReload());
          const plans = take();
          if (plans.length === 0) return written;
          const writtenAt = Date.now();
          const failed = new Map<number, number>();
          const started = performance.now();
          const docs = plans.map((plan) => buildChunk(plan, config.bucketSpanMs, writtenAt));
          const rollups = this.rollups as RollupStore;
          try {
            await collection.insertMany(docs, { ordered: false });
          } catch (err) {
            // The driver wraps a network or server-selection error (MongoDB down) in a MongoBulkWriteError
            // without write errors: only per-document write errors say what was not inserted.
            if (!(err instanceof MongoBulkWriteError) || [err.writeErrors].flat().length === 0) {
              // Outcome unknown: every window is reloaded before it is planned again, and so are its rollup hours.
              for (const plan of plans) buffer.invalidate(plan);
              rollups.invalidateChunks(docs);
              throw err;
            }
            for (const writeError of [err.writeErrors].flat()) failed.set(writeError.index, writeError.code);
          }
          const storedAt = Date.now();
          const latency = this.latency as LatencyHistogram;
          plans.forEach((plan, index) => {
            if (failed.has(index)) {
              buffer.invalidate(plan);
              // Someone else stored this chunk id: the hour is reloaded to count what they stored.
              rollups.invalidateChunks([docs[index]]);
              return;
            }
            buffer.written(plan);
            written++;
            for (const record of plan.records) {
              latency.record(storedAt - record.ts);
              this.storedPoints += Object.keys(record.values).length;
            }
          });
          this.logger.debug("wrote chunks", { chunks: plans.length, failed: failed.size, ms: Math.round(performance.now() - started) });
          try {
            await rollups.addChunks(docs.filter((_, index) => !failed.has(index)), Date.now());
          } catch (err) {
            // Their hours stay unloaded and are loaded (with these chunks) before their next use.
            this.logger.warn("adding stored chunks to the rollups failed; their hours will be reloaded", { error: (err as Error).message });
          }
          const other = [...failed.values()].find((code) => code !== DUPLICATE_KEY);
          if (other !== undefined) throw new Error(`writing ${failed.size} of ${plans.length} chunks failed (code ${other})`);
          if (failed.size === 0) return written;
          if (attempt >= MAX_WRITE_ATTEMPTS) throw new Error(`chunk ids kept colliding after ${attempt} attempts`);
          this.logger.info("chunk ids collided with chunks written elsewhere; reloading those windows", { chunks: failed.size });
        }
      },

      async cacheLatest(records: TelemetryRecord[]): Promise<void> {
        const newestTs = this.newestTs as Map<string, number>;
        const pipeline = (this.redis as Redis).pipeline();
        for (const [device, values] of latestValues(records)) {
          const fields: Record<string, string> = {};
          for (const [tag, value] of Object.entries(values)) {
            // A partition's records arrive in order, but a redelivered older batch must not roll values back.
            const key = `${device}/${tag}`;
            if ((newestTs.get(key) ?? 0) > value.ts) continue;
            newestTs.set(key, value.ts);
            fields[tag] = JSON.stringify(value);
          }
          if (Object.keys(fields).length > 0) pipeline.hset(this.redisKey("latest", device), fields);
        }
        await pipeline.exec();
      },

      /** A (re)join of the consumer group: forget what came from partitions this member lost. */
      onGroupJoin(assignment: Record<string, number[]>): void {
        void (this.serial as SerialQueue)
          .run(async () => {
            const owned = new Map(Object.entries(assignment).map(([topic, partitions]) => [topic, new Set(partitions)]));
            this.ownedPartitions = owned;
            const owns = (topic: string, partition: number) => owned.get(topic)?.has(partition) ?? false;
            const dropped = (this.rawBuffer as RawWindowBuffer).retainPartitions(owns);
            const devicePartitions = this.devicePartitions as Map<string, string>;
            for (const [device, source] of devicePartitions) {
              const cut = source.lastIndexOf("/");
              if (!owns(source.slice(0, cut), Number(source.slice(cut + 1)))) devicePartitions.delete(device);
            }
            // Rollups of devices on lost partitions are stored sources; their new owner loads them.
            (this.rollups as RollupStore).retainDevices((device) => devicePartitions.has(device));
            (this.committer as OffsetCommitter).retainPartitions(owns);
            this.logger.info("historian joined the consumer group", { partitions: assignment, droppedBufferedRecords: dropped });
          })
          .catch((err: Error) => this.logger.error("handling the group join failed", { error: err.message }));
      },

      commitKafkaPositions(positions: KafkaPosition[]): Promise<void> {
        const consumer = this.consumer as Consumer | undefined;
        if (!consumer) return Promise.reject(new Error("the consumer is not running yet"));
        return consumer.commitOffsets(positions);
      },
    },

    created() {
      this.latency = new LatencyHistogram();
      this.storedPoints = 0;
      this.rawBuffer = new RawWindowBuffer(options);
      this.serial = new SerialQueue();
      this.ownedPartitions = null;
      this.devicePartitions = new Map<string, string>();
      this.stopping = false;
      this.sweeping = false;
      this.committer = new OffsetCommitter(
        (positions) => this.commitKafkaPositions(positions),
        (err) => this.logger.warn("committing Kafka offsets failed; retrying with the next commit", { error: err.message }),
      );
    },

    async started() {
      this.newestTs = new Map<string, number>();
      const db = this.db as Db;
      this.chunks = db.collection<ChunkDocument>("telemetry");
      this.minuteRollups = db.collection<RollupDocument>(TIERS["1m"].collection);
      this.hourRollups = db.collection<RollupDocument>(TIERS["1h"].collection);
      // Reads go by _id; `end` serves the retention job's one deleteMany per collection, and
      // device + start ad-hoc queries on MongoDB proper.
      for (const collection of [this.chunks, this.minuteRollups, this.hourRollups] as Collection<{ device: string; start: number; end: number }>[]) {
        await collection.createIndex({ device: 1, start: 1 });
        await collection.createIndex({ end: 1 });
      }
      this.rollups = new RollupStore({
        telemetry: this.chunks,
        minute: this.minuteRollups,
        hour: this.hourRollups,
        bucketSpanMs: config.bucketSpanMs,
        graceMs: config.historianSealGraceMs,
        rawPending: (device, from, to) => (this.rawBuffer as RawWindowBuffer).hasPending(device, from, to),
      });
      // Batches only fill memory (chunks are written when windows seal), so they need not be big:
      // up to 64 KB or 500 ms, and latest values reach Redis within half a second.
      this.consumer = await this.kafkaConsume({
        group: "historian",
        topics: ["telemetry"],
        minBytes: 65_536,
        maxWaitTimeInMs: 500,
        autoCommit: false,
        onGroupJoin: (assignment: Record<string, number[]>) => this.onGroupJoin(assignment),
        eachBatch: (payload: EachBatchPayload) => this.storeBatch(payload),
      });
      this.sealTimer = setInterval(() => {
        const serial = this.serial as SerialQueue;
        // One seal check queued at a time; a slow write just delays the next check.
        if (this.sealQueued || this.stopping) return;
        this.sealQueued = true;
        serial
          .run(() => this.sealDue())
          .catch((err: Error) => this.logger.error("writing sealed windows failed; retrying", { error: err.message }))
          .finally(() => (this.sealQueued = false));
      }, TICK_MS);
      // Every replica sweeps: deleting what is already deleted is harmless. Not at start: on
      // FerretDB each sweep scans the collections, which a restarting fleet should not do at once.
      const sweep = () => {
        if (this.sweeping || this.stopping) return;
        this.sweeping = true;
        (this.sweepRetention() as Promise<void>).catch((err: Error) => this.logger.warn("the retention sweep failed; retrying at the next one", { error: err.message })).finally(() => (this.sweeping = false));
      };
      this.retentionTimer = setInterval(sweep, sweepMs);
    },

    async stopped() {
      // Runs before the mixins' stopped handlers: Kafka and MongoDB are still connected.
      clearInterval(this.sealTimer);
      clearInterval(this.retentionTimer);
      this.stopping = true;
      const consumer = this.consumer as Consumer | undefined;
      consumer?.pause([{ topic: telemetryTopic }]);
      try {
        await (this.serial as SerialQueue).run(async () => {
          const buffer = this.rawBuffer as RawWindowBuffer;
          const written = await this.writeChunks(() => buffer.takeAll());
          (this.committer as OffsetCommitter).request(buffer.commitPositions());
          // Periods that are over are written; open ones are rebuilt from the chunks by the next owner.
          await this.flushRollups();
          this.logger.info("historian stored its open windows before stopping", { chunks: written });
        });
      } catch (err) {
        // Nothing past the unwritten records is committed: the next owner reads them again.
        this.logger.error("storing the open windows on stop failed", { error: (err as Error).message });
      }
      if (!(await (this.committer as OffsetCommitter).drain(10_000))) this.logger.warn("the last offset commit did not finish before stopping");
    },
  };
}
