// Learned anomaly alarms: one streaming detector per device (src/anomaly) over its numeric tags,
// its score turned into a condition of kind "anomaly" with hysteresis and on/off delays, suppressed
// like the process alarms while the machine is stopped. The detector only sees samples while the
// machine runs, and not during the start-up transient: a stop, a start or a trip is the plant
// doing what it was told, not an anomaly, and must not be learnt as "normal running" either.
// Pure: sample times come from the records, so tests and the simulator bench drive it directly.
import { createDetector, restoreDetector, type DetectorSnapshot, type DetectorSpec, type Explanation, type StreamingDetector, type TagDeviation } from "../anomaly/index.ts";
import type { AlarmSeverity, AlarmTransition, DeviceAnomalyScore, TagDefinition, TelemetryRecord } from "../shared/types.ts";
import { alarmIdOf, DEFAULT_SEVERITY, DEVICE_TAG } from "./alarm-definitions.ts";
import { DEFAULT_SUPPRESSING_RUN_STATES, type ConditionSource, type RestoredCondition } from "./condition-evaluator.ts";
import { DebouncedCondition } from "./limit-checker.ts";

export interface AnomalyConditionOptions {
  /** The detector each device gets (a level-mode preset, src/anomaly/presets.ts). */
  spec: DetectorSpec;
  /** Score at or above which the condition becomes active. */
  threshold: number;
  /** Score below which an active condition may return (hysteresis); default half the threshold. */
  clearThreshold?: number;
  onDelayMs?: number;
  offDelayMs?: number;
  /** After the machine (re)enters a scored run state, the score must stay below the clear threshold this long before the condition may be raised... */
  settleMs?: number;
  /** ...or this long has passed since the start. */
  recoveryMaxMs?: number;
  runStateTag?: string;
  /** Run states whose samples the detector scores and learns (a device without a run-state tag is always scored). */
  scoredRunStates?: readonly string[];
  suppressingRunStates?: readonly string[];
  severity?: AlarmSeverity;
}

export const DEFAULT_ANOMALY_OFF_DELAY_MS = 30_000;
export const DEFAULT_ANOMALY_SETTLE_MS = 60_000;
export const DEFAULT_ANOMALY_RECOVERY_MAX_MS = 30 * 60_000;
/** Tags listed in an alarm message: the most deviant ones, down to this |z|. */
const MESSAGE_MIN_Z = 3;

/** What the anomaly-detector stores per device (`anomaly_checkpoints`, `_id` = device). */
export interface AnomalyCheckpoint {
  _id: string;
  /** The numeric tags the detector was built for, in sample order. */
  tags: string[];
  detector: DetectorSnapshot;
  /** Samples the detector has learnt from. */
  samples: number;
  runState: string | null;
  recoverUntil: number | null;
  calmSince: number | null;
  last: DeviceAnomalyScore["last"];
  savedAt: number;
}

interface Published {
  active: boolean;
  suppressed: boolean;
}

interface DeviceTrack {
  tags: string[];
  units: Map<string, string>;
  detector: StreamingDetector;
  samples: number;
  runState: string | null;
  /** Recovering from a start until the score stayed below the clear threshold for settleMs (since calmSince), or until this time; null: not recovering. */
  recoverUntil: number | null;
  calmSince: number | null;
  debounce: DebouncedCondition;
  published: Published | null;
  last: DeviceAnomalyScore["last"];
  restored: boolean;
  /** Changed since the last checkpoint. */
  dirty: boolean;
}

