// Online PCA across a device's tags with Hotelling's T² (distance inside the model subspace) and
// Q / SPE (squared residual outside it). Each tag is standardized by its robust level
// (robust-level.ts); the mean and covariance of the standardized vector are learnt with
// exponential forgetting; every `refresh` samples a Jacobi eigendecomposition picks the components
// that explain `variance` of it. T² and Q are turned into z-equivalents with Box's scaled
// chi-square approximation (mean and variance of each statistic learnt online on normal samples)
// and the Wilson-Hilferty transform, so one threshold fits devices with any number of tags.
// Optional delay embedding (`lags`) stacks the last L standardized vectors, which lets the model
// see temporal patterns of a single tag. Cost per sample: O(D²) with D = tags × lags, plus an
// O(D³) decomposition every `refresh` samples.
import { symmetricEigen } from "./jacobi.ts";
import { DEFAULT_LEVEL, definedLevelParams, learn, newLevel, squash, zOf } from "./robust-level.ts";
import type { LevelParams, LevelState } from "./robust-level.ts";
import { checkDim, deviation, dimOf, plain, topIndices, valueAt } from "./sample.ts";
import { nanFromNull, snapshotOf } from "./per-tag.ts";
import type { CommonOptions, DetectorResult, DetectorSnapshot, Sample, StreamingDetector } from "./types.ts";

export interface PcaOptions extends CommonOptions, Partial<LevelParams> {
  /** EW rate of the mean and covariance once warm. */
  forget?: number;
  /** Keep the fewest components that explain this fraction of the variance. */
  variance?: number;
  maxComponents?: number;
  /** Samples between eigendecompositions. */
  refresh?: number;
  /** Delay embedding: each tag contributes its last `lags` standardized values. */
  lags?: number;
  /** Standardized values are clipped to ±zCap (a constant tag that moves stays finite). */
  zCap?: number;
  /** Above this combined z a sample is learnt at `gateWeight` of the rate (default: gateZ - 1). */
  learnZ?: number;
  smooth?: number;
}

interface Moments {
  n: number;
  mean: number;
  var: number;
}

interface PcaState {
  d: number;
  dims: number;
  n: number;
  levels: LevelState[];
  sm: number[];
  /** Standardized values of the previous lags-1 samples, most recent first (d each). */
  hist: number[];
  mean: number[];
  cov: number[];
  k: number;
  lam: number[];
  /** dims × k, row-major: column j is component j. */
  comp: number[];
  sinceRefresh: number;
  t2: Moments;
  q: Moments;
}

function updateMoments(m: Moments, x: number, rate: number, weight: number): void {
  m.n++;
  const a = Math.max(1 / m.n, rate) * weight;
  // Clipped, so that a burst of large values does not inflate the reference it is judged by.
  const cap = m.n > 20 ? m.mean + 4 * Math.sqrt(m.var) : Infinity;
  const diff = Math.min(x, cap) - m.mean;
  m.mean += a * diff;
  m.var = (1 - a) * (m.var + a * diff * diff);
}

/**
 * z-equivalent of a non-negative statistic whose mean and variance are `m` (Box + Wilson-Hilferty).
 * The statistics live in standardized units, so a mean below 1e-3 (0.03 sigma squared) is treated
 * as 1e-3: a device whose tags have been constant still gets a finite, meaningful z when they move.
 */
export function chiSquareZ(x: number, m: Moments): number {
  if (m.n < 2) return 0;
  const mean = Math.max(m.mean, 1e-3);
  const variance = Math.max(m.var, 1e-4 * mean * mean);
  const h = (2 * mean * mean) / variance; // degrees of freedom of the scaled chi-square
  const c = 2 / (9 * h);
  return (Math.cbrt(Math.max(0, x) / mean) - (1 - c)) / Math.sqrt(c);
}

export class PcaDetector implements StreamingDetector {
  readonly kind = "pca";
  readonly options: PcaOptions;
  private readonly p: LevelParams;
  private readonly warmup: number;
  private readonly zHalf: number;
  private readonly forget: number;
  private readonly variance: number;
  private readonly maxComponents: number;
  private readonly refresh: number;
  private readonly lags: number;
  private readonly zCap: number;
  private readonly learnZ: number;
  private readonly smooth: number;
  private readonly topTags: number;
  private st: PcaState;
  // scratch buffers, reused across samples
  private u: number[] = [];
  private c: number[] = [];
  private t: number[] = [];
  private z: number[] = [];
  private diff: number[] = [];

