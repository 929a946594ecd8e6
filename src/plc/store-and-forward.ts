// Store-and-forward of a PLC's telemetry: what the MQTT client library does not guarantee.
//
// mqtt.js already keeps every QoS 1 publish in its outgoing store until the broker's PUBACK and
// resends it, in order, after a reconnect. It does not (1) bound that store, nor (2) tell a
// PUBACK "no matching subscribers" (MQTT 5 reason 16) from a delivery: after a broker restart
// that lost the preprocessor's session, everything the PLCs resend before the preprocessor has
// subscribed again is acknowledged and dropped. This buffer adds exactly those two: it hands the
// client only a few messages at a time while connected, keeps the rest (bounded, oldest dropped
// and counted), and takes back what came back "no subscribers" to resend it, in order, later.
//
// A PUBACK is not a delivery to the preprocessor either: what Mosquitto acknowledged but had not
// yet handed to the preprocessor (or saved, autosave_interval) dies with a Mosquitto SIGKILL. So
// after every reconnect the buffer also resends what was acknowledged in the last `resendWindowMs`
// before the connection was lost. The historian keys samples by (ts, seq): a duplicate costs one
// redundant write, never a second sample.

/** How a publish ended: routed to at least one subscription (or queued for one), or to none. */
export type PublishOutcome = "delivered" | "no-subscribers";

/** The part of an MQTT client the buffer uses; the simulator wraps mqtt.js, tests fake it. */
export interface TelemetryLink {
  readonly connected: boolean;
  /** QoS 1 publish; resolves with the broker's answer, rejects when the client gave it up. */
  publish(topic: string, payload: string): Promise<PublishOutcome>;
}

export interface StoreAndForwardOptions {
  /** Messages held while they cannot be sent (not counting those handed to the client). */
  capacity: number;
  /** Messages handed to the client at once, awaiting their PUBACK. */
  maxInFlight: number;
  /** Pause before resending what found no subscriber or failed, in ms. */
  retryMs: number;
  /** After a reconnect, resend what was acknowledged this long before the last acknowledgement (0: off). */
  resendWindowMs: number;
  /** Clock of the acknowledgements (tests pass a fake one). */
  now?: () => number;
}

export interface StoreAndForwardStats {
  /** Waiting to be handed to the client. */
  buffered: number;
  /** Handed to the client, PUBACK pending (the client resends these itself after a reconnect). */
  inFlight: number;
  /** Acknowledged as routed by the broker. */
  delivered: number;
  /** Oldest messages dropped because the buffer was full. */
  dropped: number;
  /** Messages taken back to be resent (no subscriber, or the client failed them). */
  retried: number;
  /** Acknowledged messages sent again after a reconnect (resend window). */
  resent: number;
}

interface Entry {
  /** Order of enqueueing: resends keep it. */
  order: number;
  topic: string;
  payload: string;
}

export class StoreAndForward {
  readonly #link: TelemetryLink;
  readonly #options: StoreAndForwardOptions;
  readonly #waiting: Entry[] = [];
  #inFlight = 0;
  #nextOrder = 0;
  /** Acknowledged entries of the resend window with their acknowledgement time, oldest first. */
  readonly #recent: { entry: Entry; at: number }[] = [];
  readonly #now: () => number;
  #retryTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #stats = { delivered: 0, dropped: 0, retried: 0, resent: 0 };

  constructor(link: TelemetryLink, options: StoreAndForwardOptions) {
    this.#link = link;
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  get stats(): StoreAndForwardStats {
    return { buffered: this.#waiting.length, inFlight: this.#inFlight, ...this.#stats };
  }

  /** Queues a message and sends what the link can take now. */
  enqueue(topic: string, payload: string): void {
    this.#waiting.push({ order: this.#nextOrder++, topic, payload });
    if (this.#waiting.length > this.#options.capacity) {
      this.#waiting.shift();
      this.#stats.dropped++;
    }
    this.pump();
  }

  /** Sends while connected, in order, up to maxInFlight at once. Call on (re)connect too. */
  pump(): void {
    while (!this.#closed && this.#retryTimer === undefined && this.#link.connected && this.#inFlight < this.#options.maxInFlight && this.#waiting.length > 0) {
      const entry = this.#waiting.shift() as Entry;
      this.#inFlight++;
      this.#link.publish(entry.topic, entry.payload).then(
        (outcome) => this.#settled(entry, outcome === "delivered"),
        () => this.#settled(entry, false),
      );
    }
  }

  /**
   * Call on every (re)connect instead of pump(): puts the resend window back in front of the
   * waiting messages, in order, and sends.
   */
  reconnected(): void {
    const window = this.#recent.splice(0).map((r) => r.entry);
    if (window.length > 0) {
      this.#stats.resent += window.length;
      // Acknowledged entries are older than every waiting one.
      this.#waiting.unshift(...window);
      this.#waiting.sort((a, b) => a.order - b.order);
      while (this.#waiting.length > this.#options.capacity) {
        this.#waiting.shift();
        this.#stats.dropped++;
      }
    }
    this.pump();
  }

  /** Stops sending and retrying; returns how many buffered messages are given up. */
  close(): number {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    return this.#waiting.splice(0).length;
  }

  #settled(entry: Entry, delivered: boolean): void {
    this.#inFlight--;
    if (delivered) {
      this.#stats.delivered++;
      this.#remember(entry);
    } else if (!this.#closed) {
      this.#stats.retried++;
      // Back in its place: in-flight entries are older than every waiting one.
      const at = this.#waiting.findIndex((e) => e.order > entry.order);
      this.#waiting.splice(at === -1 ? this.#waiting.length : at, 0, entry);
      if (this.#waiting.length > this.#options.capacity) {
        this.#waiting.shift();
        this.#stats.dropped++;
      }
      if (this.#retryTimer === undefined) {
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = undefined;
          this.pump();
        }, this.#options.retryMs);
      }
      return;
    }
    this.pump();
  }

  /** Keeps an acknowledged entry for the resend window; the window trails the newest acknowledgement, so it survives an outage of any length. */
  #remember(entry: Entry): void {
    if (this.#options.resendWindowMs <= 0) return;
    const at = this.#now();
    this.#recent.push({ entry, at });
    while (this.#recent.length > 0 && (this.#recent[0].at < at - this.#options.resendWindowMs || this.#recent.length > this.#options.capacity)) this.#recent.shift();
  }
}
