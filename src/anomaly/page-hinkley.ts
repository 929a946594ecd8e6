// Two-sided Page-Hinkley test per tag. Deviations from the running mean of the current regime
// (standardized by a robust sigma, clipped at zClip) minus a tolerance delta are summed; the
// statistic is the rise of the sum above its running minimum (and the mirror for downward
// changes). When it passes lambda a change is declared: that sample scores at least 0.5 and the
// test restarts on the new regime. So it reports the onset of a change, not its duration.
import { DEFAULT_LEVEL, definedLevelParams, learn, newLevel, sigmaOf, squash, zOf } from "./robust-level.ts";
import type { LevelParams, LevelState } from "./robust-level.ts";
import { newPerTagState, perTagDefaults, restorePerTag, runPerTag, snapshotOf, topDeviations } from "./per-tag.ts";
import type { PerTagState } from "./per-tag.ts";
import type { CommonOptions, DetectorResult, DetectorSnapshot, Sample, StreamingDetector } from "./types.ts";

export interface PageHinkleyOptions extends CommonOptions, Partial<LevelParams> {
  /** Tolerated drift of the mean per sample, in sigmas. */
  delta?: number;
  /** Detection threshold, in sigmas: the score is 0.5 when the statistic reaches lambda. */
  lambda?: number;
  /** |z| is clipped to this before it is summed: one glitch cannot declare a change, a burst can. */
  zClip?: number;
  /** Samples after a restart before the test may fire again. */
  minRun?: number;
  /** The regime mean forgets at least at this rate (cumulative mean until 1/n falls below it). */
  meanAlpha?: number;
  smooth?: number;
}

interface TagState {
  /** Robust scale (its location is not used by the test). */
  level: LevelState;
  sm: number;
  mean: number;
  run: number;
  up: number;
  upMin: number;
  down: number;
  downMax: number;
  changes: number;
}

type PageHinkleyState = PerTagState<TagState>;

export class PageHinkleyDetector implements StreamingDetector {
  readonly kind = "page-hinkley";
  readonly options: PageHinkleyOptions;
  private readonly p: LevelParams;
  private readonly warmup: number;
  private readonly delta: number;
  private readonly lambda: number;
  private readonly zClip: number;
  private readonly minRun: number;
  private readonly meanAlpha: number;
  private readonly smooth: number;
  private readonly topTags: number;
  private st: PageHinkleyState;
  private readonly stat: number[] = [];

  constructor(options: PageHinkleyOptions = {}) {
    this.options = options;
    ({ warmup: this.warmup, smooth: this.smooth, topTags: this.topTags } = perTagDefaults(options));
    this.p = { ...DEFAULT_LEVEL, warmup: this.warmup, ...definedLevelParams(options) };
    this.delta = options.delta ?? 0.5;
    this.lambda = options.lambda ?? 20;
    this.zClip = options.zClip ?? 4;
    this.minRun = options.minRun ?? 30;
    this.meanAlpha = options.meanAlpha ?? 0.002;
    this.st = newPerTagState(options);
  }

  update(x: Sample, _t?: number): DetectorResult {
    const st = this.st;
    const pass = runPerTag(st, x, this.stat, {
      kind: this.kind,
      newTag: () => ({ level: newLevel(), sm: NaN, mean: 0, run: 0, up: 0, upMin: 0, down: 0, downMax: 0, changes: 0 }),
      expectedOf: (tag) => tag.mean,
      smooth: this.smooth,
      step: (tag, v, i, pass) => {
        if (tag.level.n < this.warmup) pass.warmingUp = true;
        learn(tag.level, v, zOf(tag.level, v, this.p), this.p);
        tag.run++;
        if (tag.run === 1) {
          tag.mean = v;
          return 0;
        }
        tag.mean += Math.max(1 / tag.run, this.meanAlpha) * (v - tag.mean);
        const z = (v - tag.mean) / sigmaOf(tag.level, this.p);
        pass.zs[i] = z;
        if (tag.level.n <= this.warmup) return 0;
        const zc = z > this.zClip ? this.zClip : z < -this.zClip ? -this.zClip : z;
        tag.up += zc - this.delta;
        tag.upMin = Math.min(tag.upMin, tag.up);
        tag.down += zc + this.delta;
        tag.downMax = Math.max(tag.downMax, tag.down);
        return tag.run < this.minRun ? 0 : Math.max(tag.up - tag.upMin, tag.downMax - tag.down);
      },
    });
    const { best, bestTag, warmingUp } = pass;
    const tags = topDeviations(this.options.tags, x, this.stat, this.topTags, pass.expected, pass.zs);
    const score = squash(best, this.lambda);
    let changes = 0;
    if (best > this.lambda) {
      // A change: every tag past lambda restarts on its new regime.
      for (let i = 0; i < st.d; i++) {
        if ((this.stat[i] as number) <= this.lambda) continue;
        const tag = st.tags[i] as TagState;
        tag.changes++;
        tag.run = 1;
        tag.mean = tag.sm;
        tag.up = tag.upMin = tag.down = tag.downMax = 0;
        changes++;
      }
    }
    const top = bestTag >= 0 ? (st.tags[bestTag] as TagState) : undefined;
    return { score, explanation: { detector: this.kind, warmingUp, tags, stats: { statistic: best, lambda: this.lambda, changes, totalChanges: top?.changes ?? 0 } } };
  }

  snapshot(): DetectorSnapshot {
    return snapshotOf(this.kind, this.options, this.st);
  }

  restore(state: unknown): this {
    this.st = restorePerTag<PageHinkleyState>(state);
    return this;
  }
}