  constructor(options: PcaOptions = {}) {
    this.options = options;
    this.warmup = options.warmup ?? 100;
    this.p = { ...DEFAULT_LEVEL, alpha: 0.002, warmup: this.warmup, ...definedLevelParams(options) };
    this.zHalf = options.zHalf ?? 6;
    this.forget = options.forget ?? 0.002;
    this.variance = options.variance ?? 0.9;
    this.maxComponents = options.maxComponents ?? Infinity;
    this.refresh = options.refresh ?? 50;
    this.lags = Math.max(1, Math.floor(options.lags ?? 1));
    this.zCap = options.zCap ?? 50;
    this.learnZ = options.learnZ ?? this.p.gateZ - 1;
    this.smooth = options.smooth ?? 1;
    this.topTags = options.topTags ?? 3;
    this.st = this.emptyState(options.tags?.length ?? 0);
  }

  private emptyState(d: number): PcaState {
    return { d, dims: d * this.lags, n: 0, levels: [], sm: [], hist: [], mean: [], cov: [], k: 0, lam: [], comp: [], sinceRefresh: 0, t2: { n: 0, mean: 0, var: 0 }, q: { n: 0, mean: 0, var: 0 } };
  }

  update(x: Sample, _t?: number): DetectorResult {
    let st = this.st;
    if (st.d === 0) st = this.st = this.emptyState(dimOf(x));
    checkDim(st.d, x, this.kind);
    const { d, dims } = st;
    if (st.levels.length < d) {
      for (let i = 0; i < d; i++) st.levels.push(newLevel());
      st.sm = new Array<number>(d).fill(NaN);
      st.hist = new Array<number>(d * (this.lags - 1)).fill(0);
      st.mean = new Array<number>(dims).fill(0);
      st.cov = new Array<number>(dims * dims).fill(0);
    }
    // 1. standardize each tag against its robust level; a missing value sits at its baseline
    let missing = 0;
    const z = this.z;
    for (let i = 0; i < d; i++) {
      const raw = valueAt(x, i);
      if (Number.isNaN(raw)) {
        z[i] = 0;
        missing++;
        continue;
      }
      const prev = st.sm[i] as number;
      const v = Number.isNaN(prev) ? raw : prev + this.smooth * (raw - prev);
      st.sm[i] = v;
      const zi = zOf(st.levels[i] as LevelState, v, this.p);
      z[i] = zi > this.zCap ? this.zCap : zi < -this.zCap ? -this.zCap : zi;
    }
    z.length = d;
    if (missing === d) return this.result(0, false, x, {}, null);
    const u = this.u;
    for (let i = 0; i < d; i++) u[i] = z[i] as number;
    for (let i = 0; i < d * (this.lags - 1); i++) u[d + i] = st.hist[i] as number;
    u.length = dims;
    // 2. score against the current model
    let t2 = 0;
    let q = 0;
    let zT = 0;
    let zQ = 0;
    const c = this.c;
    if (st.k > 0) {
      let norm = 0;
      for (let j = 0; j < dims; j++) {
        c[j] = (u[j] as number) - (st.mean[j] as number);
        norm += (c[j] as number) ** 2;
      }
      c.length = dims;
      let explained = 0;
      for (let a = 0; a < st.k; a++) {
        let s = 0;
        for (let j = 0; j < dims; j++) s += (st.comp[j * st.k + a] as number) * (c[j] as number);
        this.t[a] = s;
        explained += s * s;
        t2 += (s * s) / (st.lam[a] as number);
      }
      // With every dimension in the model (a single tag) there is no residual space: no Q.
      q = st.k < dims ? Math.max(0, norm - explained) : 0;
      zT = chiSquareZ(t2, st.t2);
      zQ = st.k < dims ? chiSquareZ(q, st.q) : 0;
    }
    const zStat = Math.max(zT, zQ, 0);
    const warm = st.n >= this.warmup && st.k > 0;
    const score = warm ? squash(zStat, this.zHalf) : 0;
    // 3. learn, slowly when the sample looks anomalous, not at all with missing values
    if (missing === 0) {
      const weight = st.k > 0 && zStat > this.learnZ ? this.p.gateWeight : 1;
      for (let i = 0; i < d; i++) {
        const level = st.levels[i] as LevelState;
        const v = st.sm[i] as number;
        learn(level, v, zOf(level, v, this.p), this.p, weight);
      }
      st.n++;
      const a = Math.max(1 / st.n, this.forget) * weight;
      const diff = this.diff;
      for (let j = 0; j < dims; j++) {
        const dj = (u[j] as number) - (st.mean[j] as number);
        diff[j] = dj;
        st.mean[j] = (st.mean[j] as number) + a * dj;
      }
      for (let r = 0; r < dims; r++) {
        const dr = diff[r] as number;
        for (let col = r; col < dims; col++) {
          const idx = r * dims + col;
          st.cov[idx] = (1 - a) * ((st.cov[idx] as number) + a * dr * (diff[col] as number));
        }
      }
      if (st.k > 0) {
        updateMoments(st.t2, t2, this.forget, weight);
        updateMoments(st.q, q, this.forget, weight);
      }
      st.sinceRefresh++;
      if ((st.k === 0 && st.n >= Math.max(10, Math.floor(this.warmup / 2))) || (st.k > 0 && st.sinceRefresh >= this.refresh)) this.decompose();
    }
    if (this.lags > 1) {
      st.hist.splice(st.hist.length - d, d);
      st.hist.unshift(...z);
    }
    return this.result(score, !warm, x, { t2, q, zT, zQ, components: st.k }, zStat > 0 ? (zQ >= zT ? "q" : "t2") : null);
  }