function round(value: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** The numeric tags a device's detector watches: counters are running totals, not process values. */
export function scoredTags(tags: readonly TagDefinition[]): TagDefinition[] {
  return tags.filter((t) => t.type === "number" && t.unit !== "count");
}

/** "zone_temp 195.2 °C, expected 180.1 (z +9.1)" for the tags that explain the score. */
export function describeDeviations(deviations: readonly TagDeviation[], units: ReadonlyMap<string, string>): string {
  const shown = deviations.filter((d, i) => i === 0 || Math.abs(d.z) >= MESSAGE_MIN_Z);
  return shown
    .map((d) => {
      const unit = units.get(d.tag) ? ` ${units.get(d.tag)}` : "";
      const value = d.value === null ? "missing" : `${round(d.value, 2)}${unit}`;
      return `${d.tag} ${value}, expected ${round(d.expected, 2)}${unit} (z ${d.z >= 0 ? "+" : ""}${round(d.z, 1)})`;
    })
    .join("; ");
}

function topOf(explanation: Explanation): TagDeviation[] {
  return explanation.tags.map((t) => ({ ...t, value: t.value === null ? null : round(t.value, 4), expected: round(t.expected, 4), z: round(t.z, 2) }));
}

export class AnomalyConditionSource implements ConditionSource {
  readonly name = "anomaly";
  readonly #tracks = new Map<string, DeviceTrack>();
  /** Conditions the alarms service holds active from before a restart, by device. */
  readonly #activeBefore = new Map<string, Published>();
  readonly #spec: DetectorSpec;
  readonly #threshold: number;
  readonly #clearThreshold: number;
  readonly #onDelayMs: number;
  readonly #offDelayMs: number;
  readonly #settleMs: number;
  readonly #recoveryMaxMs: number;
  readonly #runStateTag: string;
  readonly #scored: ReadonlySet<string>;
  readonly #suppressing: ReadonlySet<string>;
  readonly #severity: AlarmSeverity;

  constructor(options: AnomalyConditionOptions) {
    this.#spec = options.spec;
    this.#threshold = options.threshold;
    this.#clearThreshold = options.clearThreshold ?? options.threshold / 2;
    this.#onDelayMs = options.onDelayMs ?? 0;
    this.#offDelayMs = options.offDelayMs ?? DEFAULT_ANOMALY_OFF_DELAY_MS;
    this.#settleMs = options.settleMs ?? DEFAULT_ANOMALY_SETTLE_MS;
    this.#recoveryMaxMs = options.recoveryMaxMs ?? DEFAULT_ANOMALY_RECOVERY_MAX_MS;
    this.#runStateTag = options.runStateTag ?? "state";
    this.#scored = new Set(options.scoredRunStates ?? ["running"]);
    this.#suppressing = new Set(options.suppressingRunStates ?? DEFAULT_SUPPRESSING_RUN_STATES);
    this.#severity = options.severity ?? DEFAULT_SEVERITY.anomaly;
  }

  /** Anomaly alarms active before a restart (from the alarms service), so they are neither raised twice nor left uncleared. */
  restoreActive(active: readonly RestoredCondition[]): void {
    for (const a of active) {
      if (a.kind !== "anomaly") continue;
      const published = { active: true, suppressed: a.suppressed };
      this.#activeBefore.set(a.device, published);
      const track = this.#tracks.get(a.device);
      if (track) {
        track.published = published;
        track.debounce = new DebouncedCondition(true);
      }
    }
  }

  /** Continues a device from its checkpoint (call before its first record on this replica). */
  restoreDevice(checkpoint: AnomalyCheckpoint): void {
    const track = this.#newTrack(checkpoint._id, checkpoint.tags, new Map(), restoreDetector(checkpoint.detector));
    track.samples = checkpoint.samples;
    track.runState = checkpoint.runState;
    track.calmSince = checkpoint.calmSince;
    track.recoverUntil = checkpoint.recoverUntil;
    track.last = checkpoint.last;
    track.restored = true;
  }

  has(device: string): boolean {
    return this.#tracks.has(device);
  }

  devices(): string[] {
    return [...this.#tracks.keys()];
  }

  forget(device: string): void {
    this.#tracks.delete(device);
    this.#activeBefore.delete(device);
  }

  /** Devices whose detector changed since their last checkpoint. */
  dirtyDevices(): string[] {
    return [...this.#tracks].filter(([, t]) => t.dirty).map(([device]) => device);
  }

  /** The device's checkpoint, taken now (synchronously); marks it clean. */
  checkpoint(device: string, now: number): AnomalyCheckpoint | null {
    const track = this.#tracks.get(device);
    if (!track) return null;
    track.dirty = false;
    return { _id: device, tags: track.tags, detector: track.detector.snapshot(), samples: track.samples, runState: track.runState, recoverUntil: track.recoverUntil, calmSince: track.calmSince, last: track.last, savedAt: now };
  }

  /** Marks a checkpoint that could not be written as still to be written. */
  markDirty(device: string): void {
    const track = this.#tracks.get(device);
    if (track) track.dirty = true;
  }

  score(device: string): DeviceAnomalyScore | null {
    const track = this.#tracks.get(device);
    if (!track) return null;
    return {
      device,
      score: track.last?.score ?? 0,
      active: track.published?.active ?? false,
      suppressed: track.published?.suppressed ?? false,
      threshold: this.#threshold,
      warmingUp: track.last?.warmingUp ?? true,
      samples: track.samples,
      runState: track.runState,
      restored: track.restored,
      tags: track.tags,
      last: track.last,
    };
  }

  scores(): DeviceAnomalyScore[] {
    return this.devices().map((d) => this.score(d) as DeviceAnomalyScore);
  }

  evaluate(record: TelemetryRecord, tags: readonly TagDefinition[], _arrivedAt: number): AlarmTransition[] {
    const numeric = scoredTags(tags);
    let track = this.#tracks.get(record.device);
    // A changed tag list needs a new detector: the sample vector means something else now.
    if (!track || track.tags.length !== numeric.length || track.tags.some((t, i) => t !== numeric[i]?.name)) {
      const names = numeric.map((t) => t.name);
      track = this.#newTrack(record.device, names, new Map(), createDetector(this.#spec, { tags: names }));
    }
    for (const t of numeric) track.units.set(t.name, t.unit);

    const previous = track.runState;
    const runState = record.values[this.#runStateTag];
    if (runState && typeof runState.v === "string") track.runState = runState.v;
    const scoredState = track.runState === null || this.#scored.has(track.runState);
    // A (re)start: the process needs time to reach its operating point again (a cooled machine warms
    // up over minutes). The detector keeps scoring (so its pre-filter follows), but the condition
    // may not be raised until the score has stayed low for settleMs, or recoveryMaxMs have passed.
    if (scoredState && previous !== null && !this.#scored.has(previous)) {
      track.recoverUntil = record.ts + this.#recoveryMaxMs;
      track.calmSince = null;
    }
    const suppressed = track.runState !== null && this.#suppressing.has(track.runState);
    // Stopped, starting, stopping or tripped: nothing to learn about normal running. The condition
    // keeps its state; only the suppression follows the run state.
    if (!scoredState) return this.#publish(record.device, track, suppressed, record.ts, null);

    const values = track.tags.map((name) => {
      const sample = record.values[name];
      return sample && typeof sample.v === "number" && sample.q !== "bad" ? sample.v : NaN;
    });
    const result = track.detector.update(values, record.ts);
    track.samples++;
    track.dirty = true;
    track.last = { ts: record.ts, score: round(result.score, 4), warmingUp: result.explanation.warmingUp, tags: topOf(result.explanation) };
    if (track.recoverUntil !== null) {
      track.calmSince = result.score < this.#clearThreshold ? (track.calmSince ?? record.ts) : null;
      if ((track.calmSince !== null && record.ts - track.calmSince >= this.#settleMs) || record.ts >= track.recoverUntil) track.recoverUntil = track.calmSince = null;
    }
    const beyond = result.score >= this.#threshold && track.recoverUntil === null;
    track.debounce.update({ beyond, inside: result.score < this.#clearThreshold }, record.ts, this.#onDelayMs, this.#offDelayMs);
    return this.#publish(record.device, track, suppressed, record.ts, result.score);
  }

  #newTrack(device: string, tags: string[], units: Map<string, string>, detector: StreamingDetector): DeviceTrack {
    const before = this.#activeBefore.get(device) ?? null;
    const track: DeviceTrack = {
      tags,
      units,
      detector,
      samples: 0,
      runState: null,
      recoverUntil: null,
      calmSince: null,
      debounce: new DebouncedCondition(before?.active ?? false),
      published: before,
      last: null,
      restored: false,
      dirty: true,
    };
    this.#tracks.set(device, track);
    return track;
  }

  #publish(device: string, track: DeviceTrack, suppressed: boolean, ts: number, score: number | null): AlarmTransition[] {
    const desired = { active: track.debounce.active, suppressed };
    const published = track.published;
    const changed =
      published === null ? desired.active : published.active !== desired.active || (desired.active ? published.suppressed !== suppressed : published.suppressed && !suppressed);
    if (!changed) return [];
    track.published = desired;
    const value = round(score ?? track.last?.score ?? 0);
    const deviations = describeDeviations(track.last?.tags ?? [], track.units);
    let message = desired.active
      ? `anomaly score ${value} ≥ ${this.#threshold}: ${deviations}`
      : `back to normal: anomaly score ${value} below ${round(this.#clearThreshold)} for ${this.#offDelayMs / 1000} s (${deviations})`;
    if (suppressed) message += `; suppressed: run state ${track.runState}`;
    return [
      { type: "condition", alarmId: alarmIdOf(device, DEVICE_TAG, "anomaly"), device, tag: DEVICE_TAG, kind: "anomaly", state: desired.active ? "active" : "cleared", value, limit: this.#threshold, ts, severity: this.#severity, suppressed, message },
    ];
  }
}
