// Turns a detector's level-like score into event-like scores: a sample keeps its score only when
// it is a new high since the last event (which is forgotten after `hold` samples); otherwise 0.
// An excursion that stays high is reported once at its onset (and again after `hold` samples, or
// when it grows), instead of on every sample: what an operator wants from an alarm, and what
// NAB's scoring rewards (every detection outside a labelled window costs).
import { plain } from "./sample.ts";
import type { DetectorResult, DetectorSnapshot, Sample, StreamingDetector } from "./types.ts";

export interface OnsetOptions {
  /** Samples after which the last event no longer masks a lower score. */
  hold?: number;
}

interface OnsetState {
  peak: number;
  age: number;
}

export class OnsetFilter implements StreamingDetector {
  readonly kind: string;
  readonly inner: StreamingDetector;
  readonly options: OnsetOptions;
  private readonly hold: number;
  private st: OnsetState = { peak: 0, age: 0 };

  constructor(inner: StreamingDetector, options: OnsetOptions = {}) {
    this.inner = inner;
    this.options = options;
    this.kind = `${inner.kind}+onset`;
    this.hold = options.hold ?? 288;
  }

  update(x: Sample, t?: number): DetectorResult {
    const result = this.inner.update(x, t);
    const st = this.st;
    st.age++;
    if (st.age > this.hold) st.peak = 0;
    const raw = result.score;
    let score = 0;
    if (raw > st.peak) {
      score = raw;
      st.peak = raw;
      st.age = 0;
    }
    result.explanation.stats.rawScore = raw;
    return { score, explanation: result.explanation };
  }

  snapshot(): DetectorSnapshot {
    return { kind: "onset", version: 1, options: plain(this.options) as Record<string, unknown>, state: { filter: plain(this.st), inner: this.inner.snapshot() } };
  }

  restore(state: unknown): this {
    this.st = plain((state as { filter: OnsetState }).filter) as OnsetState;
    return this;
  }
}
