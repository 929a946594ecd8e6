// Robust baseline detector: per tag, a robust EWMA location and scale (robust-level.ts); the score
// is the largest squashed |robust z| over the device's tags. Catches spikes, level shifts and
// drifts until the baseline has absorbed them. O(1) per tag and sample.
import { DEFAULT_LEVEL, definedLevelParams, learn, newLevel, squash, zOf } from "./robust-level.ts";
import type { LevelParams, LevelState } from "./robust-level.ts";
import { newPerTagState, perTagDefaults, restorePerTag, runPerTag, snapshotOf, topDeviations } from "./per-tag.ts";
import type { PerTagState } from "./per-tag.ts";
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

type RobustZState = PerTagState<TagState>;

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
    ({ warmup: this.warmup, zHalf: this.zHalf, smooth: this.smooth, topTags: this.topTags } = perTagDefaults(options));
    this.p = { ...DEFAULT_LEVEL, warmup: this.warmup, ...definedLevelParams(options) };
    this.st = newPerTagState(options);
  }

  update(x: Sample, _t?: number): DetectorResult {
    let score = 0;
    const pass = runPerTag(this.st, x, this.absZ, {
      kind: this.kind,
      newTag: () => ({ level: newLevel(), sm: NaN }),
      expectedOf: (tag) => tag.level.mu,
      smooth: this.smooth,
      step: (tag, v, i, pass) => {
        const z = zOf(tag.level, v, this.p);
        pass.expected[i] = tag.level.mu;
        const warm = tag.level.n >= this.warmup;
        learn(tag.level, v, z, this.p);
        if (!warm) {
          pass.warmingUp = true;
          return 0;
        }
        pass.zs[i] = z;
        const s = squash(Math.abs(z), this.zHalf);
        if (s > score) score = s;
        return Math.abs(z);
      },
    });
    const tags = topDeviations(this.options.tags, x, this.absZ, this.topTags, pass.expected, pass.zs);
    return { score, explanation: { detector: this.kind, warmingUp: pass.warmingUp, tags, stats: {} } };
  }

  snapshot(): DetectorSnapshot {
    return snapshotOf(this.kind, this.options, this.st);
  }

  restore(state: unknown): this {
    this.st = restorePerTag<RobustZState>(state);
    return this;
  }
}
