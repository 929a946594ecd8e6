// Payload, record and document types shared by producers, consumers and tests.
// One definition each: the MQTT contract, the Kafka records and the MongoDB documents.
import type { Role } from "../auth/roles.ts";

export type TagValue = number | boolean | string;
export type Quality = "good" | "uncertain" | "bad";

/** What a PLC publishes on `{root}/{site}/{area}/{line}/{device}/telemetry`. */
export interface TelemetryPayload {
  ts: number;
  seq: number;
  values: Record<string, TagValue | { v: TagValue; q?: Quality }>;
}

/** Where a device sits in the plant (ISA-95 levels of the unified namespace). */
export interface DeviceAddress {
  site: string;
  area: string;
  line: string;
  device: string;
}

export interface TagSample {
  v: TagValue;
  q: Quality;
}

/** A validated, normalized sample set on `scada.telemetry.v1`, keyed by device id. */
export interface TelemetryRecord extends DeviceAddress {
  ts: number;
  seq: number;
  /** Time the preprocessor received it (epoch ms), for latency measurements. */
  receivedAt: number;
  values: Record<string, TagSample>;
}

/**
 * Why input was dead-lettered, in a word a filter can match (the `reason` is for people):
 * set by the preprocessor for MQTT input, `invalid-record` for unreadable Kafka records.
 */
export type DeadLetterCode = "invalid-topic" | "invalid-payload" | "unknown-device" | "invalid-telemetry" | "invalid-state" | "invalid-record";

/** A record on `scada.deadletter.v1`: never silently dropped input. */
export interface DeadLetterRecord {
  source: string;
  /** Absent on records written before codes existed. */
  code?: DeadLetterCode;
  reason: string;
  payload: string;
  encoding: "utf8" | "base64";
  at: number;
  /** Size in bytes of a payload cut to its first DEAD_LETTER_PAYLOAD_MAX bytes (src/ingest/dead-letter.ts). */
  truncatedFrom?: number;
}

/** What the preprocessor's validation path made of one MQTT message: forwarded, or why not. */
export type IngestOutcome = { ok: true } | { ok: false; code: DeadLetterCode; reason: string };

export interface TagDefinition {
  name: string;
  unit: string;
  /** Engineering range the sensor can report. */
  min?: number;
  max?: number;
  /** Alarm limits: low (L) and high (H); optional low-low (LL) and high-high (HH). */
  lo?: number;
  hi?: number;
  lolo?: number;
  hihi?: number;
  type: "number" | "boolean" | "string";
  /** How this tag's alarm conditions behave (docs/alarms.md); every field is optional. */
  alarm?: TagAlarmSettings;
}

export type AlarmSeverity = "critical" | "high" | "medium" | "low";

/** Per-tag alarm settings in the device registry; defaults are in docs/alarms.md. */
export interface TagAlarmSettings {
  /** Severity per condition kind, overriding the defaults (LL/HH high, L/H medium, ...). */
  severity?: Partial<Record<LimitKind | "roc" | "stuck", AlarmSeverity>>;
  /** How far back inside a limit (engineering units) a value must come before the condition clears. */
  deadband?: number;
  /** A value must stay beyond a limit this long before the condition becomes active. */
  onDelayMs?: number;
  /** A value must stay back inside this long before the condition returns to normal. */
  offDelayMs?: number;
  /** Rate-of-change limit, in engineering units per second (absolute value). */
  rocPerSecond?: number;
  /** A numeric value that does not change at all for this long is a stuck-value condition. */
  stuckAfterMs?: number;
}

/** Retained birth/death message on `.../{device}/state`. */
export interface StatePayload {
  state: "online" | "offline";
  ts: number;
  machineType?: string;
  tags?: TagDefinition[];
}

export interface DeviceDocument extends Omit<DeviceAddress, "device"> {
  _id: string;
  machineType: string;
  state: "online" | "offline";
  tags: TagDefinition[];
  updatedAt: number;
  /**
   * An engineer's changes (PATCH /api/devices/{id}), kept apart from `tags`, which every birth
   * rewrites. `devices.get`/`devices.list` return `tags` with these merged in.
   */
  overrides?: DeviceOverrides;
  /** Free-text descriptions (name, description, location, ...), from the overrides. */
  metadata?: Record<string, string>;
}

/** Alarm settings as a change carries them: `null` removes a setting. */
export type TagAlarmOverride = { [K in keyof TagAlarmSettings]?: TagAlarmSettings[K] | null };

