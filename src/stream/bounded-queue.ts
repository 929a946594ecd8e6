/**
 * A FIFO of at most `capacity` items that drops its oldest item to make room, and counts what it
 * dropped: `enqueued === taken + dropped + length` at all times.
 */
export class DropOldestQueue<T> {
  readonly capacity: number;
  readonly #items: (T | undefined)[];
  #head = 0;
  #length = 0;
  #enqueued = 0;
  #dropped = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.#items = new Array<T | undefined>(capacity);
  }

  get length(): number {
    return this.#length;
  }

  get full(): boolean {
    return this.#length === this.capacity;
  }

  /** Items ever pushed. */
  get enqueued(): number {
    return this.#enqueued;
  }

  /** Items dropped to make room, ever. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Appends; returns the item dropped to make room, if one was. */
  push(item: T): T | undefined {
    this.#enqueued++;
    let evicted: T | undefined;
    if (this.#length === this.capacity) {
      evicted = this.#items[this.#head];
      this.#items[this.#head] = undefined;
      this.#head = (this.#head + 1) % this.capacity;
      this.#length--;
      this.#dropped++;
    }
    this.#items[(this.#head + this.#length) % this.capacity] = item;
    this.#length++;
    return evicted;
  }

  /** Removes and returns every queued item, oldest first. */
  takeAll(): T[] {
    const out = new Array<T>(this.#length);
    for (let i = 0; i < this.#length; i++) {
      const index = (this.#head + i) % this.capacity;
      out[i] = this.#items[index] as T;
      this.#items[index] = undefined;
    }
    this.#head = 0;
    this.#length = 0;
    return out;
  }
}
