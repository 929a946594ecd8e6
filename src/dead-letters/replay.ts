// Replay decisions: which dead letters may go through the preprocessor again, who gets to replay
// one when several operators try at once, and what a replay's outcome writes back.
import type { DeadLetterCode, IngestOutcome } from "../shared/types.ts";
import type { DeadLetterDocument } from "./records.ts";

/**
 * `replayed`: valid now, forwarded to Kafka (telemetry or a device state). `rejected`: still
 * invalid, with the new reason; the dead letter stays and may be replayed again. `not-replayable`:
 * an unreadable Kafka record (not MQTT input), or a payload the producer cut short. `already-replayed`: someone replayed it before.
 * `in-progress`: another replay of it ran for longer than a replay waits for it. `failed`: the preprocessor did not answer;
 * nothing is known to have been forwarded, and it may be replayed again.
 */
export type ReplayOutcome = "replayed" | "rejected" | "not-replayable" | "already-replayed" | "in-progress" | "failed";

export interface ReplayResult {
  id: string;
  outcome: ReplayOutcome;
  code?: DeadLetterCode;
  reason?: string;
}

/**
 * The replay lock of one dead letter in `deadletter_replays`, `_id` = the dead letter's id. Its
 * insert is the claim (a unique key, atomic on MongoDB and FerretDB alike); a replayed claim
 * stays forever, so a dead letter is forwarded once however often and concurrently it is replayed.
 */
export interface ReplayClaim {
  _id: string;
  state: "replaying" | "replayed";
  at: number;
  by: string;
}

/** Most dead letters one bulk replay handles; the rest wait for the next call. */
export const MAX_BULK_REPLAY = 1000;
/** A claim still `replaying` after this long belongs to a replay that died: it may be taken over. */
export const CLAIM_STALE_MS = 60_000;

/** The outcome known without claiming, or null when the dead letter should be replayed. */
export function precheck(document: Pick<DeadLetterDocument, "origin" | "status" | "truncatedFrom">): ReplayOutcome | null {
  if (document.origin !== "mqtt" || document.truncatedFrom !== null) return "not-replayable";
  if (document.status === "replayed") return "already-replayed";
  return null;
}

/**
 * What to do when the claim exists already: answer, take over a stale claim (`stale`: delete it
 * and claim again), or claim again because the other replay released it meanwhile (`retry`).
 */
export function claimConflict(existing: ReplayClaim | null, now: number, staleMs = CLAIM_STALE_MS): "already-replayed" | "in-progress" | "stale" | "retry" {
  if (existing === null) return "retry";
  if (existing.state === "replayed") return "already-replayed";
  return now - existing.at > staleMs ? "stale" : "in-progress";
}

/** The result of a replay that ran, from the preprocessor's answer. */
export function replayResult(id: string, outcome: IngestOutcome): ReplayResult {
  return outcome.ok ? { id, outcome: "replayed" } : { id, outcome: "rejected", code: outcome.code, reason: outcome.reason };
}

/** The fields a replay that ran sets on the dead letter (attempts is incremented beside them). */
export function attemptUpdate(outcome: IngestOutcome, now: number, user: string): Partial<DeadLetterDocument> {
  if (outcome.ok) return { status: "replayed", lastAttemptAt: now, lastCode: null, lastReason: null, replayedAt: now, replayedBy: user };
  return { status: "rejected", lastAttemptAt: now, lastCode: outcome.code, lastReason: outcome.reason };
}

export function countOutcomes(results: readonly ReplayResult[]): Record<ReplayOutcome, number> {
  const counts: Record<ReplayOutcome, number> = { replayed: 0, rejected: 0, "not-replayable": 0, "already-replayed": 0, "in-progress": 0, failed: 0 };
  for (const r of results) counts[r.outcome]++;
  return counts;
}
