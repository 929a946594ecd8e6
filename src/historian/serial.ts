/**
 * Runs async tasks one after the other, in the order they were queued: the historian's batches,
 * clock-driven seals, rebalances and the final flush all change the same window buffer and must
 * not interleave across their awaits. A failed task rejects its own promise only.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;

  /** Tasks queued or running. */
  get size(): number {
    return this.queued;
  }

  run<T>(task: () => Promise<T>): Promise<T> {
    this.queued++;
    const result = this.tail.then(task, task);
    this.tail = result.then(
      () => this.queued--,
      () => this.queued--,
    );
    return result;
  }
}
