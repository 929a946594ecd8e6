// Fan-out of one replica's live records to its connected live-stream clients.
import { isValidLevel } from "../shared/topics.ts";
import type { DeviceAddress } from "../shared/types.ts";
import { matchKey, StreamClient, type StreamClientOptions, type StreamClientStats, type StreamSink } from "./stream-client.ts";
import type { StreamKind, StreamSubscription } from "./stream-filter.ts";

export interface StreamHubStats {
  clients: number;
  /** Live events handed to client sockets, since start (connected and disconnected clients). */
  eventsSent: number;
  /** Live events dropped from full client queues, since start. */
  eventsDropped: number;
  /** Clients disconnected because their socket stayed full. */
  slowDisconnects: number;
  /** Records read from Kafka, per kind; `invalid`: not parseable; `unaddressed`: alarms of devices whose site/area/line is unknown here. */
  records: { telemetry: number; alarms: number; invalid: number; unaddressed: number };
  /** Devices whose place in the unified namespace this replica knows. */
  devicesKnown: number;
  perClient: StreamClientStats[];
}

function isAddress(value: unknown): value is DeviceAddress {
  const a = value as DeviceAddress;
  return typeof a === "object" && a !== null && [a.site, a.area, a.line, a.device].every((level) => typeof level === "string" && isValidLevel(level));
}

/** The device an alarms-topic record is about: condition transitions carry it, lifecycle records in `event`. */
function alarmDevice(record: unknown, key: string | null): string | null {
  const r = record as { device?: unknown; event?: { device?: unknown } };
  if (typeof r?.device === "string") return r.device;
  if (typeof r?.event?.device === "string") return r.event.device;
  return key;
}

/**
 * Holds the clients and the device address book (device id → site/area/line, from telemetry
 * records and the registry), and hands every record to the clients whose subscription selects
 * it. Never waits for a client: see StreamClient.
 */
export class StreamHub {
  readonly #clients = new Map<number, StreamClient>();
  readonly #addresses = new Map<string, DeviceAddress>();
  readonly #dirty = new Set<StreamClient>();
  readonly #options: StreamClientOptions;
  #nextClientId = 1;
  #retiredSent = 0;
  #retiredDropped = 0;
  #slowDisconnects = 0;
  readonly #records = { telemetry: 0, alarms: 0, invalid: 0, unaddressed: 0 };

  constructor(options: StreamClientOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#clients.size;
  }

  /** A new client; it receives live events once `release()`d (after its snapshot). */
  connect(subscription: StreamSubscription, sink: StreamSink, now = Date.now()): StreamClient {
    const client = new StreamClient(this.#nextClientId++, subscription, sink, this.#options, now);
    this.#clients.set(client.id, client);
    return client;
  }

  /** The client's connection is gone (or was closed here). */
  disconnect(client: StreamClient): void {
    if (!this.#clients.delete(client.id)) return;
    client.close("gone");
    this.#dirty.delete(client);
    this.#retiredSent += client.sent;
    this.#retiredDropped += client.dropped;
  }

  learnAddress(address: DeviceAddress): void {
    if (!isAddress(address)) return;
    const known = this.#addresses.get(address.device);
    if (known && known.site === address.site && known.area === address.area && known.line === address.line) return;
    this.#addresses.set(address.device, { site: address.site, area: address.area, line: address.line, device: address.device });
  }

  addressOf(device: string): DeviceAddress | undefined {
    return this.#addresses.get(device);
  }

  /** Every device whose address is known. */
  knownAddresses(): DeviceAddress[] {
    return [...this.#addresses.values()];
  }

  /**
   * One Kafka record (its value as text): telemetry teaches the device's address, then the record
   * is queued for every client that wants it. Call `flush()` after a batch.
   */
  handleRecord(kind: StreamKind, value: string, key: string | null, now = Date.now()): void {
    let record: unknown;
    try {
      record = JSON.parse(value);
    } catch {
      this.#records.invalid++;
      return;
    }
    let address: DeviceAddress | undefined;
    if (kind === "telemetry") {
      if (!isAddress(record)) {
        this.#records.invalid++;
        return;
      }
      this.learnAddress(record);
      address = record;
    } else {
      const device = alarmDevice(record, key);
      address = device === null ? undefined : this.#addresses.get(device);
      if (!address) {
        this.#records.unaddressed++;
        return;
      }
    }
    this.#records[kind]++;
    if (this.#clients.size === 0) return;
    // Frames are one line per data field: keep the record's own text when it has no line breaks.
    const data = /[\r\n]/.test(value) ? JSON.stringify(record) : value;
    const memoKey = matchKey(address, kind);
    for (const client of this.#clients.values()) {
      if (!client.wants(address, kind, memoKey)) continue;
      client.enqueue(kind, data, now);
      this.#dirty.add(client);
    }
  }

  /** Writes what the last records queued, to every client whose socket has room. */
  flush(now = Date.now()): void {
    for (const client of this.#dirty) client.flush(now);
    this.#dirty.clear();
  }

  /** Heartbeats and slow-client verdicts; call about once a second. */
  tick(now = Date.now()): void {
    for (const client of [...this.#clients.values()]) {
      if (client.tick(now)) {
        this.#slowDisconnects++;
        this.disconnect(client);
      }
    }
  }

  /** Ends every stream (the server is stopping). */
  closeAll(): void {
    for (const client of [...this.#clients.values()]) {
      client.close("shutdown");
      this.disconnect(client);
    }
  }

  stats(): StreamHubStats {
    const live = [...this.#clients.values()];
    return {
      clients: live.length,
      eventsSent: this.#retiredSent + live.reduce((sum, c) => sum + c.sent, 0),
      eventsDropped: this.#retiredDropped + live.reduce((sum, c) => sum + c.dropped, 0),
      slowDisconnects: this.#slowDisconnects,
      records: { ...this.#records },
      devicesKnown: this.#addresses.size,
      perClient: live.map((c) => c.stats()),
    };
  }
}
