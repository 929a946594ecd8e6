// Fault injection with ground truth. Sensor faults (drift, spike, stuck, noise, offset) change what
// one tag's sensor reports; process faults (overheat, bearing-wear, leak) change the physics.

import type { FaultSpec, FaultType, GroundTruthRecord } from "../shared/types.ts";
import type { Disturbances, ProcessFaultType, ProcessModel } from "./model.ts";
import { isProcessFaultType } from "./model.ts";
import { deriveSeed, Random } from "./random.ts";
import { NO_EFFECT, type SensorEffect } from "./sensor.ts";
import { faultScale, type TagSpec } from "./tags.ts";

export const FAULT_TYPES: readonly FaultType[] = ["drift", "spike", "stuck", "noise", "offset", "overheat", "bearing-wear", "leak"];
export type SensorFaultType = Exclude<FaultType, ProcessFaultType>;

/** Chance per scan of a spike after the first one (which always comes on the fault's first scan). */
const SPIKE_CHANCE_BASE = 0.05;
const SPIKE_CHANCE_PER_SEVERITY = 0.15;
/** Extra noise standard deviation at severity 1, as a fraction of the tag's fault magnitude. */
const NOISE_BURST_FRACTION = 0.25;
/** Ground-truth records an actor keeps (oldest dropped first). */
export const HISTORY_LIMIT = 1000;

/** A fault that cannot be injected; `message` says why. */
export class FaultSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FaultSpecError";
  }
}

interface InjectedFault {
  record: GroundTruthRecord;
  /** The tag a sensor fault acts on (undefined for process faults). */
  tag: TagSpec | undefined;
  direction: 1 | -1;
  magnitude: number;
  rng: Random;
  spikes: number;
  lastScanSpiked: boolean;
}

function isActive(record: GroundTruthRecord, nowMs: number): boolean {
  return record.start <= nowMs && nowMs < record.end;
}

function progress(record: GroundTruthRecord, nowMs: number): number {
  const span = record.end - record.start;
  return span > 0 ? Math.min(1, Math.max(0, (nowMs - record.start) / span)) : 1;
}

/** The faults of one PLC: scheduled, active and past (as ground truth). */
export class FaultSet {
  readonly #device: string;
  readonly #model: ProcessModel;
  readonly #seed: number;
  #faults: InjectedFault[] = [];
  #history: GroundTruthRecord[] = [];
  #counter = 0;

  constructor(device: string, model: ProcessModel, seed: number) {
    this.#device = device;
    this.#model = model;
    this.#seed = seed;
  }

