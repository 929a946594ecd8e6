// Alarm conditions per device, evaluated on the telemetry stream: limits (HH/H/L/LL) with deadband
// and on/off delays, rate of change, stuck value, suppression by run state, and communication
// loss. Pure: the caller passes every time in (sample times for conditions, arrival times for
// communication), so tests drive it with a fake clock.
import type { AlarmKind, AlarmSeverity, AlarmTransition, TagDefinition, TelemetryRecord } from "../shared/types.ts";
import { alarmIdOf, conditionDefinitions, DEFAULT_SEVERITY, DEVICE_TAG, KIND_LABEL, type ConditionDefinition } from "./alarm-definitions.ts";
import { DebouncedCondition, DEFAULT_DEADBAND_FRACTION, limitPosition } from "./limit-checker.ts";

export interface ConditionEvaluatorOptions {
  deadbandFraction?: number;
  /** The string tag carrying the machine's run state. */
  runStateTag?: string;
  /** Run states in which process alarms are suppressed by design. */
  suppressingRunStates?: readonly string[];
  /** Communication loss after this many scan cycles without data (the cycle is learned per device)... */
  commLossScanCycles?: number;
  /** ...but never sooner than this, so pipeline hiccups are not taken for dead PLCs. */
  commLossMinMs?: number;
}

export const DEFAULT_SUPPRESSING_RUN_STATES: readonly string[] = ["stopped", "starting", "stopping"];
export const DEFAULT_COMM_LOSS_SCAN_CYCLES = 10;
export const DEFAULT_COMM_LOSS_MIN_MS = 5_000;

/** What was last published for a condition: the alarms service's view of it. */
interface Published {
  active: boolean;
  suppressed: boolean;
}

interface ConditionSlot {
  debounce: DebouncedCondition;
  published: Published | null;
}

interface TagHistory {
  value: number;
  ts: number;
  changedAt: number;
}

interface DeviceTrack {
  runState: string | null;
  conditions: Map<string, ConditionSlot>;
  history: Map<string, TagHistory>;
  /** Wall-clock arrival of the newest record; null until this evaluator saw one. */
  lastArrival: number | null;
  lastTs: number | null;
  periodMs: number | null;
  offline: boolean;
  /** Born again after a death: communication counts as lost until data arrives. */
  awaitingData: boolean;
  comm: Published | null;
}

/** A condition that was active before a restart (from the alarms service). */
export interface RestoredCondition {
  device: string;
  tag: string;
  kind: AlarmKind;
  suppressed: boolean;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** Publish only what changes the alarm's view: activations, returns, and suppression of active (or formerly suppressed) conditions. */
function shouldPublish(published: Published | null, desired: Published): boolean {
  if (published === null) return desired.active;
  if (published.active !== desired.active) return true;
  if (desired.active) return published.suppressed !== desired.suppressed;
  return published.suppressed && !desired.suppressed;
}

export class ConditionEvaluator implements ConditionSource {
  readonly name = "conditions";
  readonly #tracks = new Map<string, DeviceTrack>();
  readonly #deadbandFraction: number;
  readonly #runStateTag: string;
  readonly #suppressing: ReadonlySet<string>;
  readonly #commCycles: number;
  readonly #commMinMs: number;

  constructor(options: ConditionEvaluatorOptions = {}) {
    this.#deadbandFraction = options.deadbandFraction ?? DEFAULT_DEADBAND_FRACTION;
    this.#runStateTag = options.runStateTag ?? "state";
    this.#suppressing = new Set(options.suppressingRunStates ?? DEFAULT_SUPPRESSING_RUN_STATES);
    this.#commCycles = options.commLossScanCycles ?? DEFAULT_COMM_LOSS_SCAN_CYCLES;
    this.#commMinMs = options.commLossMinMs ?? DEFAULT_COMM_LOSS_MIN_MS;
  }

  /** Restores conditions that were active before a restart, so they are neither raised twice nor left uncleared. */
  restore(active: readonly RestoredCondition[]): void {
    for (const a of active) {
      const track = this.#track(a.device);
      if (a.kind === "comm") track.comm = { active: true, suppressed: false };
      else track.conditions.set(`${a.tag}:${a.kind}`, { debounce: new DebouncedCondition(true), published: { active: true, suppressed: a.suppressed } });
    }
  }

  activeCount(): number {
    let count = 0;
    for (const track of this.#tracks.values()) {
      if (track.comm?.active) count++;
      for (const slot of track.conditions.values()) if (slot.published?.active) count++;
    }
    return count;
  }

