// Robust baseline per time-of-day slot: the day (or any `period`) is cut into `slots`, each with
// its own robust level (robust-level.ts), and a value is judged against what is normal at that
// time of day. Catches a daily peak that is missing, too low or too high, or a flat stretch where
// the signal normally moves: anomalies a single baseline cannot see. Needs the sample time `t`
// (epoch ms); without it the detector scores 0. Memory: slots × 5 numbers per tag; O(1) per sample.
import { DEFAULT_LEVEL, definedLevelParams, learn, newLevel, squash, zOf } from "./robust-level.ts";
import type { LevelParams, LevelState } from "./robust-level.ts";
import { fixDim, nanFromNull, perTagDefaults, snapshotOf, topDeviations } from "./per-tag.ts";
import { plain, valueAt } from "./sample.ts";
import type { CommonOptions, DetectorResult, DetectorSnapshot, Sample, StreamingDetector } from "./types.ts";

export interface SeasonalZOptions extends CommonOptions, Partial<LevelParams> {
  /** Length of the cycle in ms (default one day). */
  period?: number;
  /** Slots per cycle (default 24: hourly). `warmup` counts samples per slot: each slot scores once it has seen that many. */
  slots?: number;
  smooth?: number;
}

interface SeasonalState {
  d: number;
  /** d × slots levels, tag-major. */
  levels: LevelState[];
  sm: number[];
}

export class SeasonalZDetector implements StreamingDetector {
  readonly kind = "seasonal-z";
  readonly options: SeasonalZOptions;
  private readonly p: LevelParams;
  private readonly warmup: number;
  private readonly zHalf: number;
  private readonly period: number;
  private readonly slots: number;
  private readonly smooth: number;
  private readonly topTags: number;
  private st: SeasonalState;
  private readonly absZ: number[] = [];

  constructor(options: SeasonalZOptions = {}) {
    this.options = options;
    // Each slot sees 1/slots of the samples: it warms up on fewer and learns faster.
    ({ warmup: this.warmup, zHalf: this.zHalf, smooth: this.smooth, topTags: this.topTags } = perTagDefaults(options, 5));
    this.p = { ...DEFAULT_LEVEL, alpha: 0.05, warmup: this.warmup, ...definedLevelParams(options) };
    this.period = options.period ?? 86_400_000;
    this.slots = options.slots ?? 24;
    this.st = { d: options.tags?.length ?? 0, levels: [], sm: [] };
  }

  update(x: Sample, t?: number): DetectorResult {
    const st = this.st;
    fixDim(st, x, this.kind);
    if (st.levels.length === 0) {
      st.levels = Array.from({ length: st.d * this.slots }, newLevel);
      st.sm = new Array<number>(st.d).fill(NaN);
    }
    const zs = new Array<number>(st.d).fill(0);
    const expected = new Array<number>(st.d).fill(NaN);
    let score = 0;
    let warmingUp = false;
    const hasTime = typeof t === "number" && Number.isFinite(t);
    const slot = hasTime ? Math.floor((((t % this.period) + this.period) % this.period) / (this.period / this.slots)) : -1;
    for (let i = 0; i < st.d; i++) {
      this.absZ[i] = 0;
      const raw = valueAt(x, i);
      if (Number.isNaN(raw)) continue;
      const prev = st.sm[i] as number;
      const v = Number.isNaN(prev) ? raw : prev + this.smooth * (raw - prev);
      st.sm[i] = v;
      if (slot < 0) {
        warmingUp = true;
        continue;
      }
      const level = st.levels[i * this.slots + slot] as LevelState;
      const z = zOf(level, v, this.p);
      expected[i] = level.mu;
      const warm = level.n >= this.warmup;
      learn(level, v, z, this.p);
      if (!warm) {
        warmingUp = true;
        continue;
      }
      zs[i] = z;
      this.absZ[i] = Math.abs(z);
      score = Math.max(score, squash(Math.abs(z), this.zHalf));
    }
    this.absZ.length = st.d;
    const tags = topDeviations(this.options.tags, x, this.absZ, this.topTags, expected, zs);
    return { score, explanation: { detector: this.kind, warmingUp, tags, stats: { slot } } };
  }

  snapshot(): DetectorSnapshot {
    return snapshotOf(this.kind, this.options, this.st);
  }

  restore(state: unknown): this {
    this.st = plain(state) as SeasonalState;
    this.st.sm = nanFromNull(this.st.sm);
    return this;
  }
}
