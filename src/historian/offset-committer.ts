import type { KafkaPosition } from "./raw-window-buffer.ts";

function key(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/**
 * Commits Kafka positions in the background, one commit at a time, only forward, and coalescing:
 * a request made while a commit is in flight is merged into the next one. Batch processing never
 * waits for Kafka here, so a commit that blocks during a rebalance (kafkajs retries it) cannot
 * hold up the batch whose completion lets the rebalance finish. A failed commit is retried with
 * the next request; nothing is lost meanwhile, records are just read again after a restart.
 */
export class OffsetCommitter {
  private readonly commit: (positions: KafkaPosition[]) => Promise<void>;
  private readonly onError: (err: Error) => void;
  private readonly committed = new Map<string, bigint>();
  private readonly wanted = new Map<string, KafkaPosition>();
  private inFlight: Promise<void> | null = null;
  private lastFailed = false;

  constructor(commit: (positions: KafkaPosition[]) => Promise<void>, onError: (err: Error) => void) {
    this.commit = commit;
    this.onError = onError;
  }

  /** Positions that may be committed; only those ahead of what was committed are sent. */
  request(positions: readonly KafkaPosition[]): void {
    for (const p of positions) {
      const k = key(p.topic, p.partition);
      const ahead = this.wanted.get(k) ?? (this.committed.has(k) ? { ...p, offset: String(this.committed.get(k)) } : undefined);
      if (!ahead || BigInt(p.offset) > BigInt(ahead.offset)) this.wanted.set(k, { ...p });
    }
    this.kick();
  }

  /** Forgets partitions this member no longer owns (a later owner's commits are not ours to compare with). */
  retainPartitions(owns: (topic: string, partition: number) => boolean): void {
    for (const map of [this.committed, this.wanted] as Map<string, unknown>[]) {
      for (const k of [...map.keys()]) {
        const [topic, partition] = k.split("\u0000");
        if (!owns(topic, Number(partition))) map.delete(k);
      }
    }
  }

  /** Waits until what was requested is committed (or failed), at most timeoutMs. Returns whether it finished. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight || this.outstanding().length > 0) {
      if (!this.inFlight) this.kick();
      const left = deadline - Date.now();
      if (left <= 0 || !this.inFlight) return false;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([this.inFlight.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), left)))]);
      clearTimeout(timer);
      if (timedOut) return false;
      if (this.lastFailed) return false;
    }
    return true;
  }

  /** The committed position per partition (next offset to read), as far as this member knows. */
  committedOffsets(): Map<string, string> {
    return new Map([...this.committed].map(([k, v]) => [k.replace("\u0000", "/"), String(v)]));
  }

  private outstanding(): KafkaPosition[] {
    return [...this.wanted.values()];
  }

  private kick(): void {
    if (this.inFlight) return;
    const positions = this.outstanding();
    if (positions.length === 0) return;
    this.wanted.clear();
    this.inFlight = this.commit(positions)
      .then(() => {
        this.lastFailed = false;
        for (const p of positions) {
          const k = key(p.topic, p.partition);
          const offset = BigInt(p.offset);
          if ((this.committed.get(k) ?? -1n) < offset) this.committed.set(k, offset);
          const wanted = this.wanted.get(k);
          if (wanted && BigInt(wanted.offset) <= offset) this.wanted.delete(k);
        }
      })
      .catch((err: Error) => {
        this.lastFailed = true;
        // Put them back unless a newer request superseded them; they go with the next request.
        for (const p of positions) {
          const k = key(p.topic, p.partition);
          const wanted = this.wanted.get(k);
          if (!wanted || BigInt(wanted.offset) < BigInt(p.offset)) this.wanted.set(k, p);
        }
        this.onError(err);
      })
      .finally(() => {
        this.inFlight = null;
        if (!this.lastFailed) this.kick();
      });
  }
}
