// Contracts shared by every streaming anomaly detector. Plain types, no runtime code.

/** One sample: a single tag value, or one value per tag of a device (same order every time). */
export type Sample = number | readonly number[];

/** How far one tag is from what the detector considers normal right now. */
export interface TagDeviation {
  /** Tag name (from the detector options) or its index as a string. */
  tag: string;
  /** The value received; null when it was missing or not a finite number. */
  value: number | null;
  /** The detector's current baseline for the tag (robust location). */
  expected: number;
  /** Robust z-score: (value - expected) / robust sigma; signed. */
  z: number;
  /** Share of the detector statistic this tag accounts for, in [0,1] (multivariate detectors). */
  share?: number;
}

export interface Explanation {
  detector: string;
  /** True until the detector has seen enough samples to score; the score is then 0. */
  warmingUp: boolean;
  /** The most deviant tags, most deviant first (at most `topTags`, default 3). */
  tags: TagDeviation[];
  /** Detector-specific statistics, e.g. { cusumUp, cusumDown } or { t2, q, components }. */
  stats: Record<string, number>;
}

export interface DetectorResult {
  /** Anomaly score in [0,1]; 0 while warming up or when every value is missing. */
  score: number;
  explanation: Explanation;
}

/** A serializable copy of a detector (options and learned state), for checkpoints. */
export interface DetectorSnapshot {
  kind: string;
  version: 1;
  options: Record<string, unknown>;
  state: unknown;
}

/**
 * A detector learns online from the samples it scores: no training data up front, O(1) time and
 * memory per sample with respect to the stream length (per tag, or per device when multivariate).
 * `t` (epoch ms) is accepted for the callers' convenience; the detectors count samples, not time.
 */
export interface StreamingDetector {
  readonly kind: string;
  update(x: Sample, t?: number): DetectorResult;
  snapshot(): DetectorSnapshot;
}

/** Options every detector understands. */
export interface CommonOptions {
  /** Tag names, in sample order; used in explanations. Defaults to "0", "1", ... */
  tags?: readonly string[];
  /** Samples needed before the score may be non-zero. */
  warmup?: number;
  /** Robust z (or z-equivalent statistic) at which the score is 0.5; the score is z²/(z²+h²). */
  zHalf?: number;
  /** How many tags the explanation lists. */
  topTags?: number;
}
