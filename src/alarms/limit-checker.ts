// The building blocks of a limit condition: which side of a limit a value is on (with a
// deadband), and a debounce that holds a change back for the on- and off-delays.
import type { LimitKind, TagDefinition } from "../shared/types.ts";

/** Fraction of a tag's engineering span (or of the limit, without a span) used as the default deadband. */
export const DEFAULT_DEADBAND_FRACTION = 0.01;

/** The deadband a tag's alarms use: its own setting, else a fraction of its span. */
export function deadbandOf(tag: TagDefinition, limit: number, fraction = DEFAULT_DEADBAND_FRACTION): number {
  if (tag.alarm?.deadband !== undefined) return tag.alarm.deadband;
  const span = tag.min !== undefined && tag.max !== undefined ? tag.max - tag.min : Math.abs(limit);
  return span * fraction;
}

/**
 * Where a value stands against a limit: `beyond` it (the condition would raise), or back `inside`
 * by more than the deadband (the condition may return). A value in the deadband is neither.
 */
export function limitPosition(kind: LimitKind, value: number, limit: number, deadband: number): { beyond: boolean; inside: boolean } {
  if (kind === "hi" || kind === "hihi") return { beyond: value > limit, inside: value < limit - deadband };
  return { beyond: value < limit, inside: value > limit + deadband };
}

export type DebouncedChange = "raised" | "returned";

/**
 * A two-state condition with on- and off-delays, in the time of the samples (not the wall clock):
 * it raises once the input has been beyond for `onDelayMs` without a break, and returns once it
 * has been inside for `offDelayMs` without a break. A zero delay acts on the first sample.
 */
export class DebouncedCondition {
  active: boolean;
  /** When the input started to disagree with `active` (null when it agrees). */
  #pendingSince: number | null = null;

  constructor(active = false) {
    this.active = active;
  }

  /** Feeds one sample; returns the change it completes, if any. */
  update(position: { beyond: boolean; inside: boolean }, ts: number, onDelayMs: number, offDelayMs: number): DebouncedChange | null {
    const towardChange = this.active ? position.inside : position.beyond;
    if (!towardChange) {
      this.#pendingSince = null;
      return null;
    }
    this.#pendingSince ??= ts;
    if (ts - this.#pendingSince < (this.active ? offDelayMs : onDelayMs)) return null;
    this.#pendingSince = null;
    this.active = !this.active;
    return this.active ? "raised" : "returned";
  }
}
