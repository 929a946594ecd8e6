// The contract every machine's process model fulfils. Models compute the true process values;
// sensor noise, quantization and sensor faults are added later by the actor's sensor layer.

import type { TagValue } from "../shared/types.ts";
import type { Random } from "./random.ts";
import type { TagSpec } from "./tags.ts";

export const MACHINE_TYPES = ["press", "oven", "pump", "conveyor", "compressor"] as const;
export type MachineType = (typeof MACHINE_TYPES)[number];

export function isMachineType(value: string): value is MachineType {
  return (MACHINE_TYPES as readonly string[]).includes(value);
}

/**
 * How the PLC drives the machine: `run` (starting or running), `stop` (orderly stop, and at rest
 * when stopped), `trip` (faulted: everything de-energized at once, no orderly sequence).
 */
export type DriveMode = "run" | "stop" | "trip";

/** Faults that change the physics (sensor faults act on the measured value instead). */
export type ProcessFaultType = "overheat" | "bearing-wear" | "leak";

export function isProcessFaultType(value: string): value is ProcessFaultType {
  return value === "overheat" || value === "bearing-wear" || value === "leak";
}

/** An active process fault as a model sees it. */
export interface ProcessFault {
  /** 0..1 */
  severity: number;
  /** Fraction of the fault's duration elapsed, 0..1. */
  progress: number;
  /** Total duration in seconds: faults develop within it (their evolution is compressed in time). */
  durationS: number;
}

export type Disturbances = Partial<Record<ProcessFaultType, ProcessFault>>;

export interface ProcessModel {
  readonly machineType: MachineType;
  /** The machine's tags (the actor adds the run-state tag). */
  readonly tags: readonly TagSpec[];
  /** Tag that sensor faults act on when a fault names no tag. */
  readonly primaryTag: string;
  /** Process faults this machine type can have, and the tags each one moves. */
  readonly processFaultTags: Partial<Record<ProcessFaultType, readonly string[]>>;
  /** Writes a setpoint; the actor has already checked the tag is a setpoint and the value in range. */
  setSetpoint(tag: string, value: number): void;
  /** Advances the physics by `dt` seconds (the actor keeps dt small by sub-stepping). */
  step(dt: number, mode: DriveMode, disturbances: Disturbances): void;
  /** At its operating point: `starting` may become `running`. */
  isUp(): boolean;
  /** At rest: `stopping` may become `stopped`. */
  isDown(): boolean;
  /** Why the protection trips the machine now (a process value past its trip limit), or null. */
  tripReason(): string | null;
  /** True process values of every tag (setpoints echoed, counters as integers). */
  values(): Record<string, TagValue>;
}

/** Builds a model; `warm` starts it at its running operating point instead of at rest. */
export type ModelFactory = (rng: Random, warm: boolean) => ProcessModel;
