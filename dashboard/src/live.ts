// The live feed: one EventSource per screen on GET /api/stream, subscribed to what the screen
// shows (docs/api.md "Live stream"), and a per-frame scheduler so that many events per second
// cost one DOM update per animation frame.
import type { AlarmTopicRecord, DeviceAddress, LatestValue, TelemetryRecord } from "../../src/shared/types.ts";
import { streamQuery } from "./model.ts";
import { sessionToken } from "./session.ts";

export interface SnapshotRecord extends DeviceAddress {
  values: Record<string, LatestValue>;
}

export interface LiveHandlers {
  snapshot?: (record: SnapshotRecord) => void;
  /** The snapshot is over (also after every reconnect): a good time to re-read REST state. */
  ready?: () => void;
  telemetry?: (record: TelemetryRecord) => void;
  alarm?: (record: AlarmTopicRecord) => void;
}

const linkState = () => document.getElementById("link-state");

function showLink(text: string, ok: boolean): void {
  const el = linkState();
  if (!el) return;
  el.textContent = text;
  el.classList.toggle("abnormal", !ok);
}

/** Opens the stream; returns a function that closes it. EventSource reconnects by itself (retry: 3000). */
export function subscribe(filters: readonly string[], kinds: readonly ("telemetry" | "alarms")[] | undefined, handlers: LiveHandlers): () => void {
  const query = streamQuery(filters, kinds);
  if (!query) return () => undefined;
  // EventSource cannot send headers: the token goes in the query, which the gateway accepts on this route only.
  const token = sessionToken();
  const source = new EventSource(`/api/stream?${query}${token ? `&access_token=${encodeURIComponent(token)}` : ""}`);
  const on = <T>(event: string, handler: ((data: T) => void) | undefined) => {
    if (handler) source.addEventListener(event, (e) => handler(JSON.parse((e as MessageEvent<string>).data) as T));
  };
  on("snapshot", handlers.snapshot);
  on("telemetry", handlers.telemetry);
  on("alarm", handlers.alarm);
  source.addEventListener("snapshot-complete", () => {
    showLink("live", true);
    handlers.ready?.();
  });
  source.addEventListener("error", () => showLink("reconnecting…", false));
  source.addEventListener("dropped", () => showLink("live (events dropped)", false));
  return () => source.close();
}

/**
 * Collects work keyed by an id and runs it once per animation frame: a device that sends five
 * records between two frames is redrawn once, with its newest values.
 */
export class FrameBatcher<K> {
  readonly #dirty = new Set<K>();
  readonly #flush: (keys: ReadonlySet<K>) => void;
  #scheduled = 0;

  constructor(flush: (keys: ReadonlySet<K>) => void) {
    this.#flush = flush;
  }

  mark(key: K): void {
    this.#dirty.add(key);
    if (this.#scheduled === 0) this.#scheduled = requestAnimationFrame(this.#run);
  }

  cancel(): void {
    if (this.#scheduled !== 0) cancelAnimationFrame(this.#scheduled);
    this.#scheduled = 0;
    this.#dirty.clear();
  }

  readonly #run = () => {
    this.#scheduled = 0;
    this.#flush(this.#dirty);
    this.#dirty.clear();
  };
}

/** Runs `fn` at most once per `ms`, trailing: a burst of alarm records causes one re-read. */
export function coalesce(fn: () => void, ms: number): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return () => {
    if (timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      fn();
    }, ms);
  };
}
