import { strict as assert } from "node:assert";
import { windowsFromLabels } from "../../../bench/anomaly/datasets.ts";
import { NAB_PROFILES, normalizeNab, prepareNabFile, probationLength, scaledSigmoid, scoreNabCorpus, scoreNabFile, sweepNabThreshold } from "../../../bench/anomaly/nab-scorer.ts";
import type { NabProfile } from "../../../bench/anomaly/nab-scorer.ts";
import { bestF1Threshold, binaryMetrics, leaveOneOutMetrics, metricsAt } from "../../../bench/anomaly/skab-metrics.ts";

const [standard, lowFp, lowFn] = NAB_PROFILES as [NabProfile, NabProfile, NabProfile];
const unit: NabProfile = { name: "unit", tp: 1, fn: 1, fp: 1 };

/** 100 rows, no probation, windows [20, 24] and [60, 64] (width 5), detections at `rows`. */
function tiny(detections: number[], probation = 0) {
  const file = prepareNabFile("tiny.csv", 100, [{ start: 20, end: 24 }, { start: 60, end: 64 }], probation);
  const scores = new Array<number>(100).fill(0);
  for (const i of detections) scores[i] = 1;
  return { file, scores };
}

const close = (actual: number, expected: number, what: string): void => assert.ok(Math.abs(actual - expected) < 1e-4, `${what}: ${actual} vs ${expected}`);

describe("NAB v1.1 scorer", () => {
  it("uses the scaled sigmoid 2/(1+e^(5x)) - 1, and -1 from 3 window widths on", () => {
    close(scaledSigmoid(0), 0, "edge");
    close(scaledSigmoid(-1), 0.98661, "window start");
    close(scaledSigmoid(-0.5), 0.84828, "middle");
    assert.equal(scaledSigmoid(3), -1);
  });

  it("probation is min(floor(15 %), 750) rows", () => {
    assert.equal(probationLength(100), 15);
    assert.equal(probationLength(4032), 604);
    assert.equal(probationLength(18050), 750);
  });

  it("reproduces NAB's own worked example (scorer_test.py testScoringAllMetrics): -0.9540", () => {
    // TP at the window start (1.0), an extra TP in the window (free), an FP 3 rows after it
    // (sigma(3/4) = -0.9540) and a missed second window (-1), all weights 1.
    const { file, scores } = tiny([20, 21, 27]);
    const r = scoreNabFile(file, scores, 0.5, unit);
    close(r.raw, -0.954, "raw");
    assert.deepEqual([r.tp, r.fn, r.fp], [1, 1, 1]);
  });

  it("rewards an early detection in a window more than a late one", () => {
    const early = scoreNabFile(tiny([20, 60]).file, tiny([20, 60]).scores, 0.5, standard);
    const middle = scoreNabFile(tiny([22, 60]).file, tiny([22, 60]).scores, 0.5, standard);
    const late = scoreNabFile(tiny([24, 60]).file, tiny([24, 60]).scores, 0.5, standard);
    close(early.raw, 2, "start of both windows");
    close(middle.raw, 1 + 0.91743, "sigma(-3/5)/sigma(-1) = 0.91743");
    close(late.raw, 1 + 0.46839, "last row: sigma(-1/5)/sigma(-1) = 0.46839");
  });

  it("charges an FP after a window less right after it, the full A_FP three widths later, and A_FP before any window", () => {
    const base = scoreNabFile(tiny([20, 60]).file, tiny([20, 60]).scores, 0.5, standard).raw;
    const fp = (row: number): number => scoreNabFile(tiny([20, 60, row]).file, tiny([20, 60, row]).scores, 0.5, standard).raw - base;
    close(fp(25), 0.11 * -0.5546, "1 row after: sigma(1/4)");
    close(fp(30), 0.11 * -0.99889, "6 rows after: sigma(6/4)");
    close(fp(36), -0.11, "12 rows = 3 widths after");
    close(fp(5), -0.11, "before the first window");
  });

  it("ignores detections in the probation period", () => {
    const { file, scores } = tiny([5, 20, 60], 15);
    const r = scoreNabFile(file, scores, 0.5, standard);
    close(r.raw, 2, "the FP at row 5 is in probation");
    assert.equal(r.fp, 0);
  });

  it("normalizes so that the null detector scores 0 and the perfect one 100, per profile", () => {
    for (const profile of [standard, lowFp, lowFn]) {
      const none = scoreNabCorpus([tiny([]).file], [tiny([]).scores], 0.5, profile);
      const perfect = scoreNabCorpus([tiny([20, 60]).file], [tiny([20, 60]).scores], 0.5, profile);
      close(none.normalized, 0, `${profile.name} null`);
      close(perfect.normalized, 100, `${profile.name} perfect`);
    }
    assert.deepEqual(normalizeNab(0, 4, lowFn), { perfect: 4, null: -8, normalized: (100 * 8) / 12 });
  });

  it("sweeps the threshold over every distinct score of the corpus", () => {
    const file = prepareNabFile("sweep.csv", 100, [{ start: 20, end: 24 }, { start: 60, end: 64 }], 0);
    const scores = new Array<number>(100).fill(0.1);
    scores[20] = 0.9; // TP
    scores[61] = 0.6; // TP
    scores[80] = 0.7; // FP between them in rank
    const best = sweepNabThreshold([file], [scores], standard);
    assert.equal(best.threshold, 0.6, "taking the FP at 0.7 is worth the TP at 0.6");
    assert.deepEqual([best.tp, best.fn, best.fp], [2, 0, 1]);
    const strict = sweepNabThreshold([file], [scores], { name: "costly FP", tp: 1, fn: 1, fp: 5 });
    assert.equal(strict.threshold, 0.9);
  });

  it("derives windows from labelled points with NAB's rule when no windows file exists", () => {
    // 1000 rows, 2 labels: windows of floor(0.1·1000/2) = 50 rows centred on each, merged if they overlap.
    assert.deepEqual(windowsFromLabels(1000, [100, 500]), [{ start: 75, end: 125 }, { start: 475, end: 525 }]);
    assert.deepEqual(windowsFromLabels(1000, [100, 120]), [{ start: 75, end: 145 }]);
  });
});

