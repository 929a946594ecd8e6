// Variance-change detector per tag: the short-term mean absolute step |x(t) - x(t-1)| against its
// long-term level. Catches noise bursts, chattering, a rising density of spikes, or a signal that
// goes quiet (a stuck sensor): changes a level baseline does not see because the mean stays put.
// The statistic is the log2 ratio of the two, as a z-equivalent: |log2(short / long)| / spread,
// where spread is the EW mean absolute log-ratio on normal samples. O(1) per tag and sample.
import { Z_CAP, squash } from "./robust-level.ts";
import { deviationsAt, newPerTagState, perTagDefaults, runPerTag, snapshotOf } from "./per-tag.ts";
import type { PerTagState } from "./per-tag.ts";
import { plain, topIndices } from "./sample.ts";
import type { CommonOptions, DetectorResult, DetectorSnapshot, Sample, StreamingDetector } from "./types.ts";

export interface VolatilityOptions extends CommonOptions {
  /** EW rate of the short-term mean step (about 1/window). */
  fast?: number;
  /** EW rate of the long-term mean step, once warm. */
  slow?: number;
  /** Increases and decreases of volatility ("both", default: a stuck sensor goes quiet), or "up" only. */
  direction?: "up" | "both";
}

interface TagState {
  n: number;
  last: number;
  short: number;
  long: number;
  /** EW mean |log2(short/long)|: how much the ratio normally moves. */
  spread: number;
}

type VolatilityState = PerTagState<TagState>;

const TINY = 1e-12;

export class VolatilityDetector implements StreamingDetector {
  readonly kind = "volatility";
  readonly options: VolatilityOptions;
  private readonly warmup: number;
  private readonly zHalf: number;
  private readonly fast: number;
  private readonly slow: number;
  private readonly both: boolean;
  private readonly topTags: number;
  private st: VolatilityState;
  private readonly stat: number[] = [];

  constructor(options: VolatilityOptions = {}) {
    this.options = options;
    ({ warmup: this.warmup, zHalf: this.zHalf, topTags: this.topTags } = perTagDefaults(options));
    this.fast = options.fast ?? 0.1;
    this.slow = options.slow ?? 0.005;
    this.both = options.direction !== "up";
    this.st = newPerTagState(options);
  }

  update(x: Sample, _t?: number): DetectorResult {
    const ratio: number[] = [];
    // For this detector `expected` is the long-term mean step and `z` the volatility z.
    const pass = runPerTag(this.st, x, this.stat, {
      kind: this.kind,
      newTag: () => ({ n: 0, last: 0, short: 0, long: 0, spread: 0 }),
      expectedOf: (tag) => tag.long,
      step: (tag, v, i, pass) => {
        tag.n++;
        if (tag.n === 1) {
          tag.last = v;
          pass.warmingUp = true;
          return 0;
        }
        const step = Math.abs(v - tag.last);
        tag.last = v;
        const k = tag.n - 1; // steps seen
        tag.short += Math.max(1 / k, this.fast) * (step - tag.short);
        const lr = Math.log2((tag.short + TINY) / (tag.long + TINY));
        ratio[i] = lr;
        let z = 0;
        if (k > this.warmup) {
          z = Math.abs(lr) / Math.max(tag.spread, 0.05);
          if (!this.both && lr < 0) z = 0;
          if (z > Z_CAP) z = Z_CAP;
        } else {
          pass.warmingUp = true;
        }
        // Learn the long-term level (slowly while the ratio is far out) and the ratio's spread.
        const a = k <= this.warmup ? 1 / k : this.slow * (z > 4 ? 0.1 : 1);
        tag.long += a * (step - tag.long);
        if (k > 10) tag.spread += (k <= this.warmup ? 1 / (k - 10) : a) * (Math.min(Math.abs(lr), 4 * Math.max(tag.spread, 0.05)) - tag.spread);
        pass.expected[i] = tag.long;
        pass.zs[i] = z;
        return z;
      },
    });
    const top = topIndices(this.stat, this.topTags);
    const tags = deviationsAt(this.options.tags, x, top, pass.expected, pass.zs);
    const stats: Record<string, number> = top.length > 0 ? { log2Ratio: ratio[top[0] as number] ?? 0 } : {};
    return { score: squash(pass.best, this.zHalf), explanation: { detector: this.kind, warmingUp: pass.warmingUp, tags, stats } };
  }

  snapshot(): DetectorSnapshot {
    return snapshotOf(this.kind, this.options, this.st);
  }

  restore(state: unknown): this {
    this.st = plain(state) as VolatilityState;
    return this;
  }
}