  devices(): string[] {
    return [...this.#tracks.keys()];
  }

  /** Drops what is known about devices this evaluator no longer owns (their partitions moved). */
  forget(device: string): void {
    this.#tracks.delete(device);
  }

  /** Restarts every device's silence clock (after a pause in consumption that was not the devices' fault). */
  resetSilence(now: number): void {
    for (const track of this.#tracks.values()) if (track.lastArrival !== null) track.lastArrival = Math.max(track.lastArrival, now);
  }

  /** Evaluates one telemetry record against the device's tag definitions. */
  evaluate(record: TelemetryRecord, tags: readonly TagDefinition[], arrivedAt: number): AlarmTransition[] {
    const track = this.#track(record.device);
    const out: AlarmTransition[] = [];
    this.#noteArrival(track, record.ts, arrivedAt);
    const comm = this.#evaluateComm(record.device, track, arrivedAt);
    if (comm) out.push(comm);

    const runState = record.values[this.#runStateTag];
    if (runState && typeof runState.v === "string") track.runState = runState.v;
    const suppressed = track.runState !== null && this.#suppressing.has(track.runState);

    const defined = new Set<string>();
    for (const tag of tags) {
      const definitions = conditionDefinitions(tag, this.#deadbandFraction);
      if (definitions.length === 0) continue;
      for (const d of definitions) defined.add(`${d.tag}:${d.kind}`);
      const sample = record.values[tag.name];
      if (!sample || typeof sample.v !== "number" || !Number.isFinite(sample.v) || sample.q === "bad") continue;
      const value = sample.v;
      const previous = track.history.get(tag.name);
      const changedAt = previous === undefined || previous.value !== value ? record.ts : previous.changedAt;
      if (previous === undefined || record.ts > previous.ts) track.history.set(tag.name, { value, ts: record.ts, changedAt });
      for (const definition of definitions) {
        const measured = this.#measure(definition, value, previous, record.ts, changedAt);
        if (!measured) continue;
        const key = `${definition.tag}:${definition.kind}`;
        let slot = track.conditions.get(key);
        if (!slot) {
          slot = { debounce: new DebouncedCondition(), published: null };
          track.conditions.set(key, slot);
        }
        slot.debounce.update(measured.position, record.ts, definition.onDelayMs, definition.offDelayMs);
        const transition = this.#publish(record.device, slot, definition, suppressed, measured.value, record.ts, measured.describe(slot.debounce.active), track.runState);
        if (transition) out.push(transition);
      }
    }

    // A condition the registry no longer defines (a limit was removed) must not stay active forever.
    for (const [key, slot] of track.conditions) {
      if (defined.has(key)) continue;
      track.conditions.delete(key);
      if (!slot.published?.active) continue;
      const [tag, kind] = [key.slice(0, key.lastIndexOf(":")), key.slice(key.lastIndexOf(":") + 1) as AlarmKind];
      out.push(this.#transition(record.device, tag, kind, DEFAULT_SEVERITY[kind], false, false, 0, 0, record.ts, `${tag}: ${KIND_LABEL[kind]} is no longer defined in the device registry`));
    }
    return out;
  }

  /** A device's birth (online) or death (offline) message. Only devices this evaluator watches are judged. */
  deviceState(device: string, state: "online" | "offline", at: number): AlarmTransition[] {
    const track = this.#tracks.get(device);
    if (!track) return [];
    if (state === "offline") track.offline = true;
    else if (track.offline) {
      track.offline = false;
      track.awaitingData = true;
    }
    const comm = this.#evaluateComm(device, track, at);
    return comm ? [comm] : [];
  }

  /** Called periodically: raises communication loss for devices that fell silent. */
  tick(now: number): AlarmTransition[] {
    const out: AlarmTransition[] = [];
    for (const [device, track] of this.#tracks) {
      const comm = this.#evaluateComm(device, track, now);
      if (comm) out.push(comm);
    }
    return out;
  }

  /** The silence after which a device counts as lost: N of its scan cycles, at least the minimum. */
  commTimeoutMs(device: string): number {
    const track = this.#tracks.get(device);
    return track ? this.#commTimeout(track) : this.#commMinMs;
  }

  #track(device: string): DeviceTrack {
    let track = this.#tracks.get(device);
    if (!track) {
      track = { runState: null, conditions: new Map(), history: new Map(), lastArrival: null, lastTs: null, periodMs: null, offline: false, awaitingData: false, comm: null };
      this.#tracks.set(device, track);
    }
    return track;
  }

  #noteArrival(track: DeviceTrack, ts: number, arrivedAt: number): void {
    if (!track.offline) track.awaitingData = false;
    track.lastArrival = Math.max(track.lastArrival ?? arrivedAt, arrivedAt);
    if (track.lastTs !== null) {
      const dt = ts - track.lastTs;
      // A gap (the device was away) says nothing about its scan cycle.
      if (dt > 0 && (track.periodMs === null || dt <= 3 * track.periodMs)) track.periodMs = track.periodMs === null ? dt : 0.8 * track.periodMs + 0.2 * dt;
    }
    track.lastTs = Math.max(track.lastTs ?? ts, ts);
  }

  #commTimeout(track: DeviceTrack): number {
    return track.periodMs === null ? this.#commMinMs : Math.max(this.#commMinMs, this.#commCycles * track.periodMs);
  }

  #evaluateComm(device: string, track: DeviceTrack, now: number): AlarmTransition | null {
    // Until this evaluator has seen data (e.g. after a restart), silence says nothing.
    if (track.lastArrival === null && !track.offline) return null;
    const timeout = this.#commTimeout(track);
    const silentFor = track.lastArrival === null ? 0 : Math.max(0, now - track.lastArrival);
    const active = track.offline || track.awaitingData || silentFor > timeout;
    const desired = { active, suppressed: false };
    if (!shouldPublish(track.comm, desired)) return null;
    track.comm = desired;
    const why = !active
      ? "data received again"
      : track.offline
        ? "device offline (death message)"
        : track.awaitingData
          ? "device online again (birth message), no data yet"
        : `no data for ${Math.round(silentFor)} ms (${this.#commCycles} scan cycles of ${Math.round(track.periodMs ?? 0)} ms, at least ${this.#commMinMs} ms)`;
    return this.#transition(device, DEVICE_TAG, "comm", DEFAULT_SEVERITY.comm, active, false, Math.round(silentFor), Math.round(timeout), now, why);
  }

  #measure(
    definition: ConditionDefinition,
    value: number,
    previous: TagHistory | undefined,
    ts: number,
    changedAt: number,
  ): { value: number; position: { beyond: boolean; inside: boolean }; describe: (active: boolean) => string } | null {
    const { tag, unit, kind, limit } = definition;
    switch (kind) {
      case "roc": {
        if (!previous || ts <= previous.ts) return null;
        const rate = (Math.abs(value - previous.value) * 1000) / (ts - previous.ts);
        return {
          value: round(rate),
          position: { beyond: rate > limit, inside: rate <= limit },
          describe: (active) => `${tag} changing at ${round(rate)} ${unit}${active ? ", beyond" : ", within"} the limit of ${limit} ${unit}`,
        };
      }
      case "stuck": {
        const stuckFor = ts - changedAt;
        return {
          value: stuckFor,
          position: { beyond: stuckFor >= limit, inside: stuckFor === 0 },
          describe: (active) => (active ? `${tag} unchanged at ${value} for ${stuckFor} ms (limit ${limit} ms)` : `${tag} changing again (${value})`),
        };
      }
      default: {
        const label = KIND_LABEL[kind];
        const high = kind === "hi" || kind === "hihi";
        return {
          value,
          position: limitPosition(kind, value, limit, definition.deadband),
          describe: (active) => (active ? `${tag} ${value} ${unit} ${high ? "above" : "below"} ${label} ${limit}` : `${tag} ${value} ${unit} back inside ${label} ${limit}`),
        };
      }
    }
  }

