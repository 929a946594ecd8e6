import type { Context, ServiceSchema } from "moleculer";
import { Errors } from "moleculer";
import type { EachBatchPayload } from "kafkajs";
import type { Collection, Db } from "mongodb";
import { auditMixin } from "../mixins/audit.mixin.ts";
import { healthMixin } from "../mixins/health.mixin.ts";
import { kafkaMixin } from "../mixins/kafka.mixin.ts";
import { mongoMixin } from "../mixins/mongo.mixin.ts";
import { DEFAULT_SEVERITY } from "../src/alarms/alarm-definitions.ts";
import { computeKpis, DEFAULT_KPI_OPTIONS, type AlarmKpis, type KpiEvent } from "../src/alarms/alarm-kpis.ts";
import { applyInput, DEFAULT_MACHINE_OPTIONS, MAX_SHELVE_MS, newAlarm, SYSTEM_USER, type AlarmInput, type AlarmMachineOptions, type StepResult } from "../src/alarms/alarm-state-machine.ts";
import { journal, listFilter, readJournal, saveAlarm, STATE_FILTERS, type AlarmListQuery, type JournalPage } from "../src/alarms/alarm-store.ts";
import { mapWithConcurrency } from "../src/shared/concurrency.ts";
import type { PlantwireConfig } from "../src/shared/config.ts";
import { ValidationError } from "../src/shared/errors.ts";
import { parseTimeParam } from "../src/shared/time.ts";
import type { AlarmDocument, AlarmEvent, AlarmLifecycleRecord, AlarmTopicRecord, AlarmTransition } from "../src/shared/types.ts";

export interface ListAlarmsParams extends Omit<AlarmListQuery, "from" | "to"> {
  from?: string | number;
  to?: string | number;
  limit?: number;
  offset?: number;
}

export interface AlarmWithJournal {
  alarm: AlarmDocument;
  journal: JournalPage;
}

export interface BulkAckResult {
  acknowledged: string[];
  failed: { id: string; status: number; reason: string }[];
}

export interface KpiParams {
  from?: string | number;
  to?: string | number;
  standingAfterMs?: number;
  top?: number;
}

interface AlarmsSettings {
  /** How often expired shelving and ended chattering are looked for. */
  sweepIntervalMs: number;
  machine: AlarmMachineOptions;
}

interface OperatorMeta {
  user?: string | { name?: string; username?: string; id?: string };
}

const ALARM_ID = { type: "string", pattern: /^[A-Za-z0-9_.*:-]{1,200}$/ } as const;
const LEVEL = { type: "string", pattern: /^[A-Za-z0-9_.-]{1,64}$/ } as const;
const TIME = { type: "multi", rules: [{ type: "number", integer: true }, { type: "string", max: 40 }], optional: true } as const;
const COMMENT = { type: "string", trim: true, min: 1, max: 1000 } as const;
const OPTIONAL_COMMENT = { ...COMMENT, optional: true } as const;
const MAX_KPI_SPAN_MS = 31 * 24 * 3_600_000;
const SAVE_ATTEMPTS = 10;

/** Who acts: the authenticated user once auth exists (a later issue), "anonymous" until then. */
function operatorOf(ctx: Context<unknown, OperatorMeta>): string {
  const user = ctx.meta.user;
  if (typeof user === "string" && user !== "") return user;
  if (user && typeof user === "object") return user.name ?? user.username ?? user.id ?? "anonymous";
  return "anonymous";
}

function badParameter(field: string, message: string): Errors.MoleculerClientError {
  return new Errors.MoleculerClientError(message, 400, "VALIDATION_ERROR", [{ field, message }]);
}

function timeParam(value: string | number | undefined, field: string, fallback: number): number {
  try {
    return parseTimeParam(value, field, fallback);
  } catch (err) {
    if (err instanceof ValidationError) throw badParameter(field, err.message);
    throw err;
  }
}

function notFound(id: string): Errors.MoleculerClientError {
  return new Errors.MoleculerClientError(`alarm "${id}" does not exist`, 404, "ALARM_NOT_FOUND", { id });
}

/** A condition transition with the fields the lifecycle needs (lifecycle records are this service's own output). */
function isTransition(record: AlarmTopicRecord): record is AlarmTransition {
  if (record.type !== undefined && record.type !== "condition") return false;
  const t = record as Partial<AlarmTransition>;
  return typeof t.alarmId === "string" && typeof t.device === "string" && typeof t.tag === "string" && typeof t.kind === "string" && typeof t.ts === "number" && (t.state === "active" || t.state === "cleared");
}

