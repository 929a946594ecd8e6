// Robust streaming location and scale of one tag: a Huber-clipped EWMA of the value and an EWMA of
// the clipped absolute deviation (a mean-absolute-deviation analogue of the MAD), O(1) per sample.
// Samples far from normal are learnt at a fraction of the rate, so an anomaly that lasts is not
// absorbed into the baseline within a few samples; a persistent new regime still is, eventually.

export interface LevelParams {
  /** EW learning rate once warm: the baseline remembers about 1/alpha samples. */
  alpha: number;
  /** Samples learnt without clipping or gating; equal weights (1/n) until 1/n reaches alpha. */
  warmup: number;
  /** Residuals are clipped at this many sigmas before they move the baseline. */
  huberK: number;
  /** Beyond this |z| a sample is learnt at `gateWeight` of the rate. */
  gateZ: number;
  gateWeight: number;
  /** The scale never goes below absFloor + relFloor * |location| (constant signals: MAD = 0). */
  absFloor: number;
  relFloor: number;
  /**
   * Nor below resFactor times the mean absolute step |x(t) - x(t-1)|: for quantized or mostly-zero
   * signals (a few distinct levels, sparse spikes) the deviation from the baseline is 0 most of
   * the time, and without this floor every step would look infinitely far from normal.
   */
  resFactor: number;
}

export interface LevelState {
  n: number;
  mu: number;
  /** EW mean absolute deviation from `mu`. */
  s: number;
  /** EW mean absolute step between consecutive samples, and the last sample. */
  res: number;
  last: number;
}

/** E|X - mu| = sigma * sqrt(2/pi) for a Gaussian, so sigma = 1.2533 * mean absolute deviation. */
export const MAD_TO_SIGMA = Math.sqrt(Math.PI / 2);
/** Caps |z| so that a constant signal that moves gives a large but finite z. */
export const Z_CAP = 1e6;

export const DEFAULT_LEVEL: LevelParams = { alpha: 0.005, warmup: 100, huberK: 3, gateZ: 4, gateWeight: 0.1, absFloor: 1e-9, relFloor: 1e-6, resFactor: 0.5 };

/** The level parameters a caller actually set (an undefined option must not override a default). */
export function definedLevelParams(options: Partial<LevelParams>): Partial<LevelParams> {
  const out: Partial<LevelParams> = {};
  for (const key of ["alpha", "warmup", "huberK", "gateZ", "gateWeight", "absFloor", "relFloor", "resFactor"] as const) {
    const v = options[key];
    if (typeof v === "number") out[key] = v;
  }
  return out;
}

export function newLevel(): LevelState {
  return { n: 0, mu: 0, s: 0, res: 0, last: 0 };
}

export function scaleFloor(st: LevelState, p: LevelParams): number {
  return Math.max(p.absFloor + p.relFloor * Math.abs(st.mu), p.resFactor * st.res);
}

export function sigmaOf(st: LevelState, p: LevelParams): number {
  return MAD_TO_SIGMA * Math.max(st.s, scaleFloor(st, p));
}

export function clampZ(z: number): number {
  return z > Z_CAP ? Z_CAP : z < -Z_CAP ? -Z_CAP : z;
}

/** Robust z of `x` against the state before it learns `x`; 0 before the first sample. */
export function zOf(st: LevelState, x: number, p: LevelParams): number {
  if (st.n === 0) return 0;
  return clampZ((x - st.mu) / sigmaOf(st, p));
}

/**
 * Learns one finite sample whose robust z (from `zOf`) is `z`; `weight` in [0,1] lets a caller
 * slow learning further (e.g. while a change detector is in alarm).
 */
export function learn(st: LevelState, x: number, z: number, p: LevelParams, weight = 1): void {
  st.n++;
  if (st.n === 1) {
    st.mu = st.last = x;
    st.s = st.res = 0;
    return;
  }
  const r = x - st.mu;
  const step = Math.abs(x - st.last);
  st.last = x;
  if (st.n <= p.warmup) {
    // Warming up: equal weights until 1/n falls to the EW rate, unclipped (nothing is known yet).
    const a = weight * Math.max(1 / st.n, p.alpha);
    st.mu += a * r;
    st.s += a * (Math.abs(r) - st.s);
    st.res += weight * Math.max(1 / (st.n - 1), p.alpha) * (step - st.res);
    return;
  }
  if (st.s < p.absFloor + p.relFloor * Math.abs(st.mu)) {
    // The signal has been constant: learn its new spread at the full rate, or it would stay
    // "infinitely" anomalous for ever once it starts to move normally.
    const a = p.alpha * weight;
    st.mu += a * r;
    st.s += a * (Math.abs(r) - st.s);
    st.res += a * (step - st.res);
    return;
  }
  const a = p.alpha * weight * (Math.abs(z) > p.gateZ ? p.gateWeight : 1);
  const c = p.huberK * sigmaOf(st, p);
  st.mu += a * (r > c ? c : r < -c ? -c : r);
  st.s += a * (Math.min(Math.abs(r), c) - st.s);
  st.res += a * (Math.min(step, 2 * c) - st.res);
}

/** Squashes a non-negative z-like statistic into [0,1): 0.5 at `half`, 0.8 at 2·half, 0.9 at 3·half. */
export function squash(z: number, half: number): number {
  if (!(z > 0)) return 0;
  if (z >= Z_CAP) return 1;
  const q = z / half;
  return (q * q) / (q * q + 1);
}

/** The z at which `squash(z, half)` equals `score`: how to read a threshold as a robust z. */
export function unsquash(score: number, half: number): number {
  if (score <= 0) return 0;
  if (score >= 1) return Infinity;
  return half * Math.sqrt(score / (1 - score));
}
