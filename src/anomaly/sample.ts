// Helpers shared by the detectors: reading a sample, naming tags, picking the tags to explain.
import type { Sample, TagDeviation } from "./types.ts";

export function dimOf(x: Sample): number {
  return Array.isArray(x) ? x.length : 1; // a number, or a missing value (undefined, null) of one tag
}

/** The i-th value of a sample, or NaN when it is missing or not a finite number. */
export function valueAt(x: Sample, i: number): number {
  const v = Array.isArray(x) ? x[i] : i === 0 ? x : NaN;
  return typeof v === "number" && Number.isFinite(v) ? v : NaN;
}

/**
 * Fixes the dimension on the first sample (or from the tag names). A shorter sample later means
 * the trailing tags are missing; a longer one is a wiring error.
 */
export function checkDim(expected: number, x: Sample, kind: string): void {
  const d = dimOf(x);
  if (d > expected) throw new RangeError(`${kind}: sample has ${d} values, the detector was set up for ${expected}`);
}

export function tagName(tags: readonly string[] | undefined, i: number): string {
  return tags?.[i] ?? String(i);
}

/** Indices of the k largest keys, largest first (k is small: a partial insertion sort). */
export function topIndices(keys: ArrayLike<number>, k: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < keys.length; i++) {
    const v = keys[i] as number;
    if (!(v > 0) && out.length >= k) continue;
    let j = out.length;
    while (j > 0 && (keys[out[j - 1] as number] as number) < v) j--;
    if (j < k) {
      out.splice(j, 0, i);
      if (out.length > k) out.pop();
    }
  }
  return out;
}

export function deviation(tags: readonly string[] | undefined, i: number, value: number, expected: number, z: number, share?: number): TagDeviation {
  const dev: TagDeviation = { tag: tagName(tags, i), value: Number.isFinite(value) ? value : null, expected, z };
  if (share !== undefined) dev.share = share;
  return dev;
}

export function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}
