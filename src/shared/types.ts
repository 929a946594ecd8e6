// Payload, record and document types shared by producers, consumers and tests.
// One definition each: the MQTT contract, the Kafka records and the MongoDB documents.

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

/** A record on `scada.deadletter.v1`: never silently dropped input. */
export interface DeadLetterRecord {
  source: string;
  reason: string;
  payload: string;
  encoding: "utf8" | "base64";
  at: number;
}

export interface TagDefinition {
  name: string;
  unit: string;
  /** Engineering range the sensor can report. */
  min?: number;
  max?: number;
  /** Alarm limits: low and high. */
  lo?: number;
  hi?: number;
  type: "number" | "boolean" | "string";
}

/** Retained birth/death message on `.../{device}/state`. */
export interface StatePayload {
  state: "online" | "offline";
  ts: number;
  machineType?: string;
  tags?: TagDefinition[];
}

export interface DeviceDocument extends DeviceAddress {
  _id: string;
  machineType: string;
  state: "online" | "offline";
  tags: TagDefinition[];
  updatedAt: number;
}

export type LimitKind = "hi" | "lo";

/** What an alarm is about: a tag of a device beyond one of its limits. */
export interface AlarmCondition {
  device: string;
  tag: string;
  kind: LimitKind;
  state: "active" | "cleared";
  value: number;
  limit: number;
}

/** An alarm condition transition on `scada.alarms.v1`. */
export interface AlarmTransition extends AlarmCondition {
  alarmId: string;
  ts: number;
}

/** An alarm in the `alarms` collection; `value` is the value that raised it. */
export interface AlarmDocument extends AlarmCondition {
  _id: string;
  activatedAt: number;
  clearedAt: number | null;
  updatedAt: number;
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
