import { Errors, type Context, type ServiceSchema } from "moleculer";
import type { EachBatchPayload } from "kafkajs";
import { MongoBulkWriteError, type Collection, type Db } from "mongodb";
import { healthMixin } from "../mixins/health.mixin.ts";
import { kafkaMixin } from "../mixins/kafka.mixin.ts";
import { mongoMixin } from "../mixins/mongo.mixin.ts";
import { requesterOf } from "../src/control/commands.ts";
import {
  DEAD_LETTER_CODES,
  DEAD_LETTER_ID,
  DEAD_LETTER_STATUSES,
  deadLetterDocument,
  deadLetterFilter,
  type DeadLetterDocument,
  type DeadLetterFilter,
  type DeadLetterQueryParams,
  type DeadLetterSummary,
} from "../src/dead-letters/records.ts";
import {
  attemptUpdate,
  claimConflict,
  countOutcomes,
  MAX_BULK_REPLAY,
  precheck,
  replayResult,
  type ReplayClaim,
  type ReplayOutcome,
  type ReplayResult,
} from "../src/dead-letters/replay.ts";
import { mapWithConcurrency } from "../src/shared/concurrency.ts";
import type { PlantwireConfig } from "../src/shared/config.ts";
import { ValidationError } from "../src/shared/errors.ts";
import type { IngestOutcome } from "../src/shared/types.ts";

export interface ListDeadLettersParams extends DeadLetterQueryParams {
  limit?: number;
  offset?: number;
}

export interface DeadLetterList {
  total: number;
  limit: number;
  offset: number;
  items: DeadLetterSummary[];
}

export interface BulkReplayResult {
  /** Dead letters matching the filter; at most `limit` of them (oldest first) were handled. */
  matched: number;
  counts: Record<ReplayOutcome, number>;
  items: ReplayResult[];
}

export interface DeadLettersStats {
  /** Dead letters this instance stored since start; `duplicates`: records consumed again and already stored. */
  stored: number;
  duplicates: number;
  /** Replay outcomes this instance answered since start. */
  replays: Record<ReplayOutcome, number>;
}

/** The gateway's authenticated user, once authentication exists. */
interface OperatorMeta {
  user?: unknown;
}

const ID = { type: "string", pattern: DEAD_LETTER_ID } as const;
const TIME = { type: "multi", optional: true, rules: [{ type: "number", integer: true }, { type: "string", max: 40 }] } as const;
const FILTER_PARAMS = {
  reason: { type: "enum", values: [...DEAD_LETTER_CODES, "other"], optional: true },
  device: { type: "string", pattern: /^[A-Za-z0-9_.-]{1,64}$/, optional: true },
  from: TIME,
  to: TIME,
  status: { type: "enum", values: [...DEAD_LETTER_STATUSES], optional: true },
} as const;
const DUPLICATE_KEY = 11000;
/** How long one replay waits for the preprocessor (it waits for Kafka's acknowledgement). */
const PREPROCESSOR_TIMEOUT_MS = 15_000;
/** Replays in flight in a bulk replay. */
const REPLAY_CONCURRENCY = 4;
/** How long a replay waits for a concurrent replay of the same dead letter, polling its claim. */
const CLAIM_WAIT_MS = PREPROCESSOR_TIMEOUT_MS + 5_000;
const CLAIM_POLL_MS = 100;

function isDuplicateKey(err: unknown): boolean {
  return (err as { code?: number }).code === DUPLICATE_KEY;
}

function badParameter(field: string, message: string): Errors.MoleculerClientError {
  return new Errors.MoleculerClientError(message, 400, "VALIDATION_ERROR", [{ field, message }]);
}

function filterOf(params: DeadLetterQueryParams): DeadLetterFilter {
  try {
    return deadLetterFilter(params);
  } catch (err) {
    if (err instanceof ValidationError) throw badParameter(err.field ?? "", err.message);
    throw err;
  }
}

/**
 * The dead-letter queue: stores every record of `scada.deadletter.v1` in MongoDB (`deadletters`,
 * insert-only, named by Kafka coordinates), lists and shows them, and replays them through the
 * preprocessor's validation path exactly once (claims in `deadletter_replays`).
 */
