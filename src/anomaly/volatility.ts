// Variance-change detector per tag: the short-term mean absolute step |x(t) - x(t-1)| against its
// long-term level. Catches noise bursts, chattering, a rising density of spikes, or a signal that
// goes quiet (a stuck sensor): changes a level baseline does not see because the mean stays put.
// The statistic is the log2 ratio of the two, as a z-equivalent: |log2(short / long)| / spread,
// where spread is the EW mean absolute log-ratio on normal samples. O(1) per tag and sample.
import { Z_CAP, squash } from "./robust-level.ts";
import { checkDim, deviation, dimOf, plain, topIndices, valueAt } from "./sample.ts";
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

interface VolatilityState {
  d: number;
  tags: TagState[];
}

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
    this.warmup = options.warmup ?? 100;
    this.zHalf = options.zHalf ?? 6;
    this.fast = options.fast ?? 0.1;
    this.slow = options.slow ?? 0.005;
    this.both = options.direction !== "up";
    this.topTags = options.topTags ?? 3;
    this.st = { d: options.tags?.length ?? 0, tags: [] };
  }

  update(x: Sample, _t?: number): DetectorResult {
    const st = this.st;
    if (st.d === 0) st.d = dimOf(x);
    checkDim(st.d, x, this.kind);
    while (st.tags.length < st.d) st.tags.push({ n: 0, last: 0, short: 0, long: 0, spread: 0 });
    let best = 0;
    let warmingUp = false;
    const ratio = new Array<number>(st.d).fill(0);
    for (let i = 0; i < st.d; i++) {
      const tag = st.tags[i] as TagState;
      const v = valueAt(x, i);
      this.stat[i] = 0;
      if (Number.isNaN(v)) continue;
      tag.n++;
      if (tag.n === 1) {
        tag.last = v;
        warmingUp = true;
        continue;
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
        warmingUp = true;
      }
      // Learn the long-term level (slowly while the ratio is far out) and the ratio's spread.
      const a = k <= this.warmup ? 1 / k : this.slow * (z > 4 ? 0.1 : 1);
      tag.long += a * (step - tag.long);
      if (k > 10) tag.spread += (k <= this.warmup ? 1 / (k - 10) : a) * (Math.min(Math.abs(lr), 4 * Math.max(tag.spread, 0.05)) - tag.spread);
      this.stat[i] = z;
      if (z > best) best = z;
    }
    this.stat.length = st.d;
    // For this detector `expected` is the long-term mean step and `z` the volatility z.
    const top = topIndices(this.stat, this.topTags);
    const tags = top.map((i) => deviation(this.options.tags, i, valueAt(x, i), (st.tags[i] as TagState).long, this.stat[i] as number));
    const stats: Record<string, number> = top.length > 0 ? { log2Ratio: ratio[top[0] as number] as number } : {};
    return { score: squash(best, this.zHalf), explanation: { detector: this.kind, warmingUp, tags, stats } };
  }

  snapshot(): DetectorSnapshot {
    return { kind: this.kind, version: 1, options: plain(this.options) as Record<string, unknown>, state: plain(this.st) };
  }

  restore(state: unknown): this {
    this.st = plain(state) as VolatilityState;
    return this;
  }
}
