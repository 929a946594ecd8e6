// Named configurations for two kinds of use, measured by bench/anomaly (docs/anomaly-benchmark.md).
//
// "level" mode answers "is this device abnormal right now?" on every sample: the score stays high
// while the anomaly lasts. Tuned for process sensors sampled about once a second (SKAB-like):
// a short pre-filter against sensor noise, a baseline that remembers ~1000 samples and learns
// anomalous samples at a tenth of the rate, 400 samples of warm-up.
//
// "event" mode answers "did something unusual just start?": each detector's score is calibrated
// against the stream's own history (rarity.ts) and only its onsets are kept (onset.ts), so one
// threshold fits every tag and a long excursion raises one alarm. Tuned for slower metrics
// (5-minute samples, daily cycles: NAB-like).
import type { DetectorKind, DetectorSpec } from "./factory.ts";

const PROCESS_LEVEL = { smooth: 0.1, alpha: 0.001, warmup: 400 };

/** Level mode, one spec per detector kind. */
export const LEVEL_PRESETS: Record<DetectorKind, DetectorSpec> = {
  "robust-z": { kind: "robust-z", options: { ...PROCESS_LEVEL } },
  "seasonal-z": { kind: "seasonal-z", options: { smooth: PROCESS_LEVEL.smooth } },
  volatility: { kind: "volatility", options: { warmup: PROCESS_LEVEL.warmup } },
  cusum: { kind: "cusum", options: { warmup: PROCESS_LEVEL.warmup } },
  "page-hinkley": { kind: "page-hinkley", options: { warmup: PROCESS_LEVEL.warmup } },
  pca: { kind: "pca", options: { ...PROCESS_LEVEL, forget: 0.001, variance: 0.7 } },
  ensemble: {
    kind: "ensemble",
    members: [
      { kind: "robust-z", options: { ...PROCESS_LEVEL } },
      { kind: "pca", options: { ...PROCESS_LEVEL, forget: 0.001, variance: 0.7 } },
    ],
  },
};

/** Rarity memory (about a week of 5-minute samples) and onset hold (a day of them). */
export const EVENT_STAGES = { rarity: { memory: 2000 }, onset: { hold: 288 } };

/** Event mode, one spec per detector kind: the detector's defaults plus the two stages. */
export const EVENT_PRESETS: Record<DetectorKind, DetectorSpec> = {
  "robust-z": { kind: "robust-z", ...EVENT_STAGES },
  "seasonal-z": { kind: "seasonal-z", ...EVENT_STAGES },
  volatility: { kind: "volatility", ...EVENT_STAGES },
  cusum: { kind: "cusum", ...EVENT_STAGES },
  "page-hinkley": { kind: "page-hinkley", ...EVENT_STAGES },
  pca: { kind: "pca", ...EVENT_STAGES },
  ensemble: {
    kind: "ensemble",
    // Each member is calibrated on its own, then the most surprising one speaks.
    members: [
      { kind: "seasonal-z", rarity: EVENT_STAGES.rarity },
      { kind: "page-hinkley", rarity: EVENT_STAGES.rarity },
      { kind: "volatility", rarity: EVENT_STAGES.rarity },
    ],
    onset: EVENT_STAGES.onset,
  },
};
