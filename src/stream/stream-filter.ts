// Live-stream subscriptions: MQTT-style unified-namespace filters over devices and event kinds.
import { ValidationError } from "../shared/errors.ts";
import { isValidLevel } from "../shared/topics.ts";
import type { DeviceAddress } from "../shared/types.ts";

/** What a live-stream client can receive besides the snapshot. */
export const STREAM_KINDS = ["telemetry", "alarms"] as const;
export type StreamKind = (typeof STREAM_KINDS)[number];

/** Longest filter accepted, in characters. */
export const MAX_FILTER_LENGTH = 512;
/** Levels below the root: site, area, line, device, kind. */
const ADDRESS_LEVELS = 4;

/**
 * One filter, as levels below the topic root. A filter names devices: it may stop at the device
 * level (every kind of the device) or name a kind (`telemetry`, `alarms`) as a fifth level.
 */
export interface StreamFilter {
  /** As the client wrote it. */
  source: string;
  levels: string[];
}

export interface StreamSubscription {
  filters: StreamFilter[];
  kinds: StreamKind[];
}

/**
 * MQTT topic-filter matching: `+` is exactly one level, `#` (last level only) is any number of
 * levels including none, so `a/#` matches `a` itself as MQTT says.
 */
export function matchLevels(filter: readonly string[], topic: readonly string[]): boolean {
  for (let i = 0; i < filter.length; i++) {
    const level = filter[i];
    if (level === "#") return true;
    if (i >= topic.length) return false;
    if (level !== "+" && level !== topic[i]) return false;
  }
  return filter.length === topic.length;
}

/** Does the filter select this device's events of this kind? */
export function filterMatches(filter: StreamFilter, address: DeviceAddress, kind: StreamKind): boolean {
  const deviceLevels = [address.site, address.area, address.line, address.device];
  return matchLevels(filter.levels, deviceLevels) || matchLevels(filter.levels, [...deviceLevels, kind]);
}

export function subscriptionMatches(subscription: StreamSubscription, address: DeviceAddress, kind: StreamKind): boolean {
  return subscription.kinds.includes(kind) && subscription.filters.some((f) => filterMatches(f, address, kind));
}

/** Does the subscription select any kind of this device (for the snapshot)? */
export function subscriptionSelectsDevice(subscription: StreamSubscription, address: DeviceAddress): boolean {
  return subscription.kinds.some((kind) => subscriptionMatches(subscription, address, kind));
}

/**
 * Parses one filter, absolute (starting with the configured root, e.g. `scada/v1/plant1/+/line2/#`)
 * or relative to it (`plant1/+/line2/#`). A filter that starts with the root's levels is taken as
 * absolute. Throws ValidationError naming `field`.
 */
export function parseStreamFilter(raw: string, root: string, field = "filter"): StreamFilter {
  const fail = (why: string) => new ValidationError(`${field} "${raw.length > 80 ? raw.slice(0, 80) + "…" : raw}" ${why}`, field);
  if (raw.length === 0) throw fail("is empty");
  if (raw.length > MAX_FILTER_LENGTH) throw fail(`is longer than ${MAX_FILTER_LENGTH} characters`);
  const relative = raw === root ? "#" : raw.startsWith(root + "/") ? raw.slice(root.length + 1) : raw;
  const levels = relative.split("/");
  if (levels.length > ADDRESS_LEVELS + 1) throw fail("has more levels than site/area/line/device/kind below the root");
  levels.forEach((level, i) => {
    if (level === "#") {
      if (i !== levels.length - 1) throw fail("has # before its last level");
    } else if (level === "+") {
      // Any one level.
    } else if (level.includes("#") || level.includes("+")) {
      throw fail(`has a wildcard inside the level "${level}" (+ and # stand alone)`);
    } else if (level.includes(" ")) {
      throw fail(`has a space in the level "${level}" (in a URL query, write + as %2B and # as %23)`);
    } else if (!isValidLevel(level)) {
      throw fail(`has an invalid level "${level}" (letters, digits, ".", "_" and "-", 1 to 64 characters)`);
    } else if (i === ADDRESS_LEVELS && !(STREAM_KINDS as readonly string[]).includes(level)) {
      throw fail(`names the kind "${level}"; the fifth level is one of ${STREAM_KINDS.join(", ")}`);
    }
  });
  if (levels.at(-1) !== "#" && levels.length < ADDRESS_LEVELS) throw fail("matches no device: without # it needs site/area/line/device levels");
  return { source: raw, levels };
}

/** `kinds=telemetry,alarms` (comma-separated and/or repeated); all kinds when absent. */
export function parseStreamKinds(values: readonly string[], field = "kinds"): StreamKind[] {
  const names = values.flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean);
  if (names.length === 0) return [...STREAM_KINDS];
  const unknown = names.filter((n) => !(STREAM_KINDS as readonly string[]).includes(n));
  if (unknown.length > 0) throw new ValidationError(`${field} must be a comma-separated list of ${STREAM_KINDS.join(", ")}; got "${unknown[0].slice(0, 40)}"`, field);
  return STREAM_KINDS.filter((k) => names.includes(k));
}

/**
 * The subscription of a `GET /api/stream` query: `filter` repeated and/or comma-separated (at
 * least one, at most `maxFilters`), optional `kinds`.
 */
export function parseStreamQuery(query: URLSearchParams, root: string, maxFilters: number): StreamSubscription {
  const raw = query.getAll("filter").flatMap((v) => v.split(",")).map((v) => v.trim());
  if (raw.length === 0 || raw.every((v) => v === "")) {
    throw new ValidationError("filter is required: an MQTT-style unified-namespace filter such as plant1/+/line2/#", "filter");
  }
  if (raw.length > maxFilters) throw new ValidationError(`filter may be given at most ${maxFilters} times, got ${raw.length}`, "filter");
  const filters = raw.map((f) => parseStreamFilter(f, root));
  return { filters, kinds: parseStreamKinds(query.getAll("kinds")) };
}
