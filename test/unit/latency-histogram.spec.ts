import { strict as assert } from "node:assert";
import { LatencyHistogram } from "../../src/shared/latency-histogram.ts";

describe("latency histogram", () => {
  it("reads percentiles back within one bucket (4 %)", () => {
    const histogram = new LatencyHistogram();
    for (let ms = 1; ms <= 1000; ms++) histogram.record(ms);
    const { count, p50, p99, max } = histogram.summary();
    assert.equal(count, 1000);
    assert.ok(p50 >= 500 && p50 <= 520, `p50 ${p50}`);
    assert.ok(p99 >= 990 && p99 <= 1000, `p99 ${p99}`);
    assert.equal(max, 1000);
  });

  it("handles sub-millisecond values, an empty state and reset", () => {
    const histogram = new LatencyHistogram();
    assert.deepEqual(histogram.summary(), { count: 0, p50: 0, p99: 0, max: 0 });
    histogram.record(0.2);
    histogram.record(-5);
    assert.equal(histogram.quantile(1), 0.2);
    histogram.reset();
    assert.equal(histogram.count, 0);
  });
});
