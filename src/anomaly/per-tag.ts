// The skeleton shared by the per-tag detectors (cusum, page-hinkley, robust-z, volatility,
// seasonal-z): option defaults, the per-tag update loop (dimension check, lazy tag state, missing
// values, smoothing, warm-up flag, best tag), the top-tags explanation and snapshot/restore.
import { checkDim, deviation, dimOf, plain, topIndices, valueAt } from "./sample.ts";
import type { CommonOptions, DetectorSnapshot, Sample, TagDeviation } from "./types.ts";

export interface PerTagDefaults {
  warmup: number;
  zHalf: number;
  smooth: number;
  topTags: number;
}

/** The option defaults every per-tag detector shares (`warmup` differs by detector). */
export function perTagDefaults(options: CommonOptions & { smooth?: number }, warmup = 100): PerTagDefaults {
  return { warmup: options.warmup ?? warmup, zHalf: options.zHalf ?? 6, smooth: options.smooth ?? 1, topTags: options.topTags ?? 3 };
}

export interface PerTagState<T> {
  d: number;
  tags: T[];
}

/** Empty state: the dimension comes from the tag names, or from the first sample. */
export function newPerTagState<T>(options: CommonOptions): PerTagState<T> {
  return { d: options.tags?.length ?? 0, tags: [] };
}

/** Fixes the dimension on the first sample and rejects longer samples later. */
export function fixDim(st: { d: number }, x: Sample, kind: string): void {
  if (st.d === 0) st.d = dimOf(x);
  checkDim(st.d, x, kind);
}

/** What one pass of the per-tag loop found. */
export interface PerTagPass {
  /** Largest statistic (0 when none is positive) and its tag (-1 when none). */
  best: number;
  bestTag: number;
  warmingUp: boolean;
  /** Per tag, the signed z and the baseline shown in the explanation. */
  zs: number[];
  expected: number[];
}

export interface PerTagLoop<T> {
  kind: string;
  newTag: () => T;
  /** Baseline shown for a tag before (or without) its step: missing values keep it. */
  expectedOf: (tag: T) => number;
  /** EWMA pre-filter rate, applied to `tag.sm`; undefined: the raw value is used and no `sm` is kept. */
  smooth?: number;
  /**
   * The detector-specific part for one present value v (smoothed when `smooth` is set). Returns
   * the tag's statistic (0 while warming up), may set pass.zs[i], pass.expected[i], pass.warmingUp.
   */
  step: (tag: T, v: number, i: number, pass: PerTagPass) => number;
}

/** Runs `loop.step` on every present tag value of x; `stat` receives the statistic per tag. */
export function runPerTag<T>(st: PerTagState<T>, x: Sample, stat: number[], loop: PerTagLoop<T>): PerTagPass {
  fixDim(st, x, loop.kind);
  while (st.tags.length < st.d) st.tags.push(loop.newTag());
  const pass: PerTagPass = { best: 0, bestTag: -1, warmingUp: false, zs: new Array<number>(st.d), expected: new Array<number>(st.d) };
  const smooth = loop.smooth;
  for (let i = 0; i < st.d; i++) {
    const tag = st.tags[i] as T;
    const raw = valueAt(x, i);
    stat[i] = 0;
    pass.zs[i] = 0;
    pass.expected[i] = loop.expectedOf(tag);
    if (Number.isNaN(raw)) continue; // missing: no learning, no evidence
    let v = raw;
    if (smooth !== undefined) {
      const t = tag as { sm: number };
      t.sm = Number.isNaN(t.sm) ? raw : t.sm + smooth * (raw - t.sm);
      v = t.sm;
    }
    const s = loop.step(tag, v, i, pass);
    stat[i] = s;
    if (s > pass.best) {
      pass.best = s;
      pass.bestTag = i;
    }
  }
  stat.length = st.d;
  return pass;
}

/** The deviations of the tags at `indices`. */
export function deviationsAt(names: readonly string[] | undefined, x: Sample, indices: readonly number[], expected: readonly number[], zs: readonly number[]): TagDeviation[] {
  return indices.map((i) => deviation(names, i, valueAt(x, i), expected[i] as number, zs[i] as number));
}

/** The `topTags` tags with the largest statistic, most deviant first. */
export function topDeviations(names: readonly string[] | undefined, x: Sample, stat: readonly number[], topTags: number, expected: readonly number[], zs: readonly number[]): TagDeviation[] {
  return deviationsAt(names, x, topIndices(stat, topTags), expected, zs);
}

export function snapshotOf(kind: string, options: object, state: unknown): DetectorSnapshot {
  return { kind, version: 1, options: plain(options) as Record<string, unknown>, state: plain(state) };
}

/** JSON turns NaN into null: back to NaN. */
export function nanFromNull(values: readonly (number | null)[]): number[] {
  return values.map((v) => (v === null ? NaN : v));
}

/** A per-tag state from a snapshot, with each tag's pre-filtered value `sm` back to NaN where JSON made it null. */
export function restorePerTag<S extends { tags: { sm: number }[] }>(state: unknown): S {
  const st = plain(state) as S;
  for (const tag of st.tags) if (tag.sm === null) tag.sm = NaN;
  return st;
}
