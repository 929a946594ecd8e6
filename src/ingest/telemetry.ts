import type { DeviceAddress, Quality, StatePayload, TagDefinition, TagSample, TagValue, TelemetryRecord } from "../shared/types.ts";

/** Limits of the telemetry contract; anything beyond them is a dead letter, never a crash. */
export const TELEMETRY_LIMITS = {
  maxTags: 500,
  maxStringLength: 256,
  /** Samples stamped further ahead than this are clock skew, not data. */
  maxFutureSkewMs: 5 * 60_000,
  /** Samples older than this are rejected: the historian is not a backfill endpoint (yet). */
  maxAgeMs: 7 * 24 * 3_600_000,
} as const;

const TAG_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** "__proto__" fits the pattern, but as a key it would set an object's prototype instead of a tag. */
function isTagName(name: string): boolean {
  return TAG_NAME.test(name) && name !== "__proto__";
}
const QUALITIES: readonly Quality[] = ["good", "uncertain", "bad"];

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

function fail(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Decodes a payload as a JSON object within the size limit. */
export function parseJsonObject(payload: Buffer, maxBytes: number): Parsed<Record<string, unknown>> {
  if (payload.length > maxBytes) return fail(`payload of ${payload.length} bytes exceeds the limit of ${maxBytes}`);
  let data: unknown;
  try {
    data = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch (err) {
    return fail(`payload is not UTF-8 JSON: ${(err as Error).message}`);
  }
  return isPlainObject(data) ? { ok: true, value: data } : fail("payload is not a JSON object");
}

function normalizeValue(tag: string, raw: unknown): Parsed<TagSample> {
  let value: unknown = raw;
  let quality: Quality = "good";
  if (isPlainObject(raw)) {
    value = raw.v;
    if (raw.q !== undefined) {
      if (!QUALITIES.includes(raw.q as Quality)) return fail(`values.${tag}.q must be one of ${QUALITIES.join(", ")}`);
      quality = raw.q as Quality;
    }
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return fail(`values.${tag} is not a finite number`);
    // JSON carries -0 as 0: normalize here so the record equals what Kafka delivers.
    if (value === 0) value = 0;
  } else if (typeof value === "string") {
    if (value.length > TELEMETRY_LIMITS.maxStringLength) return fail(`values.${tag} is longer than ${TELEMETRY_LIMITS.maxStringLength} characters`);
  } else if (typeof value !== "boolean") {
    return fail(`values.${tag} must be a number, boolean, string or {v, q}`);
  }
  return { ok: true, value: { v: value as TagValue, q: quality } };
}

/**
 * Validates a telemetry payload against the contract and normalizes it into a record:
 * every value becomes {v, q}; numbers outside a tag's engineering range get quality "uncertain".
 */
export function normalizeTelemetry(
  data: Record<string, unknown>,
  address: DeviceAddress,
  tags: readonly TagDefinition[] | undefined,
  now: number,
): Parsed<TelemetryRecord> {
  const { ts, seq, values } = data;
  if (typeof ts !== "number" || !Number.isInteger(ts) || ts <= 0) return fail("ts must be a positive integer (epoch ms)");
  if (ts > now + TELEMETRY_LIMITS.maxFutureSkewMs) return fail(`ts is ${ts - now} ms in the future (clock skew)`);
  if (ts < now - TELEMETRY_LIMITS.maxAgeMs) return fail(`ts is older than ${TELEMETRY_LIMITS.maxAgeMs / 3_600_000} h`);
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) return fail("seq must be a non-negative integer");
  if (!isPlainObject(values)) return fail("values must be an object of tag values");
  const names = Object.keys(values);
  if (names.length === 0) return fail("values is empty");
  if (names.length > TELEMETRY_LIMITS.maxTags) return fail(`values has ${names.length} tags, more than ${TELEMETRY_LIMITS.maxTags}`);
  const ranges = new Map((tags ?? []).map((t) => [t.name, t]));
  const normalized: Record<string, TagSample> = {};
  for (const name of names) {
    if (!isTagName(name)) return fail(`tag name "${name.slice(0, 80)}" is not valid`);
    const sample = normalizeValue(name, values[name]);
    if (!sample.ok) return sample;
    const def = ranges.get(name);
    if (def && typeof sample.value.v === "number" && sample.value.q === "good") {
      if ((def.min !== undefined && sample.value.v < def.min) || (def.max !== undefined && sample.value.v > def.max)) {
        sample.value.q = "uncertain";
      }
    }
    normalized[name] = sample.value;
  }
  const { site, area, line, device } = address;
  // `-0` is valid JSON but comes back from Kafka as 0: normalized here, so the record is what is stored.
  return { ok: true, value: { site, area, line, device, ts, seq: seq === 0 ? 0 : seq, receivedAt: now, values: normalized } };
}

/** Validates a birth/death message. Tag definitions are checked field by field. */
export function normalizeState(data: Record<string, unknown>): Parsed<StatePayload> {
  const { state, ts, machineType, tags } = data;
  if (state !== "online" && state !== "offline") return fail('state must be "online" or "offline"');
  if (typeof ts !== "number" || !Number.isInteger(ts) || ts <= 0) return fail("ts must be a positive integer (epoch ms)");
  if (machineType !== undefined && (typeof machineType !== "string" || machineType.length > 64)) return fail("machineType must be a short string");
  if (tags === undefined) return { ok: true, value: { state, ts, machineType } };
  if (!Array.isArray(tags) || tags.length > TELEMETRY_LIMITS.maxTags) return fail(`tags must be an array of at most ${TELEMETRY_LIMITS.maxTags} definitions`);
  const definitions: TagDefinition[] = [];
  for (const [i, tag] of tags.entries()) {
    if (!isPlainObject(tag) || typeof tag.name !== "string" || !isTagName(tag.name)) return fail(`tags[${i}].name is not a valid tag name`);
    if (tag.type !== "number" && tag.type !== "boolean" && tag.type !== "string") return fail(`tags[${i}].type must be number, boolean or string`);
    const definition: TagDefinition = { name: tag.name, type: tag.type, unit: typeof tag.unit === "string" ? tag.unit.slice(0, 32) : "" };
    for (const key of ["min", "max", "lo", "hi"] as const) {
      const bound = tag[key];
      if (bound === undefined) continue;
      if (typeof bound !== "number" || !Number.isFinite(bound)) return fail(`tags[${i}].${key} must be a finite number`);
      definition[key] = bound;
    }
    definitions.push(definition);
  }
  return { ok: true, value: { state, ts, machineType, tags: definitions } };
}
