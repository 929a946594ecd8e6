// The sensor between the process and the PLC's published value: Gaussian noise, resolution,
// engineering range, and what sensor faults do to the reading.

import type { TagValue } from "../shared/types.ts";
import { clamp, quantize } from "./dynamics.ts";
import type { TagSpec } from "./tags.ts";

/** What active sensor faults do to one tag during one scan. */
export interface SensorEffect {
  /** Added to the process value (drift, offset, spike). */
  bias: number;
  /** Extra Gaussian noise in the tag's unit (noise burst). */
  extraNoise: number;
  /** The reading is frozen (stuck sensor). */
  stuck: boolean;
}

export const NO_EFFECT: SensorEffect = { bias: 0, extraNoise: 0, stuck: false };

/**
 * One reading. `gaussian` and `extraGaussian` are standard normal draws the caller always takes,
 * so a fault on one tag never shifts the random stream of the others. `frozen` is the reading a
 * stuck sensor repeats.
 */
export function measure(spec: TagSpec, value: TagValue, gaussian: number, effect: SensorEffect, extraGaussian: number, frozen: TagValue | undefined): TagValue {
  if (typeof value !== "number") return value;
  if (spec.kind === "counter") return Math.max(0, Math.round(value));
  if (spec.kind !== "analog") return value;
  if (effect.stuck && frozen !== undefined) return frozen;
  const reading = value + effect.bias + (spec.noise ?? 0) * gaussian + effect.extraNoise * extraGaussian;
  return quantize(clamp(reading, spec.min ?? -Infinity, spec.max ?? Infinity), spec.resolution);
}