/**
 * The ISA-18.2 alarm lifecycle over MongoDB: applies the detector's condition transitions from
 * `scada.alarms.v1` and the operators' actions to each alarm's state (`alarms`), journals every
 * change (`alarm_events`) and republishes it on `scada.alarms.v1` as a lifecycle record.
 */
export default function createAlarmsService(config: PlantwireConfig): ServiceSchema<AlarmsSettings & { rest: string }> {
  return {
    name: "alarms",
    mixins: [kafkaMixin(config), mongoMixin(config), auditMixin(), healthMixin()],

    settings: {
      rest: "/",
      sweepIntervalMs: 1_000,
      machine: DEFAULT_MACHINE_OPTIONS,
    },

    actions: {
      list: {
        rest: "GET /alarms",
        role: "viewer",
        openapi: { summary: "Alarms, newest first, filtered by state, severity, device, tag and time" },
        params: {
          state: { type: "enum", values: Object.keys(STATE_FILTERS), optional: true },
          severity: { type: "enum", values: ["critical", "high", "medium", "low"], optional: true },
          device: { ...LEVEL, optional: true },
          tag: { type: "string", pattern: /^[A-Za-z0-9_.*-]{1,64}$/, optional: true },
          from: TIME,
          to: TIME,
          limit: { type: "number", integer: true, min: 1, max: 1000, optional: true, convert: true },
          offset: { type: "number", integer: true, min: 0, optional: true, convert: true },
        },
        async handler(ctx: Context<ListAlarmsParams>): Promise<{ total: number; limit: number; offset: number; alarms: AlarmDocument[] }> {
          const { limit = 100, offset = 0, from, to, ...rest } = ctx.params;
          const query: AlarmListQuery = { ...rest };
          if (from !== undefined) query.from = timeParam(from, "from", 0);
          if (to !== undefined) query.to = timeParam(to, "to", Date.now());
          if (query.from !== undefined && query.to !== undefined && query.to < query.from) throw badParameter("to", "to must not be before from");
          const filter = listFilter(query);
          const collection = this.alarms as Collection<AlarmDocument>;
          const [total, alarms] = await Promise.all([
            collection.countDocuments(filter),
            collection.find(filter).sort({ activatedAt: -1, _id: 1 }).skip(offset).limit(limit).toArray(),
          ]);
          return { total, limit, offset, alarms };
        },
      },

      kpis: {
        rest: "GET /alarms/kpis",
        role: "viewer",
        openapi: { summary: "Alarm KPIs: rate per 10 minutes, top bad actors, standing alarms, mean time to acknowledge" },
        params: {
          from: TIME,
          to: TIME,
          standingAfterMs: { type: "number", integer: true, min: 0, optional: true, convert: true },
          top: { type: "number", integer: true, min: 1, max: 100, optional: true, convert: true },
        },
        async handler(ctx: Context<KpiParams>): Promise<AlarmKpis> {
          const now = Date.now();
          const to = timeParam(ctx.params.to, "to", now);
          const from = timeParam(ctx.params.from, "from", to - 24 * 3_600_000);
          if (to <= from) throw badParameter("to", "to must be after from");
          if (to - from > MAX_KPI_SPAN_MS) throw badParameter("from", "the period may span at most 31 days");
          // A scan of the journal over the period: on FerretDB a full scan, so this is for dashboards, not hot paths.
          const [events, alarms] = await Promise.all([
            (this.alarmEvents as Collection<AlarmEvent>)
              .find({ at: { $gte: from, $lt: to } }, { projection: { _id: 0, alarmId: 1, device: 1, tag: 1, kind: 1, at: 1, action: 1, from: 1, to: 1, ackDelayMs: 1 } })
              .toArray() as Promise<KpiEvent[]>,
            (this.alarms as Collection<AlarmDocument>).find({}).toArray(),
          ]);
          return computeKpis(events, alarms, {
            from,
            to,
            now,
            standingAfterMs: ctx.params.standingAfterMs ?? DEFAULT_KPI_OPTIONS.standingAfterMs,
            topN: ctx.params.top ?? DEFAULT_KPI_OPTIONS.topN,
            floodPerTenMinutes: DEFAULT_KPI_OPTIONS.floodPerTenMinutes,
          });
        },
      },

      get: {
        rest: "GET /alarms/:id",
        role: "viewer",
        openapi: { summary: "One alarm with its journal (who, when, why)" },
        params: {
          id: ALARM_ID,
          journalLimit: { type: "number", integer: true, min: 1, max: 1000, optional: true, convert: true },
          journalUntil: { type: "number", integer: true, min: 1, optional: true, convert: true },
        },
        async handler(ctx: Context<{ id: string; journalLimit?: number; journalUntil?: number }>): Promise<AlarmWithJournal> {
          const alarm = await (this.alarms as Collection<AlarmDocument>).findOne({ _id: ctx.params.id });
          if (!alarm) throw notFound(ctx.params.id);
          const page = await readJournal(this.alarmEvents as Collection<AlarmEvent>, alarm, ctx.params.journalLimit ?? 100, ctx.params.journalUntil);
          return { alarm, journal: page };
        },
      },

      ack: {
        rest: "POST /alarms/:id/ack",
        role: "operator",
        openapi: { summary: "Acknowledge an alarm" },
        params: { id: ALARM_ID, comment: OPTIONAL_COMMENT },
        handler(ctx: Context<{ id: string; comment?: string }, OperatorMeta>): Promise<AlarmDocument> {
          return this.operatorAction(ctx.params.id, { type: "ack", comment: ctx.params.comment ?? null }, operatorOf(ctx));
        },
      },

      ackMany: {
        rest: "POST /alarms/ack",
        role: "operator",
        openapi: { summary: "Acknowledge several alarms" },
        params: {
          ids: { type: "array", items: ALARM_ID, min: 1, max: 500, unique: true },
          comment: OPTIONAL_COMMENT,
        },
        async handler(ctx: Context<{ ids: string[]; comment?: string }, OperatorMeta>): Promise<BulkAckResult> {
          const user = operatorOf(ctx);
          const result: BulkAckResult = { acknowledged: [], failed: [] };
          const outcomes = await mapWithConcurrency(ctx.params.ids, 8, async (id) => {
            try {
              await this.operatorAction(id, { type: "ack", comment: ctx.params.comment ?? null }, user);
              return { id, ok: true as const };
            } catch (err) {
              const e = err as { code?: number; message: string };
              if (e.code !== 404 && e.code !== 409) throw err;
              return { id, ok: false as const, status: e.code, reason: e.message };
            }
          });
          for (const o of outcomes) {
            if (o.ok) result.acknowledged.push(o.id);
            else result.failed.push({ id: o.id, status: o.status, reason: o.reason });
          }
          return result;
        },
      },

      shelve: {
        rest: "POST /alarms/:id/shelve",
        role: "operator",
        openapi: { summary: "Shelve an alarm for a while" },
        params: { id: ALARM_ID, durationMs: { type: "number", integer: true, min: 1, max: MAX_SHELVE_MS, convert: true }, comment: COMMENT },
        handler(ctx: Context<{ id: string; durationMs: number; comment: string }, OperatorMeta>): Promise<AlarmDocument> {
          return this.operatorAction(ctx.params.id, { type: "shelve", durationMs: ctx.params.durationMs, comment: ctx.params.comment }, operatorOf(ctx));
        },
      },

      unshelve: {
        rest: "POST /alarms/:id/unshelve",
        role: "operator",
        openapi: { summary: "Unshelve an alarm" },
        params: { id: ALARM_ID, comment: OPTIONAL_COMMENT },
        handler(ctx: Context<{ id: string; comment?: string }, OperatorMeta>): Promise<AlarmDocument> {
          return this.operatorAction(ctx.params.id, { type: "unshelve", comment: ctx.params.comment ?? null }, operatorOf(ctx));
        },
      },

      comment: {
        rest: "POST /alarms/:id/comments",
        role: "operator",
        openapi: { summary: "Add a comment to an alarm's journal" },
        params: { id: ALARM_ID, comment: COMMENT },
        handler(ctx: Context<{ id: string; comment: string }, OperatorMeta>): Promise<AlarmDocument> {
          return this.operatorAction(ctx.params.id, { type: "comment", comment: ctx.params.comment }, operatorOf(ctx));
        },
      },

      removeFromService: {
        rest: "POST /alarms/:id/remove-from-service",
        role: "engineer",
        openapi: { summary: "Take an alarm out of service" },
        params: { id: ALARM_ID, comment: OPTIONAL_COMMENT },
        handler(ctx: Context<{ id: string; comment?: string }, OperatorMeta>): Promise<AlarmDocument> {
          return this.operatorAction(ctx.params.id, { type: "remove-from-service", comment: ctx.params.comment ?? null }, operatorOf(ctx));
        },
      },

      returnToService: {
        rest: "POST /alarms/:id/return-to-service",
        role: "engineer",
        openapi: { summary: "Return an alarm to service" },
        params: { id: ALARM_ID, comment: OPTIONAL_COMMENT },
        handler(ctx: Context<{ id: string; comment?: string }, OperatorMeta>): Promise<AlarmDocument> {
          return this.operatorAction(ctx.params.id, { type: "return-to-service", comment: ctx.params.comment ?? null }, operatorOf(ctx));
        },
      },

      /** Alarms whose condition is active, for the detector to restore its state after a restart. */
      active: {
        async handler(): Promise<AlarmDocument[]> {
          return (this.alarms as Collection<AlarmDocument>).find({ active: true }).toArray();
        },
      },
    },

    methods: {
      /**
       * Reads an alarm, lets `decide` compute its next state, and writes it if nobody changed the
       * alarm meanwhile (else reads again). Then journals the entries and republishes them.
       */
      async transact(alarmId: string, decide: (alarm: AlarmDocument | null) => StepResult | null): Promise<{ alarm: AlarmDocument | null; events: AlarmEvent[] }> {
        const alarms = this.alarms as Collection<AlarmDocument>;
        for (let attempt = 1; ; attempt++) {
          const before = await alarms.findOne({ _id: alarmId });
          const result = decide(before);
          if (result === null) return { alarm: before, events: [] };
          if (!result.ok) throw new Errors.MoleculerClientError(result.reason, 409, "INVALID_TRANSITION", { id: alarmId, state: before?.state });
          if (result.events.length === 0) return { alarm: before, events: [] };
          if (await saveAlarm(alarms, before, result.alarm)) {
            // The previous change's entries go along: if a crash ever cut them off, this repairs the journal.
            await journal(this.alarmEvents as Collection<AlarmEvent>, [...(before?.lastEvents ?? []), ...result.events]);
            await this.publishLifecycle(result.alarm, result.events);
            return { alarm: result.alarm, events: result.events };
          }
          // Contention, not a fault: an operator may try again (the Kafka consumer retries the batch).
          if (attempt >= SAVE_ATTEMPTS) throw new Errors.MoleculerClientError(`alarm "${alarmId}" is being changed by someone else; try again`, 409, "CONFLICT", { id: alarmId });
        }
      },

      async operatorAction(alarmId: string, input: AlarmInput, user: string): Promise<AlarmDocument> {
        const machine = (this.settings as AlarmsSettings).machine;
        const { alarm, events } = await this.transact(alarmId, (current: AlarmDocument | null) => {
          if (!current) throw notFound(alarmId);
          return applyInput(current, input, { user, at: Date.now() }, machine);
        });
        // Only what changed something: an action that was a no-op wrote nothing.
        if (events.length > 0) {
          const { type, ...particulars } = input;
          await this.appendAudit({ action: `alarm.${type}`, subject: "alarm", subjectId: alarmId, user, details: { ...particulars, state: (alarm as AlarmDocument).state } });
        }
        return alarm as AlarmDocument;
      },

      async publishLifecycle(alarm: AlarmDocument, events: AlarmEvent[]): Promise<void> {
        const summary = { _id: alarm._id, state: alarm.state, active: alarm.active, acked: alarm.acked, severity: alarm.severity };
        await this.kafkaProduce(
          "alarms",
          events.map((event) => ({ key: alarm.device, value: JSON.stringify({ type: "lifecycle", event, alarm: summary } satisfies AlarmLifecycleRecord) })),
        );
      },

      async storeTransitions({ batch }: EachBatchPayload): Promise<void> {
        const byAlarm = new Map<string, { transition: AlarmTransition; offset: string }[]>();
        for (const message of batch.messages) {
          let record: AlarmTopicRecord;
          try {
            record = JSON.parse(message.value?.toString() ?? "") as AlarmTopicRecord;
          } catch (err) {
            this.logger.error("unreadable alarm record skipped", { partition: batch.partition, offset: message.offset, error: (err as Error).message });
            continue;
          }
          if (!record || typeof record !== "object" || !isTransition(record)) continue;
          const items = byAlarm.get(record.alarmId) ?? [];
          items.push({ transition: record, offset: message.offset });
          byAlarm.set(record.alarmId, items);
        }
        // Alarms are independent; each one's transitions apply in offset order.
        await mapWithConcurrency([...byAlarm], 8, ([alarmId, items]) => this.applyTransitions(alarmId, items, batch.partition));
      },

      async applyTransitions(alarmId: string, items: { transition: AlarmTransition; offset: string }[], partition: number): Promise<void> {
        const machine = (this.settings as AlarmsSettings).machine;
        let replayedLatest: AlarmDocument | null = null;
        const { events } = await this.transact(alarmId, (before: AlarmDocument | null) => {
          replayedLatest = null;
          let alarm = before;
          const events: AlarmEvent[] = [];
          for (const { transition: t, offset } of items) {
            if (alarm?.source && alarm.source.partition === partition && BigInt(offset) <= BigInt(alarm.source.offset)) {
              // Applied before (Kafka redelivered it after a restart): not again, and not journaled twice.
              if (before && offset === before.source?.offset) replayedLatest = before;
              continue;
            }
            if (!alarm) {
              // A condition that returns (or changes suppression) before it was ever raised leaves no alarm.
              if (t.state !== "active") continue;
              alarm = newAlarm({ alarmId, device: t.device, tag: t.tag, kind: t.kind, severity: t.severity ?? DEFAULT_SEVERITY[t.kind] ?? "medium", limit: t.limit }, t.ts);
            }
            const input: AlarmInput = { type: "condition", active: t.state === "active", suppressed: t.suppressed ?? false, value: t.value, limit: t.limit, message: t.message ?? null, severity: t.severity };
            const step = applyInput(alarm, input, { user: SYSTEM_USER, at: t.ts }, machine);
            if (!step.ok || step.events.length === 0) continue;
            alarm = { ...step.alarm, source: { partition, offset } };
            events.push(...step.events);
          }
          if (!alarm || events.length === 0) return null;
          return { ok: true, alarm: { ...alarm, lastEvents: events }, events };
        });
        const replayed = replayedLatest as AlarmDocument | null;
        if (events.length === 0 && replayed !== null) {
          // The record that made the latest change came again: the process may have stopped between
          // writing the state and the journal, so make sure both the journal and the topic have it.
          await journal(this.alarmEvents as Collection<AlarmEvent>, replayed.lastEvents);
          await this.publishLifecycle(replayed, replayed.lastEvents);
        }
      },

      /** Applies the timers: expired shelving, chattering that ended. */
      async sweep(): Promise<void> {
        if (this.sweeping) return;
        this.sweeping = true;
        try {
          const now = Date.now();
          const due = await (this.alarms as Collection<AlarmDocument>)
            .find({ $or: [{ shelvedUntil: { $lte: now } }, { chattering: true }] }, { projection: { _id: 1 } })
            .toArray();
          const machine = (this.settings as AlarmsSettings).machine;
          await mapWithConcurrency(due, 4, (doc) =>
            this.transact(doc._id, (current: AlarmDocument | null) => (current ? applyInput(current, { type: "tick" }, { user: SYSTEM_USER, at: Date.now() }, machine) : null)),
          );
        } catch (err) {
          this.logger.warn("alarm timer sweep failed; retrying on the next one", { error: (err as Error).message });
        } finally {
          this.sweeping = false;
        }
      },
    },

    async started() {
      this.alarms = (this.db as Db).collection<AlarmDocument>("alarms");
      this.alarmEvents = (this.db as Db).collection<AlarmEvent>("alarm_events");
      await this.alarms.createIndex({ state: 1, activatedAt: -1 });
      await this.alarms.createIndex({ device: 1, activatedAt: -1 });
      await this.alarmEvents.createIndex({ at: 1 });
      await this.kafkaConsume({ group: "alarms", topics: ["alarms"], eachBatch: (payload: EachBatchPayload) => this.storeTransitions(payload) });
      this.sweeping = false;
      this.sweepTimer = setInterval(() => void this.sweep(), (this.settings as AlarmsSettings).sweepIntervalMs);
    },

    async stopped() {
      clearInterval(this.sweepTimer);
    },
  };
}