describe("SKAB metrics", () => {
  it("computes F1 = TP/(TP + (FP + FN)/2), FAR = FP/(FP + TN), MAR = FN/(FN + TP)", () => {
    // truth   0 0 1 1 1 0
    // flagged 0 1 1 1 0 0  → TP 2, FP 1, FN 1, TN 2
    const m = binaryMetrics([0, 0, 1, 1, 1, 0], [0, 1, 1, 1, 0, 0]);
    assert.deepEqual([m.tp, m.fp, m.fn, m.tn], [2, 1, 1, 2]);
    close(m.f1, 2 / 3, "F1");
    close(m.far, 1 / 3, "FAR");
    close(m.mar, 1 / 3, "MAR");
  });

  it("pools files, flags rows at or above the threshold, and finds the best-F1 threshold", () => {
    const parts = [
      { truth: [0, 0, 1, 1], scores: [0.1, 0.2, 0.8, 0.6] },
      { truth: [0, 1, 1, 0], scores: [0.7, 0.9, 0.3, 0.1] },
    ];
    const m = metricsAt(parts, 0.6); // flags 0.8, 0.6, 0.7, 0.9
    assert.deepEqual([m.tp, m.fp, m.fn, m.tn], [3, 1, 1, 3]);
    const best = bestF1Threshold(parts);
    assert.equal(best.threshold, 0.3, "flagging down to 0.3 finds every anomaly for one FP");
    close(best.metrics.f1, 8 / 9, "F1 = 4/(4 + (1 + 0)/2)");
  });

  it("leave-one-file-out judges each file with the threshold chosen on the others", () => {
    const parts = [
      { truth: [0, 1], scores: [0.2, 0.9] },
      { truth: [0, 1], scores: [0.3, 0.8] },
      { truth: [0, 1], scores: [0.95, 0.99] },
    ];
    const { thresholds, metrics } = leaveOneOutMetrics(parts);
    // Without file 2 the best threshold is 0.9, which misses file 2's anomaly at 0.8.
    assert.deepEqual(thresholds, [0.8, 0.9, 0.8]);
    assert.deepEqual([metrics.tp, metrics.fp, metrics.fn, metrics.tn], [2, 1, 1, 2]);
  });
});
