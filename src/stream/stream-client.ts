// One live-stream connection: its subscription, its bounded queue, and the writes to its socket.
import type { DeviceAddress } from "../shared/types.ts";
import { DropOldestQueue } from "./bounded-queue.ts";
import { sseComment, sseFrame } from "./sse.ts";
import { subscriptionMatches, type StreamKind, type StreamSubscription } from "./stream-filter.ts";

/** Where a client's bytes go: an HTTP response in the gateway, a fake in unit tests. */
export interface StreamSink {
  /** Hands bytes to the socket; false when its buffer is full (wait for `drained()` before writing more). */
  write(chunk: string): boolean;
  /** Ends the response (the server stops). */
  end(): void;
  /** Drops the connection at once (a client that stopped reading). */
  destroy(): void;
}

export interface StreamClientOptions {
  /** Events queued per client at most; the oldest is dropped to make room. */
  queueCapacity: number;
  /** A client whose socket buffer stays full this long is disconnected. */
  stallTimeoutMs: number;
  heartbeatMs: number;
}

export interface StreamClientStats {
  id: number;
  filters: string[];
  kinds: StreamKind[];
  connectedAt: number;
  /** Live events that matched the subscription. */
  matched: number;
  /** Live events handed to the socket. */
  sent: number;
  /** Live events dropped because the queue was full. */
  dropped: number;
  queued: number;
  /** Since when the socket buffer has been full (epoch ms), or null. */
  stalledSince: number | null;
}

/** Match results remembered per device address and kind; cleared when it grows past this. */
const MATCH_MEMO_MAX = 10_000;

/** The memo key of a device address and kind. */
export function matchKey(address: DeviceAddress, kind: StreamKind): string {
  return `${kind}|${address.site}/${address.area}/${address.line}/${address.device}`;
}

/** Event names on the wire, per kind. */
const EVENT_NAME: Record<StreamKind, string> = { telemetry: "telemetry", alarms: "alarm" };

/**
 * A live-stream client. Live events are framed with consecutive ids (1, 2, …: a gap is exactly
 * the events dropped) into a drop-oldest queue, and written to the sink whenever its buffer has
 * room; dropped events are announced by a `dropped` event before the next write. Nothing here
 * ever waits for the client: a full socket only makes the queue drop.
 */
export class StreamClient {
  readonly id: number;
  readonly subscription: StreamSubscription;
  readonly connectedAt: number;
  readonly #sink: StreamSink;
  readonly #options: StreamClientOptions;
  readonly #queue: DropOldestQueue<string>;
  readonly #memo = new Map<string, boolean>();
  #nextId = 1;
  #sent = 0;
  #droppedReported = 0;
  #holding = true;
  #closed = false;
  #stalledSince: number | null = null;
  #lastHeartbeatAt: number;

  constructor(id: number, subscription: StreamSubscription, sink: StreamSink, options: StreamClientOptions, now = Date.now()) {
    this.id = id;
    this.subscription = subscription;
    this.connectedAt = now;
    this.#sink = sink;
    this.#options = options;
    this.#queue = new DropOldestQueue<string>(options.queueCapacity);
    this.#lastHeartbeatAt = now;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get sent(): number {
    return this.#sent;
  }

  get dropped(): number {
    return this.#queue.dropped;
  }

  /**
   * Does the subscription select this device's events of this kind? Memoized per `key`, which
   * must name the kind and the whole address (the hub builds it once per record).
   */
  wants(address: DeviceAddress, kind: StreamKind, key = matchKey(address, kind)): boolean {
    let wanted = this.#memo.get(key);
    if (wanted === undefined) {
      if (this.#memo.size >= MATCH_MEMO_MAX) this.#memo.clear();
      wanted = subscriptionMatches(this.subscription, address, kind);
      this.#memo.set(key, wanted);
    }
    return wanted;
  }

  /**
   * Queues a live event (`data` is JSON without line breaks); the owner flushes after its batch.
   * A full queue is flushed at once if the socket takes it, so a burst larger than the queue
   * only drops events for a client whose socket is full.
   */
  enqueue(kind: StreamKind, data: string, now = Date.now()): void {
    if (this.#closed) return;
    this.#queue.push(sseFrame(EVENT_NAME[kind], data, this.#nextId++));
    if (this.#queue.full) this.flush(now);
  }

  /** Writes what is queued, unless the snapshot is still being written or the socket is full. */
  flush(now = Date.now()): void {
    if (this.#closed || this.#holding || this.#stalledSince !== null) return;
    const unreported = this.#queue.dropped - this.#droppedReported;
    if (this.#queue.length === 0 && unreported === 0) return;
    let chunk = "";
    if (unreported > 0) {
      chunk = sseFrame("dropped", JSON.stringify({ dropped: unreported, total: this.#queue.dropped }));
      this.#droppedReported = this.#queue.dropped;
    }
    const frames = this.#queue.takeAll();
    this.#sent += frames.length;
    this.#write(chunk + frames.join(""), now);
  }

  /** Writes straight to the socket, ahead of the queue (the snapshot, control events). */
  writeDirect(text: string, now = Date.now()): void {
    if (this.#closed) return;
    this.#write(text, now);
  }

  /** The snapshot is written: live events may flow. */
  release(now = Date.now()): void {
    this.#holding = false;
    this.flush(now);
  }

  /** The socket buffer has room again. */
  drained(now = Date.now()): void {
    this.#stalledSince = null;
    this.flush(now);
  }

  /**
   * Periodic duties: a heartbeat comment when one is due, and the verdict on a client whose socket
   * has stayed full too long. Returns true when the client was disconnected for being too slow.
   */
  tick(now = Date.now()): boolean {
    if (this.#closed) return false;
    if (this.#stalledSince !== null) {
      if (now - this.#stalledSince >= this.#options.stallTimeoutMs) {
        this.close("slow");
        return true;
      }
      return false;
    }
    if (now - this.#lastHeartbeatAt >= this.#options.heartbeatMs) {
      this.#lastHeartbeatAt = now;
      this.#write(sseComment(`heartbeat ${now}`), now);
    }
    return false;
  }

  /** "slow": drop the connection (its buffer is full anyway); "shutdown": say why, then end. */
  close(reason: "slow" | "shutdown" | "gone"): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.takeAll();
    if (reason === "slow") this.#sink.destroy();
    else if (reason === "shutdown") {
      this.#sink.write(sseFrame("close", JSON.stringify({ reason: "the server is stopping; reconnect" })));
      this.#sink.end();
    }
  }

  stats(): StreamClientStats {
    return {
      id: this.id,
      filters: this.subscription.filters.map((f) => f.source),
      kinds: this.subscription.kinds,
      connectedAt: this.connectedAt,
      matched: this.#queue.enqueued,
      sent: this.#sent,
      dropped: this.#queue.dropped,
      queued: this.#queue.length,
      stalledSince: this.#stalledSince,
    };
  }

  #write(text: string, now: number): void {
    if (!this.#sink.write(text) && this.#stalledSince === null) this.#stalledSince = now;
  }
}
