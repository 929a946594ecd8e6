// The audit chain in MongoDB (works the same on FerretDB, which has no transactions and answers
// only `_id` lookups from an index): entries are insert-only with `_id` = seq, so the unique `_id`
// index is the lock. Whoever inserts seq N first wins; a writer that gets a duplicate key lost the
// race, reloads the head and tries again. The chain stays linear however many replicas append.

import type { Collection, Db, Filter } from "mongodb";
import { ChainVerifier, findHead, GENESIS, nextEntry, type AuditEntry, type AuditInput, type ChainHead, type ChainVerdict } from "./chain.ts";

export const AUDIT_COLLECTION = "audit";
/** One document, `{_id: "head", seq}`: a recent seq, so a starting appender probes from there, and verification sees a cut-off tail. */
export const AUDIT_HEAD_COLLECTION = "audit_head";
/** Idempotency keys (`_id` = key) of entries that may be written twice, e.g. for a redelivered command ack. */
export const AUDIT_KEYS_COLLECTION = "audit_keys";

/** The head marker is moved every this many entries: an update costs 10-70 ms on FerretDB. */
const HEAD_MARKER_EVERY = 16;
/** Each lost race means another writer appended, so this only runs out under absurd contention. */
const APPEND_ATTEMPTS = 200;
/** Only the chain: `audit` may still hold records from before the chain (string ids, which a number range leaves out). */
const CHAIN_ONLY: Filter<AuditEntry> = { _id: { $gte: 0 } };

interface HeadMarker {
  _id: string;
  seq: number;
}

function isDuplicateKey(err: unknown): boolean {
  return (err as { code?: number }).code === 11000;
}

export interface AuditQuery {
  from?: number;
  to?: number;
  subject?: string;
  limit: number;
}

/** Appends to the chain; one per process (the services' mixin keeps one per service). */
export class AuditLog {
  private readonly entries: Collection<AuditEntry>;
  private readonly markers: Collection<HeadMarker>;
  private readonly keys: Collection<{ _id: string; seq: number }>;
  private head: ChainHead | undefined;
  /** Appends of this process go one after the other, so they never race each other for a seq. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly onMarkerError: (err: Error) => void;

  constructor(db: Db, onMarkerError: (err: Error) => void = () => undefined) {
    this.entries = db.collection<AuditEntry>(AUDIT_COLLECTION);
    this.markers = db.collection<HeadMarker>(AUDIT_HEAD_COLLECTION);
    this.keys = db.collection(AUDIT_KEYS_COLLECTION);
    this.onMarkerError = onMarkerError;
  }

  /**
   * Appends an entry and returns it. With a `key`, an entry already written under that key is not
   * written again (returns null): for steps a redelivery may repeat.
   */
  append(input: AuditInput, key?: string): Promise<AuditEntry | null> {
    const run = this.queue.then(() => this.appendNow(input, key));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async appendNow(input: AuditInput, key: string | undefined): Promise<AuditEntry | null> {
    if (key !== undefined && (await this.keys.findOne({ _id: key }, { projection: { _id: 1 } }))) return null;
    for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
      const head = this.head ?? (await this.loadHead(await this.markedSeq()));
      const entry = nextEntry(head, input, Date.now());
      try {
        await this.entries.insertOne(entry);
      } catch (err) {
        // Not a lost race (e.g. the connection broke, perhaps after the insert): read the head again next time.
        if (!isDuplicateKey(err)) {
          this.head = undefined;
          throw err;
        }
        this.head = await this.loadHead(head.seq);
        continue;
      }
      this.head = { seq: entry.seq, hash: entry.hash };
      if (key !== undefined) await this.keys.insertOne({ _id: key, seq: entry.seq }).catch((err: unknown) => { if (!isDuplicateKey(err)) throw err; });
      if (entry.seq % HEAD_MARKER_EVERY === 0) {
        // Only a hint: the chain is complete without it.
        await this.markers.updateOne({ _id: "head" }, { $max: { seq: entry.seq } }, { upsert: true }).catch((err: Error) => this.onMarkerError(err));
      }
      return entry;
    }
    throw new Error(`audit entry not appended: lost the race for the next seq ${APPEND_ATTEMPTS} times`);
  }

  private async markedSeq(): Promise<number> {
    return (await this.markers.findOne({ _id: "head" }))?.seq ?? 0;
  }

  private async loadHead(hint: number): Promise<ChainHead> {
    const seq = await findHead(async (s) => (await this.entries.findOne({ _id: s }, { projection: { _id: 1 } })) !== null, hint);
    if (seq === 0) return GENESIS;
    const entry = await this.entries.findOne({ _id: seq }, { projection: { hash: 1 } });
    if (!entry) throw new Error(`audit entry ${seq} vanished while the head was read`);
    return { seq, hash: entry.hash };
  }
}

/** Reads the whole chain in seq order and checks every link; stops at the first broken one. */
export async function verifyStoredChain(db: Db): Promise<ChainVerdict> {
  const verifier = new ChainVerifier();
  const cursor = db.collection<AuditEntry>(AUDIT_COLLECTION).find(CHAIN_ONLY).sort({ _id: 1 });
  try {
    for await (const entry of cursor) if (!verifier.push(entry)) break;
  } finally {
    await cursor.close();
  }
  const marker = await db.collection<HeadMarker>(AUDIT_HEAD_COLLECTION).findOne({ _id: "head" });
  return verifier.result(marker?.seq ?? 0);
}

/** Entries newest first. Values reach the filter only as validated numbers and strings. */
export async function listAuditEntries(db: Db, query: AuditQuery): Promise<Omit<AuditEntry, "_id">[]> {
  const filter: Filter<AuditEntry> = { ...CHAIN_ONLY };
  if (query.from !== undefined || query.to !== undefined) {
    filter.at = { ...(query.from !== undefined && { $gte: query.from }), ...(query.to !== undefined && { $lte: query.to }) };
  }
  if (query.subject !== undefined) filter.subject = query.subject;
  return db.collection<AuditEntry>(AUDIT_COLLECTION).find(filter, { projection: { _id: 0 } }).sort({ _id: -1 }).limit(query.limit).toArray();
}
