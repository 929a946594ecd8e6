// Runs a detector spec over the corpora and scores it: the pieces run.ts prints.
import { createDetector } from "../../src/anomaly/factory.ts";
import type { DetectorSpec } from "../../src/anomaly/factory.ts";
import type { NabSeries, SkabFile } from "./datasets.ts";
import { NAB_PROFILES, prepareNabFile, sweepNabThreshold } from "./nab-scorer.ts";
import type { NabCorpusResult, NabFile } from "./nab-scorer.ts";
import { bestF1Threshold, leaveOneOutMetrics, metricsAt } from "./skab-metrics.ts";
import type { BinaryMetrics, ScoredRows } from "./skab-metrics.ts";

/** SKAB protocol: the first 400 rows of each file are for training (here: warm-up), never scored. */
export const SKAB_TRAIN_ROWS = 400;

/** One fresh detector per file, fed every row in order; returns the score of every row. */
export function scoreSeries(spec: DetectorSpec, rows: readonly (number | readonly number[])[], tags?: readonly string[], times?: readonly number[]): Float64Array {
  const detector = createDetector(spec, tags ? { tags } : {});
  const out = new Float64Array(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = detector.update(rows[i] as number | readonly number[], times?.[i]).score;
  return out;
}

export interface NabEvaluation {
  profiles: NabCorpusResult[];
  seconds: number;
}

export function prepareNab(series: readonly NabSeries[]): NabFile[] {
  return series.map((s) => prepareNabFile(s.name, s.values.length, s.windows));
}

/** The scores of every NAB file (a fresh detector per file, fed the row times too). */
export function scoreNabSeries(spec: DetectorSpec, series: readonly NabSeries[]): Float64Array[] {
  return series.map((s) => scoreSeries(spec, s.values, undefined, s.times));
}

export function evaluateNab(spec: DetectorSpec, series: readonly NabSeries[], files: readonly NabFile[]): NabEvaluation {
  const started = performance.now();
  const scores = scoreNabSeries(spec, series);
  const profiles = NAB_PROFILES.map((p) => sweepNabThreshold(files, scores, p));
  return { profiles, seconds: (performance.now() - started) / 1000 };
}

export interface SkabEvaluation {
  /** The detector's a-priori threshold (no labels used). */
  fixed: { threshold: number; metrics: BinaryMetrics };
  /** Leave-one-file-out thresholds (each file judged with the best threshold of the others). */
  leaveOneOut: { metrics: BinaryMetrics; thresholds: number[] };
  /** The best single threshold on all files: an optimistic upper bound. */
  oracle: { threshold: number; metrics: BinaryMetrics };
  perFile: { name: string; f1: number; far: number; mar: number }[];
  seconds: number;
}

export function evaluateSkab(spec: DetectorSpec, files: readonly SkabFile[], fixedThreshold: number): SkabEvaluation {
  const started = performance.now();
  const parts: ScoredRows[] = files.map((f) => {
    const scores = scoreSeries(spec, f.values, f.columns, f.times);
    return { truth: f.anomaly.slice(SKAB_TRAIN_ROWS), scores: scores.slice(SKAB_TRAIN_ROWS) };
  });
  const leaveOneOut = leaveOneOutMetrics(parts);
  const perFile = files.map((f, i) => {
    const m = metricsAt([parts[i] as ScoredRows], leaveOneOut.thresholds[i] as number);
    return { name: f.name, f1: m.f1, far: m.far, mar: m.mar };
  });
  return { fixed: { threshold: fixedThreshold, metrics: metricsAt(parts, fixedThreshold) }, leaveOneOut, oracle: bestF1Threshold(parts), perFile, seconds: (performance.now() - started) / 1000 };
}
