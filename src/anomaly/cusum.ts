// Two-sided CUSUM per tag: accumulates (z - k) up and (-z - k) down, where z is the distance of
// the value from a reference that follows the signal within about 20 samples, measured in units of
// the tag's long-term spread. So it reports abrupt shifts of about 2k spreads or more, not the slow
// wander of autocorrelated signals. Single samples are clipped (zClip) so that one glitch does not
// declare a change (robust-z reports glitches). While a sum is past h/2 the reference learns at
// `inAlarmWeight` of its rate, so a shift stays visible for a while; the sums are capped at `cap`·h
// so that the score comes back down soon after the process returns to normal.
import { DEFAULT_LEVEL, definedLevelParams, learn, newLevel, sigmaOf, squash, zOf } from "./robust-level.ts";
import type { LevelParams, LevelState } from "./robust-level.ts";
import { newPerTagState, perTagDefaults, restorePerTag, runPerTag, snapshotOf, topDeviations } from "./per-tag.ts";
import type { PerTagState } from "./per-tag.ts";
import type { CommonOptions, DetectorResult, DetectorSnapshot, Sample, StreamingDetector } from "./types.ts";

export interface CusumOptions extends CommonOptions, Partial<LevelParams> {
  /** Allowance (slack) per sample, in sigmas. */
  k?: number;
  /** Decision interval, in sigmas: the score is 0.5 when a sum reaches h. */
  h?: number;
  /**
   * |z| is clipped to this before it is accumulated, so that one glitch cannot declare a change
   * (the robust-z detector reports glitches); a burst of a few samples can.
   */
  zClip?: number;
  /** The sums never exceed cap·h. */
  cap?: number;
  inAlarmWeight?: number;
  /** EWMA pre-filter of each value (1 = none). */
  smooth?: number;
}

interface TagState {
  /** Reference (its location) for the sums. */
  level: LevelState;
  /** The tag's long-term spread (its scale): shifts are measured in units of normal variation. */
  spread: LevelState;
  sm: number;
  up: number;
  down: number;
}

type CusumState = PerTagState<TagState>;

export class CusumDetector implements StreamingDetector {
  readonly kind = "cusum";
  readonly options: CusumOptions;
  private readonly p: LevelParams;
  private readonly spreadParams: LevelParams;
  private readonly warmup: number;
  private readonly k: number;
  private readonly h: number;
  private readonly zClip: number;
  private readonly cap: number;
  private readonly inAlarmWeight: number;
  private readonly smooth: number;
  private readonly topTags: number;
  private st: CusumState;
  private readonly stat: number[] = [];

  constructor(options: CusumOptions = {}) {
    this.options = options;
    ({ warmup: this.warmup, smooth: this.smooth, topTags: this.topTags } = perTagDefaults(options));
    // The reference follows the signal within about 20 samples: slow drifts and the wander of
    // autocorrelated signals stay out of the sums, abrupt shifts do not.
    this.p = { ...DEFAULT_LEVEL, alpha: 0.05, warmup: this.warmup, ...definedLevelParams(options) };
    this.spreadParams = { ...DEFAULT_LEVEL, alpha: 0.002, warmup: this.warmup };
    this.k = options.k ?? 0.5;
    this.h = options.h ?? 10;
    this.zClip = options.zClip ?? 4;
    this.cap = options.cap ?? 3;
    this.inAlarmWeight = options.inAlarmWeight ?? 0.25;
    this.st = newPerTagState(options);
  }

  update(x: Sample, _t?: number): DetectorResult {
    const maxSum = this.cap * this.h;
    const pass = runPerTag(this.st, x, this.stat, {
      kind: this.kind,
      newTag: () => ({ level: newLevel(), spread: newLevel(), sm: NaN, up: 0, down: 0 }),
      expectedOf: (tag) => tag.level.mu,
      smooth: this.smooth,
      step: (tag, v, i, pass) => {
        const zSpread = zOf(tag.spread, v, this.spreadParams);
        learn(tag.spread, v, zSpread, this.spreadParams);
        const zRef = zOf(tag.level, v, this.p);
        const z = tag.level.n === 0 ? 0 : (v - tag.level.mu) / sigmaOf(tag.spread, this.spreadParams);
        pass.zs[i] = z;
        if (tag.level.n < this.warmup) {
          pass.warmingUp = true;
          learn(tag.level, v, zRef, this.p);
          return 0;
        }
        const zc = z > this.zClip ? this.zClip : z < -this.zClip ? -this.zClip : z;
        tag.up = Math.min(maxSum, Math.max(0, tag.up + zc - this.k));
        tag.down = Math.min(maxSum, Math.max(0, tag.down - zc - this.k));
        const s = Math.max(tag.up, tag.down);
        learn(tag.level, v, zRef, this.p, s > this.h / 2 ? this.inAlarmWeight : 1);
        return s;
      },
    });
    const tags = topDeviations(this.options.tags, x, this.stat, this.topTags, pass.expected, pass.zs);
    const top = pass.bestTag >= 0 ? (this.st.tags[pass.bestTag] as TagState) : undefined;
    return {
      score: squash(pass.best, this.h),
      explanation: { detector: this.kind, warmingUp: pass.warmingUp, tags, stats: { up: top?.up ?? 0, down: top?.down ?? 0, h: this.h } },
    };
  }

  snapshot(): DetectorSnapshot {
    return snapshotOf(this.kind, this.options, this.st);
  }

  restore(state: unknown): this {
    this.st = restorePerTag<CusumState>(state);
    return this;
  }
}
