// Tag specifications of the simulated machines: the published TagDefinition plus what the
// simulator needs to fake a sensor (noise, resolution) and to size faults (normal band).

import type { TagDefinition } from "../shared/types.ts";

/**
 * analog: a measured value (noise, quantization, sensor faults apply);
 * setpoint: an operator-written value echoed by the PLC; counter: a non-negative integer;
 * status: a boolean or string state.
 */
export type TagKind = "analog" | "setpoint" | "counter" | "status";

export interface TagSpec extends TagDefinition {
  kind: TagKind;
  /** Standard deviation of the sensor's Gaussian noise, in the tag's unit. */
  noise?: number;
  /** Sensor resolution (quantization step), in the tag's unit. */
  resolution?: number;
  /** Band the value stays in during healthy running with the default setpoints: [low, high]. */
  normal?: [number, number];
}

/** The run state, published with every scan as a string tag. */
export const STATE_TAG: TagSpec = { name: "state", unit: "", type: "string", kind: "status" };

export function toTagDefinition(spec: TagSpec): TagDefinition {
  const def: TagDefinition = { name: spec.name, unit: spec.unit, type: spec.type };
  if (spec.min !== undefined) def.min = spec.min;
  if (spec.max !== undefined) def.max = spec.max;
  if (spec.lo !== undefined) def.lo = spec.lo;
  if (spec.hi !== undefined) def.hi = spec.hi;
  return def;
}

/**
 * How a fault pushes this tag at severity 1: `direction` toward the alarm limit (+1 toward hi,
 * -1 toward lo) and a `magnitude` that carries any value of the normal band one full margin past
 * the limit (margin = distance from the band's edge to the limit). Tags without limits move by a
 * tenth of their engineering range.
 */
export function faultScale(spec: TagSpec): { direction: 1 | -1; magnitude: number } {
  const [low, high] = spec.normal ?? [spec.min ?? 0, spec.max ?? 0];
  if (spec.hi !== undefined) return { direction: 1, magnitude: spec.hi - low + (spec.hi - high) };
  if (spec.lo !== undefined) return { direction: -1, magnitude: high - spec.lo + (low - spec.lo) };
  const span = (spec.max ?? 0) - (spec.min ?? 0);
  return { direction: 1, magnitude: span > 0 ? span / 10 : 1 };
}

/** Distance from the top of the normal band to the hi limit (what a process fault must overcome). */
export function hiMargin(spec: TagSpec): number {
  if (spec.hi === undefined || spec.normal === undefined) throw new Error(`tag ${spec.name} has no hi limit and normal band`);
  return spec.hi - spec.normal[1];
}
