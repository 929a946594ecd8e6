// Calibrates a detector's score against that stream's own history: the output says how rare the
// current score is, not how large. A tag whose detector routinely reaches 0.9 (a square wave, a
// sparse spiky counter, a daily peak) stops alarming at 0.9, while a quiet tag alarms at its first
// unusual value, so one threshold fits heterogeneous tags. The score history is an exponentially
// weighted histogram over log-odds bins (fixed size: 96 numbers, O(bins) time per sample).
// With r = -log10 P(S >= s), score = r / (r + log10(memory)): 0.5 means P = 1/memory (as rare as
// the rarest score the histogram can remember), 0.67 means 1/memory², and so on; so a threshold
// is a false-alarm rate per sample for a stationary stream.
import { plain } from "./sample.ts";
import type { DetectorResult, DetectorSnapshot, Sample, StreamingDetector } from "./types.ts";

export interface RarityOptions {
  /** Samples the histogram remembers (EW); also sets the rarest representable level. */
  memory?: number;
  /** Samples of history needed before the output may be non-zero. */
  warmup?: number;
}

const BINS = 96;
const LOW = -24; // log2 odds of the score: bins of half an octave from 2^-24 to 2^24
const WIDTH = 0.5;

interface RarityState {
  n: number;
  /** Weight the next sample adds; grows by 1/(1-a) each sample instead of decaying every bin. */
  gain: number;
  total: number;
  bins: number[];
}

/** Position of a score on the bin axis (bin index + fraction); -1 for a score of 0. */
function position(score: number): number {
  if (!(score > 0)) return -1;
  // Saturated scores sit at the bottom of the top bin, so that they count every earlier one as >=.
  if (score >= 1) return BINS - 1;
  const pos = (Math.log2(score / (1 - score)) - LOW) / WIDTH;
  return pos < 0 ? 0 : pos >= BINS - 1 ? BINS - 1 : pos;
}

export class RarityCalibrator implements StreamingDetector {
  readonly kind: string;
  readonly inner: StreamingDetector;
  readonly options: RarityOptions;
  private readonly rate: number;
  private readonly warmup: number;
  private readonly full: number;
  private st: RarityState = { n: 0, gain: 1, total: 0, bins: new Array<number>(BINS).fill(0) };

  constructor(inner: StreamingDetector, options: RarityOptions = {}) {
    this.inner = inner;
    this.options = options;
    this.kind = `${inner.kind}+rarity`;
    const memory = options.memory ?? 2000;
    this.rate = 1 / memory;
    this.warmup = options.warmup ?? 200;
    this.full = Math.log10(memory);
  }

  /**
   * Probability, under the remembered history, of a score at least as high as `score`: the
   * histogram mass above it (linear inside its bin) plus one pseudo sample whose mass halves for
   * every two bins (an octave of the odds) beyond the highest score remembered, so that record
   * scores still rank by how far they pass the record.
   */
  tail(score: number): number {
    const st = this.st;
    const pos = position(score);
    if (pos < 0) return 1;
    const b = Math.floor(pos);
    let above = 0;
    let top = -1;
    const negligible = 1e-9 * st.total;
    for (let i = BINS - 1; i > b; i--) {
      const w = st.bins[i] as number;
      above += w;
      if (top < 0 && w > negligible) top = i;
    }
    const own = st.bins[b] as number;
    above += (1 - (pos - b)) * own;
    if (top < 0) {
      if (own > negligible) top = b;
      else for (let i = b - 1; i >= 0 && top < 0; i--) if ((st.bins[i] as number) > negligible) top = i;
    }
    const beyond = Math.max(0, pos - (top + 1));
    const pseudo = st.gain * Math.pow(2, -beyond / 2);
    return Math.min(1, (above + pseudo) / (st.total + st.gain));
  }

  update(x: Sample, t?: number): DetectorResult {
    const result = this.inner.update(x, t);
    const st = this.st;
    const raw = result.score;
    let score = 0;
    if (!result.explanation.warmingUp) {
      if (st.n >= this.warmup && raw > 0) {
        const r = -Math.log10(this.tail(raw));
        score = r / (r + this.full);
      }
      st.n++;
      st.gain /= 1 - this.rate;
      st.total += st.gain;
      const pos = position(raw);
      if (pos >= 0) st.bins[Math.floor(pos)] = (st.bins[Math.floor(pos)] as number) + st.gain; // zeros only count in the total
      if (st.gain > 1e100) {
        for (let i = 0; i < BINS; i++) st.bins[i] = (st.bins[i] as number) / st.gain;
        st.total /= st.gain;
        st.gain = 1;
      }
    }
    result.explanation.stats.rawScore = raw;
    return { score, explanation: { ...result.explanation, warmingUp: result.explanation.warmingUp || st.n < this.warmup } };
  }

  snapshot(): DetectorSnapshot {
    return { kind: "rarity", version: 1, options: plain(this.options) as Record<string, unknown>, state: { calibrator: plain(this.st), inner: this.inner.snapshot() } };
  }

  restore(state: unknown): this {
    this.st = plain((state as { calibrator: RarityState }).calibrator) as RarityState;
    return this;
  }
}
