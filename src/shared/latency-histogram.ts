/**
 * Latency histogram with logarithmic buckets (about 4 % wide), constant memory whatever the count:
 * percentiles are read back with at most one bucket of error.
 */
export class LatencyHistogram {
  static readonly #GROWTH = 1.04;
  readonly #counts: number[] = [];
  #total = 0;
  #max = 0;

  record(ms: number): void {
    const value = Math.max(0, ms);
    const index = value < 1 ? 0 : Math.ceil(Math.log(value) / Math.log(LatencyHistogram.#GROWTH));
    this.#counts[index] = (this.#counts[index] ?? 0) + 1;
    this.#total++;
    if (value > this.#max) this.#max = value;
  }

  get count(): number {
    return this.#total;
  }

  /** Upper bound of the bucket holding the q-quantile (0 < q ≤ 1), in ms; 0 when empty. */
  quantile(q: number): number {
    if (this.#total === 0) return 0;
    const rank = Math.ceil(q * this.#total);
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i] ?? 0;
      if (seen >= rank) return Math.min(i === 0 ? 1 : LatencyHistogram.#GROWTH ** i, this.#max);
    }
    return this.#max;
  }

  summary(): { count: number; p50: number; p99: number; max: number } {
    const round = (x: number) => Math.round(x * 10) / 10;
    return { count: this.#total, p50: round(this.quantile(0.5)), p99: round(this.quantile(0.99)), max: round(this.#max) };
  }

  reset(): void {
    this.#counts.length = 0;
    this.#total = 0;
    this.#max = 0;
  }
}