  #publish(device: string, slot: ConditionSlot, definition: ConditionDefinition, suppressed: boolean, value: number, ts: number, why: string, runState: string | null): AlarmTransition | null {
    const desired = { active: slot.debounce.active, suppressed };
    if (!shouldPublish(slot.published, desired)) return null;
    slot.published = desired;
    const message = suppressed ? `${why}; suppressed: run state ${runState}` : why;
    return this.#transition(device, definition.tag, definition.kind, definition.severity, desired.active, suppressed, value, definition.limit, ts, message);
  }

  #transition(device: string, tag: string, kind: AlarmKind, severity: AlarmSeverity, active: boolean, suppressed: boolean, value: number, limit: number, ts: number, message: string): AlarmTransition {
    return { type: "condition", alarmId: alarmIdOf(device, tag, kind), device, tag, kind, state: active ? "active" : "cleared", value, limit, ts, severity, suppressed, message };
  }
}

/**
 * A source of alarm conditions on the telemetry stream. The condition evaluator above is the
 * first; learned detectors (src/anomaly) plug in as further sources emitting kind "anomaly",
 * and their transitions go through the same alarm lifecycle.
 */
export interface ConditionSource {
  readonly name: string;
  evaluate(record: TelemetryRecord, tags: readonly TagDefinition[], arrivedAt: number): AlarmTransition[];
}
