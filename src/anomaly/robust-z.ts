// Robust baseline detector: per tag, a robust EWMA location and scale (robust-level.ts); the score
// is the largest squashed |robust z| over the device's tags. Catches spikes, level shifts and
// drifts until the baseline has absorbed them. O(1) per tag and sample.
import { DEFAULT_LEVEL, definedLevelParams, learn, newLevel, squash, zOf } from "./robust-level.ts";
import type { LevelParams, LevelState } from "./robust-level.ts";
import { checkDim, deviation, dimOf, plain, topIndices, valueAt } from "./sample.ts";
import type { CommonOptions, DetectorResult, DetectorSnapshot, Sample, StreamingDetector } from "./types.ts";

export interface RobustZOptions extends CommonOptions, Partial<LevelParams> {
  /** EWMA pre-filter of each value (1 = none); 0.2 averages about 9 samples against sensor noise. */
  smooth?: number;
}

interface TagState {
  level: LevelState;
  /** Pre-filtered value (NaN before the first sample). */
  sm: number;
}

interface RobustZState {
  d: number;
  tags: TagState[];
}

export class RobustZDetector implements StreamingDetector {
  readonly kind = "robust-z";
  readonly options: RobustZOptions;
  private readonly p: LevelParams;
  private readonly warmup: number;
  private readonly zHalf: number;
  private readonly smooth: number;
  private readonly topTags: number;
  private st: RobustZState;
  private readonly absZ: number[] = [];

  constructor(options: RobustZOptions = {}) {
    this.options = options;
    this.warmup = options.warmup ?? 100;
    this.p = { ...DEFAULT_LEVEL, warmup: this.warmup, ...definedLevelParams(options) };
    this.zHalf = options.zHalf ?? 6;
    this.smooth = options.smooth ?? 1;
    this.topTags = options.topTags ?? 3;
    this.st = { d: options.tags?.length ?? 0, tags: [] };
  }

  update(x: Sample, _t?: number): DetectorResult {
    const st = this.st;
    if (st.d === 0) st.d = dimOf(x);
    checkDim(st.d, x, this.kind);
    while (st.tags.length < st.d) st.tags.push({ level: newLevel(), sm: NaN });
    let score = 0;
    let warmingUp = false;
    const zs: number[] = new Array<number>(st.d);
    const expected: number[] = new Array<number>(st.d);
    for (let i = 0; i < st.d; i++) {
      const tag = st.tags[i] as TagState;
      const raw = valueAt(x, i);
      this.absZ[i] = 0;
      zs[i] = 0;
      expected[i] = tag.level.mu;
      if (Number.isNaN(raw)) continue; // missing: no learning, no evidence
      tag.sm = Number.isNaN(tag.sm) ? raw : tag.sm + this.smooth * (raw - tag.sm);
      const z = zOf(tag.level, tag.sm, this.p);
      expected[i] = tag.level.mu;
      const warm = tag.level.n >= this.warmup;
      learn(tag.level, tag.sm, z, this.p);
      if (!warm) {
        warmingUp = true;
        continue;
      }
      zs[i] = z;
      this.absZ[i] = Math.abs(z);
      const s = squash(Math.abs(z), this.zHalf);
      if (s > score) score = s;
    }
    this.absZ.length = st.d;
    const tags = topIndices(this.absZ, this.topTags).map((i) => {
      return deviation(this.options.tags, i, valueAt(x, i), expected[i] as number, zs[i] as number);
    });
    return { score, explanation: { detector: this.kind, warmingUp, tags, stats: {} } };
  }

  snapshot(): DetectorSnapshot {
    return { kind: this.kind, version: 1, options: plain(this.options) as Record<string, unknown>, state: plain(this.st) };
  }

  restore(state: unknown): this {
    this.st = plain(state) as RobustZState;
    for (const tag of this.st.tags) if (tag.sm === null) tag.sm = NaN; // JSON turns NaN into null
    return this;
  }
}
