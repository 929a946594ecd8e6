// MongoDB access for alarms: current state in `alarms` (one document per condition, written with
// an optimistic revision check) and the journal in `alarm_events` (insert-only, idempotent ids).
// FerretDB serves reads by `_id` from its index and scans the collection for any other filter
// (docs/benchmarks.md), so the journal is read entry by entry by `_id`.
import { MongoBulkWriteError, MongoServerError, type Collection, type Filter } from "mongodb";
import { mapWithConcurrency } from "../shared/concurrency.ts";
import type { AlarmDocument, AlarmEvent, AlarmSeverity, AlarmState } from "../shared/types.ts";
import { eventId } from "./alarm-state-machine.ts";

export const ALARM_STATES: readonly AlarmState[] = ["active-unack", "active-acked", "rtn-unack", "cleared", "shelved", "suppressed", "out-of-service"];

/** `state` filter values: every ISA-18.2 state, plus groups operators ask for. */
export const STATE_FILTERS: Record<string, readonly AlarmState[]> = {
  ...Object.fromEntries(ALARM_STATES.map((s) => [s, [s]])),
  /** The condition is active and shown: acknowledged or not. */
  active: ["active-unack", "active-acked"],
  /** Waiting for an operator's acknowledgement. */
  unacknowledged: ["active-unack", "rtn-unack"],
  /** Hidden from the operator on purpose. */
  hidden: ["shelved", "suppressed", "out-of-service"],
};

export interface AlarmListQuery {
  state?: string;
  severity?: AlarmSeverity;
  device?: string;
  tag?: string;
  /** Activation time range (epoch ms), inclusive. */
  from?: number;
  to?: number;
}

/** A filter built only from whitelisted fields and validated values. */
export function listFilter(query: AlarmListQuery): Filter<AlarmDocument> {
  const filter: Filter<AlarmDocument> = {};
  if (query.state !== undefined) {
    const states = STATE_FILTERS[query.state] ?? [];
    filter.state = states.length === 1 ? states[0] : { $in: [...states] };
  }
  if (query.severity !== undefined) filter.severity = query.severity;
  if (query.device !== undefined) filter.device = query.device;
  if (query.tag !== undefined) filter.tag = query.tag;
  if (query.from !== undefined || query.to !== undefined) {
    filter.activatedAt = {};
    if (query.from !== undefined) filter.activatedAt.$gte = query.from;
    if (query.to !== undefined) filter.activatedAt.$lte = query.to;
  }
  return filter;
}

function isDuplicateKey(err: unknown): boolean {
  return err instanceof MongoServerError && err.code === 11000;
}

/**
 * Writes an alarm's new state if nobody changed it since `before` was read (`before` null: it
 * must not exist yet). Returns false on a conflict: the caller reads again and retries.
 */
export async function saveAlarm(alarms: Collection<AlarmDocument>, before: AlarmDocument | null, after: AlarmDocument): Promise<boolean> {
  if (before === null) {
    try {
      await alarms.insertOne(after);
      return true;
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      throw err;
    }
  }
  const result = await alarms.replaceOne({ _id: before._id, rev: before.rev }, after);
  return result.matchedCount === 1;
}

/** Journals entries; one already there (a replay, a repair) is left as it is. */
export async function journal(events: Collection<AlarmEvent>, entries: readonly AlarmEvent[]): Promise<void> {
  if (entries.length === 0) return;
  try {
    await events.insertMany(entries.map((e) => ({ ...e })), { ordered: false });
  } catch (err) {
    if (isDuplicateKey(err)) return;
    if (err instanceof MongoBulkWriteError) {
      const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
      if (errors.length > 0 && errors.every((e) => e.code === 11000)) return;
    }
    throw err;
  }
}

export interface JournalPage {
  /** Entries in time order (oldest first). */
  entries: AlarmEvent[];
  /** All entries the alarm has. */
  total: number;
}

/** The newest `limit` journal entries up to `untilSeq` (inclusive), oldest first. */
export async function readJournal(events: Collection<AlarmEvent>, alarm: AlarmDocument, limit: number, untilSeq = alarm.rev): Promise<JournalPage> {
  const last = Math.min(untilSeq, alarm.rev);
  const seqs: number[] = [];
  for (let seq = last; seq >= 1 && seqs.length < limit; seq--) seqs.push(seq);
  const found = await mapWithConcurrency(seqs, 16, (seq) => events.findOne({ _id: eventId(alarm._id, seq) }));
  // A crash between the state write and the journal write leaves the latest entries only in the document.
  const pending = new Map(alarm.lastEvents.map((e) => [e.seq, e]));
  const entries = seqs.map((seq, i) => found[i] ?? pending.get(seq)).filter((e): e is AlarmEvent => e !== undefined && e !== null);
  return { entries: entries.reverse(), total: alarm.rev };
}
