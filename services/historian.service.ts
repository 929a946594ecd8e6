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
import { OffsetCommitter } from "../src/historian/offset-committer.ts";
import { rawTierOptions } from "../src/historian/raw-tier-config.ts";
import { RawWindowBuffer, type KafkaPosition, type WindowRef } from "../src/historian/raw-window-buffer.ts";
import { SerialQueue } from "../src/historian/serial.ts";
import { mapWithConcurrency } from "../src/shared/concurrency.ts";
import type { PlantwireConfig } from "../src/shared/config.ts";
import { ValidationError } from "../src/shared/errors.ts";
import { LatencyHistogram } from "../src/shared/latency-histogram.ts";
import { parseTimeParam } from "../src/shared/time.ts";
import { kafkaTopic } from "../src/shared/topics.ts";
import type { DeadLetterRecord, HistoryPoint, LatestValue, TelemetryRecord } from "../src/shared/types.ts";

export interface HistoryParams {
  id: string;
  tag: string;
  from?: string | number;
  to?: string | number;
  limit?: number;
}

export interface HistoryResult {
  device: string;
  tag: string;
  from: number;
  to: number;
  source: "raw";
  points: HistoryPoint[];
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
  /** Partitions this member owns ("topic/partition"), as of the last group join. */
  partitions: string[];
}

const ID = { type: "string", pattern: /^[A-Za-z0-9_.-]{1,64}$/ } as const;
const TIME = { type: "multi", optional: true, rules: [{ type: "number", integer: true }, { type: "string", max: 40 }] } as const;
const MAX_POINTS = 100_000;
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

/**
 * Kafka → MongoDB raw history (insert-only chunks per device and window, see
 * src/historian/raw-window-buffer.ts) and Redis (latest values); answers both queries.
 */