/** An engineer's limits and alarm settings for one tag: `null` removes what the PLC's birth set. */
export interface TagOverride {
  lolo?: number | null;
  lo?: number | null;
  hi?: number | null;
  hihi?: number | null;
  alarm?: TagAlarmOverride;
}

/** The body of PATCH /api/devices/{id}. */
export interface DeviceUpdate {
  metadata?: Record<string, string | null>;
  tags?: Record<string, TagOverride>;
}

/** What is stored of every change to a device (tag overrides as a list: tag names may hold dots). */
export interface DeviceOverrides {
  metadata: Record<string, string>;
  tags: (TagOverride & { name: string })[];
  updatedBy: string;
  updatedAt: number;
  /** Counts changes; a change is written only over the revision it was computed from. */
  revision: number;
}

export type LimitKind = "hihi" | "hi" | "lo" | "lolo";

/**
 * What kind of condition an alarm watches: a limit, a rate of change, a stuck value, the
 * device's communication, or (later) a learned anomaly detector.
 */
export type AlarmKind = LimitKind | "roc" | "stuck" | "comm" | "anomaly";

/** What an alarm is about: a condition of a device's tag (`*` for the device as a whole). */
export interface AlarmCondition {
  device: string;
  tag: string;
  kind: AlarmKind;
  /** The process condition: beyond the limit (active) or back to normal (cleared). */
  state: "active" | "cleared";
  /** The value that caused the transition, in the unit of `limit`. */
  value: number;
  /** The threshold: a limit in the tag's unit, units/s for `roc`, ms for `stuck` and `comm`. */
  limit: number;
}

/**
 * A condition transition on `scada.alarms.v1`, published by the anomaly-detector. `alarmId` is
 * `<device>:<tag>:<kind>` and names the alarm for its whole life. Records without `type` are
 * condition transitions too (the topic's first version).
 */
export interface AlarmTransition extends AlarmCondition {
  type?: "condition";
  alarmId: string;
  ts: number;
  severity?: AlarmSeverity;
  /** The device's run state suppresses this alarm by design (e.g. a stopped machine's process alarms). */
  suppressed?: boolean;
  /** Why, for people: e.g. "zone_temp 195.2 above H 192". */
  message?: string;
}

/** A device's learned anomaly score (`GET /api/devices/{id}/anomaly`, action `anomaly-detector.scores`). */
export interface DeviceAnomalyScore {
  device: string;
  /** Latest score in [0,1]; the device's anomaly alarm is raised at `threshold`. */
  score: number;
  active: boolean;
  suppressed: boolean;
  threshold: number;
  /** True until the detector has learnt enough samples to score. */
  warmingUp: boolean;
  /** Samples the detector has learnt from (checkpoints included). */
  samples: number;
  runState: string | null;
  /** Continued from a checkpoint on this replica. */
  restored: boolean;
  /** The numeric tags the detector watches, in sample order. */
  tags: string[];
  /** The latest scored sample: the most deviant tags with value, expected value and robust z. */
  last: { ts: number; score: number; warmingUp: boolean; tags: { tag: string; value: number | null; expected: number; z: number; share?: number }[] } | null;
}

/**
 * ISA-18.2 alarm states. `cleared` is normal and acknowledged. Shelved, suppressed (by design)
 * and out of service hide the alarm whatever its condition; leaving them returns to
 * `active-unack` if the condition is active, else to `cleared`.
 */
export type AlarmState = "active-unack" | "active-acked" | "rtn-unack" | "cleared" | "shelved" | "suppressed" | "out-of-service";

/** What a journal entry records. */
export type AlarmAction =
  | "activated"
  | "returned"
  | "acknowledged"
  | "shelved"
  | "unshelved"
  | "shelve-expired"
  | "suppressed"
  | "unsuppressed"
  | "removed-from-service"
  | "returned-to-service"
  | "commented"
  | "chattering-started"
  | "chattering-ended";

/** One journal entry in `alarm_events`: who did what to an alarm, when and why. */
export interface AlarmEvent {
  /** `<alarmId>#<seq>`, seq zero-padded: a replay writes the same id and is not journaled twice. */
  _id: string;
  alarmId: string;
  seq: number;
  device: string;
  tag: string;
  kind: AlarmKind;
  severity: AlarmSeverity;
  at: number;
  action: AlarmAction;
  from: AlarmState;
  to: AlarmState;
  /** The operator (`ctx.meta.user`, "anonymous" until auth exists), or "system" for the process and timers. */
  user: string;
  comment: string | null;
  /** The process value of a condition change. */
  value: number | null;
  /** For acknowledgements: time since the activation being acknowledged (ms). */
  ackDelayMs?: number;
}

