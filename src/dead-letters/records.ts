// Dead letters as the dead-letters service stores and lists them: one insert-only document per
// record of `scada.deadletter.v1`, named by the record's Kafka coordinates.
import { ValidationError } from "../shared/errors.ts";
import { parseTimeParam } from "../shared/time.ts";
import { parseDeviceTopic } from "../shared/topics.ts";
import type { DeadLetterCode, DeadLetterRecord } from "../shared/types.ts";

export const DEAD_LETTER_CODES: readonly DeadLetterCode[] = ["invalid-topic", "invalid-payload", "unknown-device", "invalid-telemetry", "invalid-state", "invalid-record"];

/** `new` until someone replays it; `rejected` after a replay that still failed validation (it may be replayed again). */
export type DeadLetterStatus = "new" | "replayed" | "rejected";
export const DEAD_LETTER_STATUSES: readonly DeadLetterStatus[] = ["new", "replayed", "rejected"];

/** Where the input came from: MQTT messages can be replayed; unreadable Kafka records cannot (nothing upstream can fix them). */
export type DeadLetterOrigin = "mqtt" | "kafka";

export interface KafkaCoordinates {
  topic: string;
  partition: number;
  offset: string;
}

export interface DeadLetterDocument {
  /** `<topic>:<partition>:<offset>` of the dead-letter record: a re-consumed record has the same id. */
  _id: string;
  /** The category filters match; `other` for records without a code (older producers). */
  code: DeadLetterCode | "other";
  reason: string;
  /** The MQTT topic, or `<topic>/<partition>@<offset>` of an unreadable Kafka record. */
  source: string;
  origin: DeadLetterOrigin;
  /** The device, when the source topic names one. */
  device: string | null;
  payload: string;
  encoding: "utf8" | "base64";
  payloadBytes: number;
  /** The original size of a payload the producer cut short (such a dead letter cannot be replayed). */
  truncatedFrom: number | null;
  /** When the producer dead-lettered it (epoch ms). */
  at: number;
  storedAt: number;
  status: DeadLetterStatus;
  /** Replays that ran (replayed or rejected); the last one's reason when it was rejected. */
  attempts: number;
  lastAttemptAt: number | null;
  lastCode: DeadLetterCode | null;
  lastReason: string | null;
  replayedAt: number | null;
  replayedBy: string | null;
}

/** The list view leaves the payload out (up to MAX_PAYLOAD_BYTES each); `GET /dead-letters/:id` has it. */
export type DeadLetterSummary = Omit<DeadLetterDocument, "payload">;

/** Validator pattern of a dead letter's id (`<topic>:<partition>:<offset>`) in REST paths. */
export const DEAD_LETTER_ID = /^[A-Za-z0-9._-]{1,249}:\d{1,10}:\d{1,20}$/;
/** The historian's source of an unreadable record. MQTT sources never match: they have at least six levels. */
const KAFKA_SOURCE = /^[^/]+\/\d+@\d+$/;

export function deadLetterId(coordinates: KafkaCoordinates): string {
  return `${coordinates.topic}:${coordinates.partition}:${coordinates.offset}`;
}

function isRecord(value: unknown): value is DeadLetterRecord {
  const r = value as DeadLetterRecord;
  return (
    typeof r === "object" &&
    r !== null &&
    typeof r.source === "string" &&
    typeof r.reason === "string" &&
    typeof r.payload === "string" &&
    (r.encoding === "utf8" || r.encoding === "base64") &&
    Number.isFinite(r.at) &&
    (r.code === undefined || DEAD_LETTER_CODES.includes(r.code))
  );
}

/**
 * The document of one consumed dead-letter record. A value that is not a dead-letter record is
 * stored too, as an unreplayable `invalid-record`: nothing on the topic is dropped.
 */
export function deadLetterDocument(value: Buffer | null, coordinates: KafkaCoordinates, topicRoot: string, now: number): DeadLetterDocument {
  const _id = deadLetterId(coordinates);
  let record: DeadLetterRecord;
  try {
    const parsed: unknown = JSON.parse(value?.toString("utf8") ?? "");
    if (!isRecord(parsed)) throw new Error("source, reason, payload, encoding or at missing");
    record = parsed;
  } catch (err) {
    const source = `${coordinates.topic}/${coordinates.partition}@${coordinates.offset}`;
    record = { source, code: "invalid-record", reason: `not a dead-letter record: ${(err as Error).message}`, payload: value?.toString("base64") ?? "", encoding: "base64", at: now };
  }
  const origin: DeadLetterOrigin = KAFKA_SOURCE.test(record.source) ? "kafka" : "mqtt";
  const device = origin === "mqtt" ? (parseDeviceTopic(topicRoot, record.source)?.device ?? null) : null;
  return {
    _id,
    code: record.code ?? (origin === "kafka" ? "invalid-record" : "other"),
    reason: record.reason,
    source: record.source,
    origin,
    device,
    payload: record.payload,
    encoding: record.encoding,
    payloadBytes: Buffer.byteLength(record.payload, record.encoding),
    truncatedFrom: typeof record.truncatedFrom === "number" ? record.truncatedFrom : null,
    at: record.at,
    storedAt: now,
    status: "new",
    attempts: 0,
    lastAttemptAt: null,
    lastCode: null,
    lastReason: null,
    replayedAt: null,
    replayedBy: null,
  };
}

/** Query parameters of the list and of the bulk replay, as the validator let them through. */
export interface DeadLetterQueryParams {
  reason?: string;
  device?: string;
  from?: string | number;
  to?: string | number;
  status?: string;
}

/** A MongoDB filter holding only literal values (strings from closed sets or checked patterns, numbers). */
export interface DeadLetterFilter {
  code?: DeadLetterCode | "other";
  device?: string;
  status?: DeadLetterStatus;
  at?: { $gte?: number; $lte?: number };
}

const DEVICE = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Turns query parameters into a filter; throws ValidationError naming the field. Every value is
 * checked here as well as by the action's validator, so no input can become a query operator.
 */
export function deadLetterFilter(params: DeadLetterQueryParams): DeadLetterFilter {
  const filter: DeadLetterFilter = {};
  if (params.reason !== undefined) {
    const code = params.reason as DeadLetterCode | "other";
    if (code !== "other" && !DEAD_LETTER_CODES.includes(code)) throw new ValidationError(`reason must be one of ${[...DEAD_LETTER_CODES, "other"].join(", ")}`, "reason");
    filter.code = code;
  }
  if (params.device !== undefined) {
    if (typeof params.device !== "string" || !DEVICE.test(params.device)) throw new ValidationError("device must be a device id (letters, digits, '.', '_', '-')", "device");
    filter.device = params.device;
  }
  if (params.status !== undefined) {
    if (!DEAD_LETTER_STATUSES.includes(params.status as DeadLetterStatus)) throw new ValidationError(`status must be one of ${DEAD_LETTER_STATUSES.join(", ")}`, "status");
    filter.status = params.status as DeadLetterStatus;
  }
  const from = params.from === undefined ? undefined : parseTimeParam(params.from, "from", 0);
  const to = params.to === undefined ? undefined : parseTimeParam(params.to, "to", 0);
  if (from !== undefined && to !== undefined && to < from) throw new ValidationError("to must not be before from", "to");
  if (from !== undefined || to !== undefined) {
    filter.at = {};
    if (from !== undefined) filter.at.$gte = from;
    if (to !== undefined) filter.at.$lte = to;
  }
  return filter;
}