export default function createDeadLettersService(config: PlantwireConfig): ServiceSchema {
  return {
    name: "dead-letters",
    mixins: [kafkaMixin(config), mongoMixin(config), healthMixin()],

    settings: { rest: "/" },

    actions: {
      list: {
        rest: "GET /dead-letters",
        role: "viewer",
        openapi: { summary: "List dead letters, newest first, filtered by reason code, device, time and replay status" },
        params: {
          ...FILTER_PARAMS,
          limit: { type: "number", integer: true, min: 1, max: 1000, optional: true, convert: true },
          offset: { type: "number", integer: true, min: 0, max: 100_000, optional: true, convert: true },
        },
        async handler(ctx: Context<ListDeadLettersParams>): Promise<DeadLetterList> {
          const { limit = 100, offset = 0 } = ctx.params;
          const filter = filterOf(ctx.params);
          const collection = this.deadLetters as Collection<DeadLetterDocument>;
          // Any filter but _id is a full scan on FerretDB: acceptable for an operator's list of dead letters.
          const [total, items] = await Promise.all([
            collection.countDocuments(filter),
            collection.find(filter, { projection: { payload: 0 } }).sort({ at: -1, _id: -1 }).skip(offset).limit(limit).toArray() as Promise<DeadLetterSummary[]>,
          ]);
          return { total, limit, offset, items };
        },
      },

      stats: {
        rest: "GET /dead-letters/stats",
        role: "viewer",
        openapi: { summary: "Dead letters stored and replay outcomes of this dead-letters instance since it started" },
        handler(): DeadLettersStats {
          return this.stats as DeadLettersStats;
        },
      },

      get: {
        rest: "GET /dead-letters/:id",
        role: "viewer",
        openapi: { summary: "One dead letter with its payload and replay status" },
        params: { id: ID },
        async handler(ctx: Context<{ id: string }>): Promise<DeadLetterDocument> {
          const document = await (this.deadLetters as Collection<DeadLetterDocument>).findOne({ _id: ctx.params.id });
          if (!document) throw new Errors.MoleculerClientError(`dead letter "${ctx.params.id}" does not exist`, 404, "DEAD_LETTER_NOT_FOUND", { id: ctx.params.id });
          return document;
        },
      },

      replay: {
        rest: "POST /dead-letters/:id/replay",
        role: "engineer",
        openapi: { summary: "Replay one dead letter through the preprocessor's validation; forwarded at most once" },
        // Not retried by the caller: the claim makes a retry harmless, but a timed-out replay is still running.
        retryPolicy: { enabled: false },
        timeout: CLAIM_WAIT_MS + PREPROCESSOR_TIMEOUT_MS + 10_000,
        params: { id: ID },
        async handler(ctx: Context<{ id: string }, OperatorMeta>): Promise<ReplayResult> {
          const document = await (this.deadLetters as Collection<DeadLetterDocument>).findOne({ _id: ctx.params.id });
          if (!document) throw new Errors.MoleculerClientError(`dead letter "${ctx.params.id}" does not exist`, 404, "DEAD_LETTER_NOT_FOUND", { id: ctx.params.id });
          return this.replayDocument(ctx, document, requesterOf(ctx.meta.user));
        },
      },

      replayMany: {
        rest: "POST /dead-letters/replay",
        role: "engineer",
        openapi: { summary: `Replay the dead letters matching a filter, oldest first, at most ${MAX_BULK_REPLAY} per call` },
        retryPolicy: { enabled: false },
        timeout: 300_000,
        params: {
          ...FILTER_PARAMS,
          limit: { type: "number", integer: true, min: 1, max: MAX_BULK_REPLAY, optional: true, convert: true },
        },
        async handler(ctx: Context<DeadLetterQueryParams & { limit?: number }, OperatorMeta>): Promise<BulkReplayResult> {
          const filter = filterOf(ctx.params);
          const collection = this.deadLetters as Collection<DeadLetterDocument>;
          const [matched, documents] = await Promise.all([
            collection.countDocuments(filter),
            // Oldest first, so a large backlog is worked off from its start; the historian takes samples in any order.
            collection.find(filter).sort({ at: 1, _id: 1 }).limit(ctx.params.limit ?? 100).toArray(),
          ]);
          const user = requesterOf(ctx.meta.user);
          const items = await mapWithConcurrency(documents, REPLAY_CONCURRENCY, (document) =>
            (this.replayDocument(ctx, document, user) as Promise<ReplayResult>).catch((err: Error): ReplayResult => {
              this.logger.error("dead-letter replay failed", { id: document._id, error: err.message });
              return { id: document._id, outcome: "failed", reason: err.message };
            }),
          );
          const counts = countOutcomes(items);
          this.logger.info("bulk dead-letter replay", { user, matched, counts });
          return { matched, counts, items };
        },
      },
    },

    methods: {
      async storeBatch({ batch }: EachBatchPayload): Promise<void> {
        const now = Date.now();
        const documents = batch.messages.map((m) => deadLetterDocument(m.value, { topic: batch.topic, partition: batch.partition, offset: m.offset }, config.topicRoot, now));
        const stats = this.stats as DeadLettersStats;
        try {
          await (this.deadLetters as Collection<DeadLetterDocument>).insertMany(documents, { ordered: false });
          stats.stored += documents.length;
        } catch (err) {
          // A re-consumed record (a restart before the offset commit, a rebalance) has its id already.
          // MongoDB unreachable comes as a MongoBulkWriteError without write errors: nothing is known stored.
          if (!(err instanceof MongoBulkWriteError) || [err.writeErrors].flat().length === 0) throw err;
          const errors = [err.writeErrors].flat();
          const other = errors.find((e) => e.code !== DUPLICATE_KEY);
          if (other) throw err;
          stats.stored += documents.length - errors.length;
          stats.duplicates += errors.length;
        }
        this.logger.debug("stored dead letters", { partition: batch.partition, records: documents.length });
      },

      /** Replays one dead letter unless it cannot or need not be; at most one replay of it forwards. */
      async replayDocument(ctx: Context, document: DeadLetterDocument, user: string): Promise<ReplayResult> {
        const id = document._id;
        const known = precheck(document) ?? ((await this.claim(id, user)) as ReplayOutcome | "claimed");
        if (known !== "claimed") return this.answer({ id, outcome: known }, document);
        let outcome: IngestOutcome;
        try {
          outcome = await ctx.call<IngestOutcome, object>("preprocessor.replay", { topic: document.source, payload: document.payload, encoding: document.encoding }, { timeout: PREPROCESSOR_TIMEOUT_MS, retries: 0 });
        } catch (err) {
          // Whether the preprocessor forwarded it is unknown: free it for another replay (the
          // historian stores a sample once by device, ts and seq, should both have forwarded it).
          await (this.claims as Collection<ReplayClaim>).deleteOne({ _id: id, state: "replaying" });
          this.logger.warn("dead-letter replay: the preprocessor did not answer", { id, error: (err as Error).message });
          return this.answer({ id, outcome: "failed", reason: (err as Error).message }, document);
        }
        const now = Date.now();
        if (outcome.ok) await (this.claims as Collection<ReplayClaim>).updateOne({ _id: id }, { $set: { state: "replayed", at: now } });
        else await (this.claims as Collection<ReplayClaim>).deleteOne({ _id: id, state: "replaying" });
        await (this.deadLetters as Collection<DeadLetterDocument>).updateOne({ _id: id }, { $set: attemptUpdate(outcome, now, user), $inc: { attempts: 1 } });
        return this.answer(replayResult(id, outcome), document, user);
      },

      /**
       * Inserts the replay claim: "claimed", or the outcome when another replay holds or held it.
       * While another replay of it runs, waits for its end: replayed → "already-replayed";
       * rejected or failed (claim released) → claims it and replays it itself.
       */
      async claim(id: string, user: string): Promise<"claimed" | ReplayOutcome> {
        const claims = this.claims as Collection<ReplayClaim>;
        const deadline = Date.now() + CLAIM_WAIT_MS;
        for (;;) {
          try {
            await claims.insertOne({ _id: id, state: "replaying", at: Date.now(), by: user });
            return "claimed";
          } catch (err) {
            if (!isDuplicateKey(err)) throw err;
          }
          const existing = await claims.findOne({ _id: id });
          const conflict = claimConflict(existing, Date.now());
          if (conflict === "already-replayed") {
            // The dead letter may still say otherwise if its replayer stopped between the two writes.
            await (this.deadLetters as Collection<DeadLetterDocument>).updateOne({ _id: id, status: { $ne: "replayed" } }, { $set: { status: "replayed" } });
            return conflict;
          }
          if (conflict === "stale" && existing) {
            this.logger.warn("dead-letter replay: taking over a stale claim", { id, claimedBy: existing.by, claimedAt: existing.at });
            await claims.deleteOne({ _id: id, state: "replaying", at: existing.at });
          }
          if (Date.now() > deadline) return "in-progress";
          if (conflict === "in-progress") await new Promise((resolve) => setTimeout(resolve, CLAIM_POLL_MS));
        }
      },

      /** Counts and logs a replay's result. */
      answer(result: ReplayResult, document: DeadLetterDocument, user?: string): ReplayResult {
        (this.stats as DeadLettersStats).replays[result.outcome]++;
        if (result.outcome === "replayed" || result.outcome === "rejected") {
          this.logger.info("replayed a dead letter", { id: result.id, outcome: result.outcome, device: document.device, code: document.code, user, reason: result.reason });
        }
        return result;
      },
    },

    created() {
      this.stats = { stored: 0, duplicates: 0, replays: countOutcomes([]) } satisfies DeadLettersStats;
    },

    async started() {
      const db = this.db as Db;
      this.deadLetters = db.collection<DeadLetterDocument>("deadletters");
      this.claims = db.collection<ReplayClaim>("deadletter_replays");
      await (this.deadLetters as Collection<DeadLetterDocument>).createIndex({ at: -1 });
      await this.kafkaConsume({ group: "dead-letters", topics: ["deadletter"], eachBatch: (payload: EachBatchPayload) => this.storeBatch(payload) });
    },
  };
}
