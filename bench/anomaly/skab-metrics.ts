// SKAB's pointwise metrics (as in its evaluation code, predictions of all files pooled):
// F1 = TP / (TP + (FP + FN) / 2), false alarm rate FP / (FP + TN), missed alarm rate FN / (FN + TP).

export interface BinaryMetrics {
  tp: number;
  fp: number;
  fn: number;
  tn: number;
  f1: number;
  far: number;
  mar: number;
}

export function metricsFromCounts(tp: number, fp: number, fn: number, tn: number): BinaryMetrics {
  const f1Denominator = tp + (fp + fn) / 2;
  return {
    tp,
    fp,
    fn,
    tn,
    // Nothing to find and nothing flagged is a perfect answer.
    f1: f1Denominator === 0 ? 1 : tp / f1Denominator,
    far: fp + tn === 0 ? 0 : fp / (fp + tn),
    mar: fn + tp === 0 ? 0 : fn / (fn + tp),
  };
}

/** `truth` is 0/1 per row; a row is flagged when `flagged[i]` is truthy. */
export function binaryMetrics(truth: ArrayLike<number>, flagged: ArrayLike<number | boolean>): BinaryMetrics {
  if (truth.length !== flagged.length) throw new RangeError(`${truth.length} labels for ${flagged.length} predictions`);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let tn = 0;
  for (let i = 0; i < truth.length; i++) {
    const actual = truth[i] === 1;
    const predicted = Boolean(flagged[i]);
    if (actual && predicted) tp++;
    else if (predicted) fp++;
    else if (actual) fn++;
    else tn++;
  }
  return metricsFromCounts(tp, fp, fn, tn);
}

export interface ScoredRows {
  truth: ArrayLike<number>;
  scores: ArrayLike<number>;
}

/** Pooled metrics when rows with score >= threshold are flagged. */
export function metricsAt(parts: readonly ScoredRows[], threshold: number): BinaryMetrics {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let tn = 0;
  for (const { truth, scores } of parts) {
    for (let i = 0; i < truth.length; i++) {
      const actual = truth[i] === 1;
      const predicted = (scores[i] as number) >= threshold;
      if (actual && predicted) tp++;
      else if (predicted) fp++;
      else if (actual) fn++;
      else tn++;
    }
  }
  return metricsFromCounts(tp, fp, fn, tn);
}

/** The threshold (a distinct score, or above all) with the best pooled F1; ties keep the higher one. */
export function bestF1Threshold(parts: readonly ScoredRows[]): { threshold: number; metrics: BinaryMetrics } {
  const rows: { s: number; y: boolean }[] = [];
  let positives = 0;
  for (const { truth, scores } of parts) {
    for (let i = 0; i < truth.length; i++) {
      const y = truth[i] === 1;
      if (y) positives++;
      rows.push({ s: scores[i] as number, y });
    }
  }
  rows.sort((a, b) => b.s - a.s);
  const negatives = rows.length - positives;
  let tp = 0;
  let fp = 0;
  let best = metricsFromCounts(0, 0, positives, negatives);
  let threshold = rows.length > 0 ? (rows[0] as { s: number }).s + 1 : 1;
  for (let i = 0; i < rows.length; ) {
    const s = (rows[i] as { s: number }).s;
    for (; i < rows.length && (rows[i] as { s: number }).s === s; i++) {
      if ((rows[i] as { y: boolean }).y) tp++;
      else fp++;
    }
    const m = metricsFromCounts(tp, fp, positives - tp, negatives - fp);
    if (m.f1 > best.f1 + 1e-12) {
      best = m;
      threshold = s;
    }
  }
  return { threshold, metrics: best };
}

/**
 * Leave-one-file-out: each file is flagged with the threshold that is best on all the other
 * files; the pooled metrics of those predictions estimate what a threshold chosen on labelled
 * history gives on new data. Returns the pooled metrics and each file's threshold.
 */
export function leaveOneOutMetrics(parts: readonly ScoredRows[]): { metrics: BinaryMetrics; thresholds: number[] } {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let tn = 0;
  const thresholds: number[] = [];
  parts.forEach((part, k) => {
    const { threshold } = bestF1Threshold(parts.filter((_, j) => j !== k));
    thresholds.push(threshold);
    const m = metricsAt([part], threshold);
    tp += m.tp;
    fp += m.fp;
    fn += m.fn;
    tn += m.tn;
  });
  return { metrics: metricsFromCounts(tp, fp, fn, tn), thresholds };
}