export default function createHistorianService(config: PlantwireConfig): ServiceSchema {
  const options = rawTierOptions(config);
  const telemetryTopic = kafkaTopic(config.kafkaTopicPrefix, "telemetry");
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
          const result: HistorianStats = {
            samples: latency.count,
            points: this.storedPoints as number,
            latencyMs: latency.summary(),
            buffered: (this.rawBuffer as RawWindowBuffer).buffered,
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
        params: {
          id: ID,
          tag: { type: "string", pattern: /^[A-Za-z0-9_.-]{1,64}$/ },
          from: TIME,
          to: TIME,
          limit: { type: "number", integer: true, min: 1, max: MAX_POINTS, optional: true, convert: true },
        },
        async handler(ctx: Context<HistoryParams>): Promise<HistoryResult> {
          const { id, tag, limit = 10_000 } = ctx.params;
          let from: number;
          let to: number;
          try {
            to = parseTimeParam(ctx.params.to, "to", Date.now());
            from = parseTimeParam(ctx.params.from, "from", to - 3_600_000);
          } catch (err) {
            if (err instanceof ValidationError) throw new Errors.MoleculerClientError(err.message, 400, "INVALID_PARAMETER", { field: err.field });
            throw err;
          }
          if (from > to) throw new Errors.MoleculerClientError("from must not be after to", 400, "INVALID_PARAMETER", { field: "from" });
          const maxSpanMs = MAX_BUCKETS_PER_QUERY * config.bucketSpanMs;
          if (to - from > maxSpanMs) {
            throw new Errors.MoleculerClientError(`raw history spans at most ${maxSpanMs / 3_600_000} h per query`, 400, "INVALID_PARAMETER", { field: "from" });
          }
          await ctx.call("devices.get", { id });
          // Records not in MongoDB yet live in the memory of the replica that owns the device's
          // partition: take this replica's and ask the other historian replicas for theirs, before
          // reading the chunks. In that order a record written meanwhile is seen in memory or in
          // MongoDB (or both: points are de-duplicated), never in neither.
          const buffered: StoredSample[] = (this.rawBuffer as RawWindowBuffer).pendingRecords(id, from, to);
          buffered.push(...(await this.peerBufferedSamples(ctx, id, from, to)));
          const collection = this.chunks as Collection<ChunkDocument>;
          const windows = await mapWithConcurrency(windowStartsInRange(from, to, config.bucketSpanMs), READ_CONCURRENCY, (start) =>
            readWindowChunks(id, start, (chunkId) => collection.findOne({ _id: chunkId }, { projection: { ts: 1, seq: 1, tags: 1 } })),
          );
          const samples = windows.flat().flatMap((chunk) => chunkSamples(chunk, tag));
          return { device: id, tag, from, to, source: "raw", points: historyPoints([...samples, ...buffered], tag, from, to, limit) };
        },
      },

      /** This replica's records of a device not in MongoDB yet (for the other replicas' history queries). */
      buffered: {
        visibility: "public",
        params: { id: ID, from: { type: "number", integer: true }, to: { type: "number", integer: true } },
        handler(ctx: Context<{ id: string; from: number; to: number }>): StoredSample[] {
          return (this.rawBuffer as RawWindowBuffer).pendingRecords(ctx.params.id, ctx.params.from, ctx.params.to).map(({ ts, seq, values }) => ({ ts, seq, values }));
        },
      },
    },

    methods: {
      /**
       * With several historian replicas, each buffers the open windows of its own partitions' devices.
       * A replica that does not answer within the timeout is left out (logged): the answer then
       * lacks at most that replica's last window plus grace of the device, until it is written.
       */
      async peerBufferedSamples(ctx: Context, id: string, from: number, to: number): Promise<StoredSample[]> {
        const services = this.broker.registry.getServiceList({ onlyAvailable: true, skipInternal: true }) as unknown as { name: string; nodeID: string }[];
        const peers = [...new Set(services.filter((s) => s.name === "historian" && s.nodeID !== this.broker.nodeID).map((s) => s.nodeID))];
        const answers = await Promise.all(
          peers.map((nodeID) =>
            (ctx.call("historian.buffered", { id, from, to }, { nodeID, timeout: 2_000, retries: 0 }) as Promise<StoredSample[]>).catch((err: Error) => {
              this.logger.warn("history: a historian replica did not return its buffered records", { nodeID, error: err.message });
              return [];
            }),
          ),
        );
        return answers.flat();
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
          rejected.push({ source: `${batch.topic}/${batch.partition}@${message.offset}`, reason, payload, encoding: "base64", at: Date.now() });
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
          const now = Date.now();
          for (const { record, offset } of records) buffer.add(record, { topic: batch.topic, partition: batch.partition, offset }, now);
          buffer.processed(batch.topic, batch.partition, batch.lastOffset());
          const written = await this.writeChunks(() => buffer.takeLate());
          buffer.prune(Date.now());
          (this.committer as OffsetCommitter).request(buffer.commitPositions());
          if (written > 0) this.logger.debug("stored late or sealed windows", { partition: batch.partition, records: records.length, chunks: written });
        });
      },

      /** Seals what the clock says is due (see RawTierOptions.graceMs) and commits. */
      async sealDue(): Promise<void> {
        const buffer = this.rawBuffer as RawWindowBuffer;
        await this.writeChunks(() => buffer.takeDue(Date.now()));
        buffer.prune(Date.now());
        (this.committer as OffsetCommitter).request(buffer.commitPositions());
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
          try {
            await collection.insertMany(
              plans.map((plan) => buildChunk(plan, config.bucketSpanMs, writtenAt)),
              { ordered: false },
            );
          } catch (err) {
            if (!(err instanceof MongoBulkWriteError)) {
              // Outcome unknown: every window is reloaded before it is planned again.
              for (const plan of plans) buffer.invalidate(plan);
              throw err;
            }
            for (const writeError of [err.writeErrors].flat()) failed.set(writeError.index, writeError.code);
          }
          const storedAt = Date.now();
          const latency = this.latency as LatencyHistogram;
          plans.forEach((plan, index) => {
            if (failed.has(index)) {
              buffer.invalidate(plan);
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
      this.stopping = false;
      this.committer = new OffsetCommitter(
        (positions) => this.commitKafkaPositions(positions),
        (err) => this.logger.warn("committing Kafka offsets failed; retrying with the next commit", { error: err.message }),
      );
    },

    async started() {
      this.newestTs = new Map<string, number>();
      this.chunks = (this.db as Db).collection<ChunkDocument>("telemetry");
      // For MongoDB proper (retention and ad-hoc queries); reads here go by _id.
      await this.chunks.createIndex({ device: 1, start: 1 });
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
    },

    async stopped() {
      // Runs before the mixins' stopped handlers: Kafka and MongoDB are still connected.
      clearInterval(this.sealTimer);
      this.stopping = true;
      const consumer = this.consumer as Consumer | undefined;
      consumer?.pause([{ topic: telemetryTopic }]);
      try {
        await (this.serial as SerialQueue).run(async () => {
          const buffer = this.rawBuffer as RawWindowBuffer;
          const written = await this.writeChunks(() => buffer.takeAll());
          (this.committer as OffsetCommitter).request(buffer.commitPositions());
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
