import type { Context, ServiceSchema } from "moleculer";
import { Errors } from "moleculer";
import type { EachBatchPayload } from "kafkajs";
import type { Collection, Db } from "mongodb";
import type { Redis } from "ioredis";
import { healthMixin } from "../mixins/health.mixin.ts";
import { kafkaMixin } from "../mixins/kafka.mixin.ts";
import { mongoMixin } from "../mixins/mongo.mixin.ts";
import { redisMixin } from "../mixins/redis.mixin.ts";
import { bucketIdsInRange, bucketUpserts, historyPoints, latestValues, MAX_BUCKETS_PER_QUERY, type BucketDocument } from "../src/historian/buckets.ts";
import { mapWithConcurrency } from "../src/shared/concurrency.ts";
import type { PlantwireConfig } from "../src/shared/config.ts";
import { ValidationError } from "../src/shared/errors.ts";
import { LatencyHistogram } from "../src/shared/latency-histogram.ts";
import { parseTimeParam } from "../src/shared/time.ts";
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

const ID = { type: "string", pattern: /^[A-Za-z0-9_.-]{1,64}$/ } as const;
const TIME = { type: "multi", optional: true, rules: [{ type: "number", integer: true }, { type: "string", max: 40 }] } as const;
const MAX_POINTS = 100_000;

/** Kafka → MongoDB bucket documents (history) and Redis (latest values); answers both queries. */
export default function createHistorianService(config: PlantwireConfig): ServiceSchema {
  return {
    name: "historian",
    mixins: [kafkaMixin(config), mongoMixin(config), redisMixin(config), healthMixin()],

    settings: { rest: "/" },

    actions: {
      /** Samples stored and their PLC-timestamp → stored latency since start (or the last reset). */
      stats: {
        params: { reset: { type: "boolean", optional: true, convert: true } },
        handler(ctx: Context<{ reset?: boolean }>): { samples: number; points: number; latencyMs: ReturnType<LatencyHistogram["summary"]> } {
          const latency = this.latency as LatencyHistogram;
          const result = { samples: latency.count, points: this.storedPoints as number, latencyMs: latency.summary() };
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
          const collection = this.buckets as Collection<BucketDocument>;
          const ids = bucketIdsInRange(id, from, to, config.bucketSpanMs);
          const buckets = await mapWithConcurrency(ids, 16, (bucketId) => collection.findOne({ _id: bucketId }, { projection: { samples: 1 } }));
          const found = buckets.filter((b): b is BucketDocument => b !== null);
          return { device: id, tag, from, to, source: "raw", points: historyPoints(found, tag, from, to, limit) };
        },
      },
    },

    methods: {
      async storeBatch({ batch }: EachBatchPayload): Promise<void> {
        const records: TelemetryRecord[] = [];
        const rejected: DeadLetterRecord[] = [];
        for (const message of batch.messages) {
          try {
            records.push(JSON.parse(message.value?.toString() ?? "") as TelemetryRecord);
          } catch (err) {
            const payload = message.value?.toString("base64") ?? "";
            rejected.push({ source: `${batch.topic}/${batch.partition}@${message.offset}`, reason: `not a telemetry record: ${(err as Error).message}`, payload, encoding: "base64", at: Date.now() });
          }
        }
        if (records.length > 0) {
          // Latest values first: they come from Kafka, so they are valid before the history write lands.
          await this.cacheLatest(records);
          const operations = bucketUpserts(records, config.bucketSpanMs).map(({ filter, update }) => ({ updateOne: { filter, update, upsert: true } }));
          const started = performance.now();
          await (this.buckets as Collection<BucketDocument>).bulkWrite(operations, { ordered: false });
          this.logger.debug("stored telemetry batch", { partition: batch.partition, records: records.length, buckets: operations.length, ms: Math.round(performance.now() - started) });
          const storedAt = Date.now();
          for (const record of records) {
            (this.latency as LatencyHistogram).record(storedAt - record.ts);
            this.storedPoints += Object.keys(record.values).length;
          }
        }
        await this.kafkaProduce("deadletter", rejected.map((r) => ({ key: r.source, value: JSON.stringify(r) })));
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
    },

    created() {
      this.latency = new LatencyHistogram();
      this.storedPoints = 0;
    },

    async started() {
      this.newestTs = new Map<string, number>();
      this.buckets = (this.db as Db).collection<BucketDocument>("telemetry");
      // For MongoDB proper (retention and ad-hoc queries); reads here go by _id.
      await this.buckets.createIndex({ device: 1, start: 1 });
      // Each bucket write rewrites the whole document (about 10 ms for a 25 KB bucket on FerretDB), so
      // let Kafka gather up to 1 MB or 2 s per batch: more samples per write, at most 2 s later.
      await this.kafkaConsume({ group: "historian", topics: ["telemetry"], minBytes: 1_048_576, maxWaitTimeInMs: 2_000, eachBatch: (payload: EachBatchPayload) => this.storeBatch(payload) });
    },
  };
}