/** A stored lifecycle transition as the alarms service republishes it on `scada.alarms.v1`. */
export interface AlarmLifecycleRecord {
  type: "lifecycle";
  event: AlarmEvent;
  alarm: Pick<AlarmDocument, "_id" | "state" | "active" | "acked" | "severity">;
}

/** Any record on `scada.alarms.v1`. */
export type AlarmTopicRecord = AlarmTransition | AlarmLifecycleRecord;

/** An alarm's current state in the `alarms` collection, one document per condition. */
export interface AlarmDocument extends Omit<AlarmCondition, "state"> {
  _id: string;
  state: AlarmState;
  severity: AlarmSeverity;
  /** The process condition, whatever the lifecycle state. */
  active: boolean;
  /** False while an annunciated activation or return waits for an operator. */
  acked: boolean;
  suppressed: boolean;
  shelvedUntil: number | null;
  outOfService: boolean;
  /** `value` is the value that raised the latest activation; `lastValue` the latest condition change's. */
  lastValue: number;
  message: string | null;
  activatedAt: number;
  /** When the condition returned to normal; null while it is active. */
  clearedAt: number | null;
  ackedAt: number | null;
  ackedBy: string | null;
  /** Activations since the alarm was first raised. */
  activations: number;
  /** Times of the recent condition transitions, within the chattering window. */
  recentTransitions: number[];
  chattering: boolean;
  /** Number of journal entries; the next one is `<_id>#<rev + 1>`. */
  rev: number;
  updatedAt: number;
  /** The journal entries of the latest change, kept here so a crash between the two writes can be repaired. */
  lastEvents: AlarmEvent[];
  /** Kafka position of the last condition record applied: a replayed record is skipped. */
  source: { partition: number; offset: string } | null;
}

/** One stored point, as history queries return it. */
export interface HistoryPoint {
  ts: number;
  seq: number;
  v: TagValue;
  q: Quality;
}

export type RunState = "stopped" | "starting" | "running" | "stopping" | "faulted";

/** A supervisory command on `.../{device}/cmd`. */
export interface CommandPayload {
  id: string;
  action: "start" | "stop" | "reset" | "setpoint";
  tag?: string;
  value?: number;
  ts: number;
}

/** The PLC's answer on `.../{device}/cmd/ack`, matched by command id. */
export interface CommandAck {
  id: string;
  status: "accepted" | "rejected";
  reason?: string;
  ts: number;
}

export type FaultType = "drift" | "spike" | "stuck" | "noise" | "offset" | "overheat" | "bearing-wear" | "leak";

/** A fault to inject into one simulated PLC. */
export interface FaultSpec {
  device: string;
  type: FaultType;
  /** Tag it acts on; types that act on several tags (leak, bearing-wear, overheat) choose their own. */
  tag?: string;
  /** Start time (epoch ms); defaults to now. */
  start?: number;
  durationMs: number;
  /** Dimensionless 0..1 scale of how hard the fault hits. */
  severity: number;
}

/** Ground truth of one injected fault, published apart from the data the detectors read. */
export interface GroundTruthRecord {
  faultId: string;
  device: string;
  type: FaultType;
  tags: string[];
  start: number;
  end: number;
  severity: number;
}

/** A tag's newest value as the latest-value cache holds it. */
export interface LatestValue {
  v: TagValue;
  q: Quality;
  ts: number;
}

/** Who made a request, as the gateway puts it in `ctx.meta.user` (src/auth/, docs/security.md). */
export interface AuthUser {
  name: string;
  role: Role;
  /** A person logged in with a password (JWT), or a machine with an API key. */
  kind: "user" | "key";
}

/** A user as the admin routes show it (never the password hash). */
export interface UserView {
  name: string;
  role: Role;
  createdAt: number;
  createdBy: string;
}

/** An API key as the admin routes show it: `id` is the SHA-256 of the key, never the key itself. */
export interface ApiKeyView {
  id: string;
  name: string;
  role: Role;
  createdAt: number;
  createdBy: string;
}

/** The answer of `POST /api/auth/login`. */
export interface LoginResult {
  token: string;
  tokenType: "Bearer";
  /** Epoch ms. */
  expiresAt: number;
  user: AuthUser;
}