  /** Validates and schedules a fault; returns its ground truth. Throws FaultSpecError. */
  inject(spec: FaultSpec, nowMs: number): GroundTruthRecord {
    if (spec.device !== this.#device) throw new FaultSpecError(`fault for ${spec.device} sent to PLC ${this.#device}`);
    if (!FAULT_TYPES.includes(spec.type)) throw new FaultSpecError(`unknown fault type "${spec.type}" (known: ${FAULT_TYPES.join(", ")})`);
    if (!Number.isFinite(spec.severity) || spec.severity < 0 || spec.severity > 1) throw new FaultSpecError(`severity must be from 0 to 1, got ${spec.severity}`);
    if (!Number.isFinite(spec.durationMs) || spec.durationMs <= 0) throw new FaultSpecError(`durationMs must be positive, got ${spec.durationMs}`);
    const start = spec.start ?? nowMs;
    if (!Number.isFinite(start)) throw new FaultSpecError(`start must be epoch milliseconds, got ${spec.start}`);

    let tags: string[];
    let tag: TagSpec | undefined;
    if (isProcessFaultType(spec.type)) {
      const affected = this.#model.processFaultTags[spec.type];
      if (!affected) {
        throw new FaultSpecError(`${spec.type} is not a fault of a ${this.#model.machineType} (it has: ${this.#supportedProcessFaults().join(", ") || "none"})`);
      }
      tags = [...affected];
    } else {
      const name = spec.tag ?? this.#model.primaryTag;
      tag = this.#model.tags.find((t) => t.name === name);
      if (!tag) throw new FaultSpecError(`${this.#device} has no tag "${name}" (tags: ${this.#model.tags.map((t) => t.name).join(", ")})`);
      if (tag.kind !== "analog") throw new FaultSpecError(`tag "${name}" is a ${tag.kind}, sensor faults act on analog tags only`);
      tags = [name];
    }

    this.#counter += 1;
    const faultId = `${this.#device}-${start}-${this.#counter}`;
    const record: GroundTruthRecord = { faultId, device: this.#device, type: spec.type, tags, start, end: start + spec.durationMs, severity: spec.severity };
    const { direction, magnitude } = tag ? faultScale(tag) : { direction: 1 as const, magnitude: 0 };
    // The history holds the same record object, so clearing the fault corrects it there too.
    this.#faults.push({ record, tag, direction, magnitude, rng: new Random(deriveSeed(this.#seed, faultId)), spikes: 0, lastScanSpiked: false });
    this.#remember(record);
    return { ...record };
  }

  /** Ends every scheduled or active fault now; returns their corrected ground truth. */
  clear(nowMs: number): GroundTruthRecord[] {
    const cleared: GroundTruthRecord[] = [];
    for (const fault of this.#faults) {
      if (fault.record.end <= nowMs) continue;
      // A fault that has not started yet never happens: its window shrinks to nothing.
      fault.record.end = Math.max(fault.record.start, nowMs);
      cleared.push({ ...fault.record });
    }
    this.#faults = [];
    return cleared;
  }

  /** Faults scheduled or active at `nowMs`. */
  pending(nowMs: number): GroundTruthRecord[] {
    return this.#faults.filter((f) => f.record.end > nowMs).map((f) => ({ ...f.record }));
  }

  history(): GroundTruthRecord[] {
    return this.#history.map((r) => ({ ...r }));
  }

  /** Process faults active at `nowMs`, the strongest of each type. */
  disturbances(nowMs: number): Disturbances {
    const result: Disturbances = {};
    for (const fault of this.#faults) {
      const { record } = fault;
      if (!isProcessFaultType(record.type) || !isActive(record, nowMs)) continue;
      const current = result[record.type];
      if (current && current.severity >= record.severity) continue;
      result[record.type] = { severity: record.severity, progress: progress(record, nowMs), durationS: (record.end - record.start) / 1000 };
    }
    return result;
  }

  /**
   * What sensor faults do to `tag` in the scan at `nowMs`. Call once per tag per scan: spikes
   * are decided here (the first scan of a spike fault always spikes, then never two in a row).
   */
  sensorEffect(tag: string, nowMs: number): SensorEffect {
    let effect: SensorEffect | undefined;
    for (const fault of this.#faults) {
      if (fault.tag?.name !== tag || !isActive(fault.record, nowMs)) continue;
      effect ??= { ...NO_EFFECT };
      const { severity } = fault.record;
      const full = fault.direction * severity * fault.magnitude;
      switch (fault.record.type as SensorFaultType) {
        case "drift":
          effect.bias += full * progress(fault.record, nowMs);
          break;
        case "offset":
          effect.bias += full;
          break;
        case "noise":
          effect.extraNoise += severity * NOISE_BURST_FRACTION * fault.magnitude;
          break;
        case "stuck":
          effect.stuck = true;
          break;
        case "spike":
          effect.bias += this.#spike(fault);
          break;
      }
    }
    return effect ?? NO_EFFECT;
  }

  /** Drops faults that are over (their ground truth stays in the history). */
  expire(nowMs: number): void {
    this.#faults = this.#faults.filter((f) => f.record.end > nowMs);
  }

  #spike(fault: InjectedFault): number {
    const { rng } = fault;
    // Draw the same numbers every scan so the fault's stream does not depend on the outcome.
    const roll = rng.next();
    const size = rng.uniform(0.6, 1);
    const sign = rng.next() < 0.5 ? -1 : 1;
    const chance = SPIKE_CHANCE_BASE + SPIKE_CHANCE_PER_SEVERITY * fault.record.severity;
    const spiking = fault.spikes === 0 || (!fault.lastScanSpiked && roll < chance);
    fault.lastScanSpiked = spiking;
    if (!spiking) return 0;
    fault.spikes += 1;
    return sign * size * fault.record.severity * fault.magnitude;
  }

  #supportedProcessFaults(): string[] {
    return Object.keys(this.#model.processFaultTags);
  }

  #remember(record: GroundTruthRecord): void {
    this.#history.push(record);
    if (this.#history.length > HISTORY_LIMIT) this.#history.splice(0, this.#history.length - HISTORY_LIMIT);
  }
}
