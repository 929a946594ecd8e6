// The audit trail as a hash chain: every entry carries a gap-free sequence number, the hash of the
// entry before it and its own hash over a canonical serialization, so an entry that is edited,
// deleted, inserted or moved breaks the chain at a seq that verification names. No I/O here:
// src/audit/audit-store.ts keeps the chain in MongoDB.

import { createHash } from "node:crypto";

/** What a service records: who did what to which thing, and the particulars. */
export interface AuditInput {
  /** `<subject>.<what happened>`: `command.sent`, `device.updated`, `alarm.ack`, ... */
  action: string;
  /** The kind of thing acted on: `command`, `device`, `alarm`, later `user`, `session`. */
  subject: string;
  subjectId: string;
  /** Who: the authenticated user's or API key's name (ctx.meta.user), "anonymous" with API_AUTH=off or for internal calls. */
  user: string;
  /** JSON-compatible particulars (undefined fields are dropped). */
  details?: Record<string, unknown>;
  /** When it happened (epoch ms); the time of appending when left out. */
  at?: number;
}

/** One entry of the `audit` collection: `_id` is its seq, so two writers can never take the same place. */
export interface AuditEntry {
  _id: number;
  seq: number;
  at: number;
  action: string;
  subject: string;
  subjectId: string;
  user: string;
  details: Record<string, unknown>;
  /** The hash of entry seq - 1 (GENESIS_HASH for seq 1). */
  prevHash: string;
  /** SHA-256 hex of prevHash + the canonical entry. */
  hash: string;
}

export interface ChainHead {
  /** 0 for an empty chain. */
  seq: number;
  hash: string;
}

export const GENESIS_HASH = "0".repeat(64);
export const GENESIS: ChainHead = { seq: 0, hash: GENESIS_HASH };

/** JSON with object keys sorted at every level: the same value always gives the same text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? "null" : canonicalJson(v))).join(",")}]`;
  const keys = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(",")}}`;
}

/** The hash an entry must carry: over every field but `_id` and `hash`. */
export function entryHash(entry: Omit<AuditEntry, "_id" | "hash">): string {
  const { seq, at, action, subject, subjectId, user, details, prevHash } = entry;
  return createHash("sha256")
    .update(prevHash + canonicalJson({ seq, at, action, subject, subjectId, user, details, prevHash }))
    .digest("hex");
}

/** The entry that follows `head`. Details go through JSON, so what MongoDB stores is exactly what was hashed. */
export function nextEntry(head: ChainHead, input: AuditInput, nowMs: number): AuditEntry {
  const seq = head.seq + 1;
  const details = JSON.parse(canonicalJson(input.details ?? {})) as Record<string, unknown>;
  const body = { seq, at: input.at ?? nowMs, action: input.action, subject: input.subject, subjectId: input.subjectId, user: input.user, details, prevHash: head.hash };
  return { _id: seq, ...body, hash: entryHash(body) };
}

export interface ChainVerdict {
  ok: boolean;
  /** Entries checked (up to and including the first broken one). */
  entries: number;
  /** The last entry that verified: export or anchor it to detect a rewrite of the whole chain. */
  head: ChainHead;
  /** The seq where the chain first breaks. */
  brokenAt?: number;
  reason?: string;
}

function isEntry(value: unknown): value is AuditEntry {
  const e = value as Partial<AuditEntry> | null;
  return (
    typeof e === "object" && e !== null &&
    Number.isSafeInteger(e.seq) && typeof e.at === "number" && typeof e.action === "string" && typeof e.subject === "string" &&
    typeof e.subjectId === "string" && typeof e.user === "string" && typeof e.details === "object" && e.details !== null &&
    typeof e.prevHash === "string" && typeof e.hash === "string"
  );
}

/** Checks entries one at a time in stored order (ascending `_id`) and keeps the first broken link. */
export class ChainVerifier {
  private head: ChainHead = GENESIS;
  private count = 0;
  private broken: { seq: number; reason: string } | undefined;

  /** False once the chain is broken: later entries cannot change the verdict. */
  push(value: unknown): boolean {
    if (this.broken) return false;
    this.count++;
    const expected = this.head.seq + 1;
    this.broken = this.check(value, expected);
    if (this.broken) return false;
    this.head = { seq: expected, hash: (value as AuditEntry).hash };
    return true;
  }

  /** `writtenUpTo`: a seq known to have been written (the head marker); a chain ending before it lost its tail. */
  result(writtenUpTo = 0): ChainVerdict {
    if (!this.broken && writtenUpTo > this.head.seq) {
      this.broken = { seq: this.head.seq + 1, reason: `the chain ends at seq ${this.head.seq}, but seq ${writtenUpTo} was written: entries were deleted from its end` };
    }
    const verdict: ChainVerdict = { ok: !this.broken, entries: this.count, head: { ...this.head } };
    if (this.broken) {
      verdict.brokenAt = this.broken.seq;
      verdict.reason = this.broken.reason;
    }
    return verdict;
  }

  private check(value: unknown, expected: number): { seq: number; reason: string } | undefined {
    if (!isEntry(value)) return { seq: expected, reason: `the entry in place of seq ${expected} is malformed` };
    const e = value;
    if (e._id !== undefined && e._id !== e.seq) return { seq: expected, reason: `the entry stored as _id ${String(e._id)} says seq ${e.seq}: entries were moved or edited` };
    if (e.seq > expected) return { seq: expected, reason: `seq ${expected} is missing (deleted) before seq ${e.seq}` };
    if (e.seq < expected) return { seq: expected, reason: `seq ${e.seq} comes again after seq ${expected - 1}: entries were reordered or inserted` };
    if (e.prevHash !== this.head.hash) {
      return { seq: expected, reason: `seq ${expected} does not link to seq ${expected - 1} (prevHash differs): seq ${expected - 1} was rewritten, or entries were inserted or replaced` };
    }
    if (entryHash(e) !== e.hash) return { seq: expected, reason: `seq ${expected} was changed after it was written (its hash does not match its content)` };
    return undefined;
  }
}

export function verifyChain(entries: Iterable<unknown>, writtenUpTo = 0): ChainVerdict {
  const verifier = new ChainVerifier();
  for (const entry of entries) if (!verifier.push(entry)) break;
  return verifier.result(writtenUpTo);
}

/**
 * The highest seq present in a gap-free chain, from `exists` probes (each an `_id` lookup, the only
 * fast query on FerretDB): doubles the step from `hint` until a seq is missing, then bisects. A
 * hint at or below the head costs O(log distance) probes; one beyond it (a stale marker) restarts
 * from 0.
 */
export async function findHead(exists: (seq: number) => Promise<boolean>, hint = 0): Promise<number> {
  let low = hint > 0 && (await exists(hint)) ? hint : 0;
  let step = 1;
  let high = low + step;
  while (await exists(high)) {
    low = high;
    step *= 2;
    high = low + step;
  }
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2);
    if (await exists(mid)) low = mid;
    else high = mid;
  }
  return low;
}