  private decompose(): void {
    const st = this.st;
    const dims = st.dims;
    const full = new Array<number>(dims * dims);
    for (let r = 0; r < dims; r++) {
      for (let col = r; col < dims; col++) {
        const v = st.cov[r * dims + col] as number;
        full[r * dims + col] = v;
        full[col * dims + r] = v;
      }
    }
    const { values, vectors } = symmetricEigen(full, dims);
    let trace = 0;
    for (const v of values) trace += Math.max(0, v);
    const floor = Math.max(1e-12, 1e-6 * trace);
    // Keep at least one dimension out of the model when possible, so that Q means something.
    const kMax = Math.max(1, Math.min(this.maxComponents, dims > 1 ? dims - 1 : 1));
    let k = 0;
    let cum = 0;
    while (k < kMax && (k === 0 || cum < this.variance * trace)) {
      cum += Math.max(0, values[k] as number);
      k++;
    }
    st.k = k;
    st.lam = values.slice(0, k).map((v) => Math.max(v, floor));
    st.comp = new Array<number>(dims * k);
    for (let r = 0; r < dims; r++) for (let a = 0; a < k; a++) st.comp[r * k + a] = vectors[r * dims + a] as number;
    st.sinceRefresh = 0;
  }

  private result(score: number, warmingUp: boolean, x: Sample, stats: Record<string, number>, dominant: "q" | "t2" | null): DetectorResult {
    const st = this.st;
    const d = st.d;
    const share = new Array<number>(d).fill(0);
    if (dominant !== null && st.k > 0) {
      // Per-tag contributions to the dominant statistic (summed over lags), as shares.
      const c = this.c;
      const dims = st.dims;
      let total = 0;
      for (let j = 0; j < dims; j++) {
        let proj = 0;
        let contrib: number;
        if (dominant === "q") {
          for (let a = 0; a < st.k; a++) proj += (st.comp[j * st.k + a] as number) * (this.t[a] as number);
          contrib = ((c[j] as number) - proj) ** 2;
        } else {
          for (let a = 0; a < st.k; a++) proj += ((st.comp[j * st.k + a] as number) * (this.t[a] as number)) / (st.lam[a] as number);
          contrib = Math.max(0, (c[j] as number) * proj);
        }
        share[j % d] = (share[j % d] as number) + contrib;
        total += contrib;
      }
      if (total > 0) for (let i = 0; i < d; i++) share[i] = (share[i] as number) / total;
    }
    const key = dominant === null ? this.z.map((v) => Math.abs(v)) : share;
    const tags = topIndices(key, this.topTags).map((i) => {
      const level = st.levels[i] as LevelState;
      return deviation(this.options.tags, i, valueAt(x, i), level.mu, (this.z[i] as number) ?? 0, share[i] as number);
    });
    return { score, explanation: { detector: this.kind, warmingUp, tags, stats } };
  }

  snapshot(): DetectorSnapshot {
    return snapshotOf(this.kind, this.options, this.st);
  }

  restore(state: unknown): this {
    this.st = plain(state) as PcaState;
    this.st.sm = nanFromNull(this.st.sm);
    return this;
  }
}
