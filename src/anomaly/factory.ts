// One entry point that builds a detector from a name or a spec (and rebuilds one from a
// checkpoint), so a service can take its detector choice from configuration.
import { CusumDetector } from "./cusum.ts";
import type { CusumOptions } from "./cusum.ts";
import { EnsembleDetector } from "./ensemble.ts";
import type { EnsembleOptions } from "./ensemble.ts";
import { OnsetFilter } from "./onset.ts";
import type { OnsetOptions } from "./onset.ts";
import { PageHinkleyDetector } from "./page-hinkley.ts";
import type { PageHinkleyOptions } from "./page-hinkley.ts";
import { PcaDetector } from "./pca.ts";
import type { PcaOptions } from "./pca.ts";
import { RarityCalibrator } from "./rarity.ts";
import type { RarityOptions } from "./rarity.ts";
import { RobustZDetector } from "./robust-z.ts";
import type { RobustZOptions } from "./robust-z.ts";
import { SeasonalZDetector } from "./seasonal-z.ts";
import type { SeasonalZOptions } from "./seasonal-z.ts";
import { VolatilityDetector } from "./volatility.ts";
import type { VolatilityOptions } from "./volatility.ts";
import type { CommonOptions, DetectorSnapshot, StreamingDetector } from "./types.ts";

export const DETECTOR_KINDS = ["robust-z", "seasonal-z", "volatility", "cusum", "page-hinkley", "pca", "ensemble"] as const;
export type DetectorKind = (typeof DETECTOR_KINDS)[number];

/** Optional stages after the detector, applied in this order: rarity, then onset. */
export interface DetectorStages {
  rarity?: RarityOptions;
  onset?: OnsetOptions;
}

export type DetectorSpec = DetectorStages &
  (
    | { kind: "robust-z"; options?: RobustZOptions }
    | { kind: "seasonal-z"; options?: SeasonalZOptions }
    | { kind: "volatility"; options?: VolatilityOptions }
    | { kind: "cusum"; options?: CusumOptions }
    | { kind: "page-hinkley"; options?: PageHinkleyOptions }
    | { kind: "pca"; options?: PcaOptions }
    | { kind: "ensemble"; members?: DetectorSpec[]; options?: EnsembleOptions }
  );

/** Members of an ensemble given none: each tag against its baseline, and the tags against each other. */
export const DEFAULT_ENSEMBLE: DetectorSpec[] = [{ kind: "robust-z" }, { kind: "pca" }];

/**
 * Builds a detector. `common` (tag names, warm-up, zHalf, topTags) is applied to every member;
 * a spec's own options win.
 */
export function createDetector(spec: DetectorSpec | DetectorKind, common: CommonOptions = {}): StreamingDetector {
  const s: DetectorSpec = typeof spec === "string" ? ({ kind: spec } as DetectorSpec) : spec;
  let detector: StreamingDetector;
  switch (s.kind) {
    case "robust-z":
      detector = new RobustZDetector({ ...common, ...s.options });
      break;
    case "seasonal-z":
      detector = new SeasonalZDetector({ ...common, ...s.options });
      break;
    case "volatility":
      detector = new VolatilityDetector({ ...common, ...s.options });
      break;
    case "cusum":
      detector = new CusumDetector({ ...common, ...s.options });
      break;
    case "page-hinkley":
      detector = new PageHinkleyDetector({ ...common, ...s.options });
      break;
    case "pca":
      detector = new PcaDetector({ ...common, ...s.options });
      break;
    case "ensemble":
      detector = new EnsembleDetector((s.members ?? DEFAULT_ENSEMBLE).map((m) => createDetector(m, common)), s.options);
      break;
    default:
      throw new RangeError(`unknown detector kind: ${(s as { kind: string }).kind}`);
  }
  if (s.rarity) detector = new RarityCalibrator(detector, s.rarity);
  return s.onset ? new OnsetFilter(detector, s.onset) : detector;
}

/** Rebuilds a detector, learned state included, from `snapshot()`. */
export function restoreDetector(snapshot: DetectorSnapshot): StreamingDetector {
  const options = snapshot.options;
  switch (snapshot.kind) {
    case "robust-z":
      return new RobustZDetector(options as RobustZOptions).restore(snapshot.state);
    case "seasonal-z":
      return new SeasonalZDetector(options as SeasonalZOptions).restore(snapshot.state);
    case "volatility":
      return new VolatilityDetector(options as VolatilityOptions).restore(snapshot.state);
    case "cusum":
      return new CusumDetector(options as CusumOptions).restore(snapshot.state);
    case "page-hinkley":
      return new PageHinkleyDetector(options as PageHinkleyOptions).restore(snapshot.state);
    case "pca":
      return new PcaDetector(options as PcaOptions).restore(snapshot.state);
    case "ensemble":
      return new EnsembleDetector((snapshot.state as DetectorSnapshot[]).map(restoreDetector), options as EnsembleOptions);
    case "rarity": {
      const state = snapshot.state as { calibrator: unknown; inner: DetectorSnapshot };
      return new RarityCalibrator(restoreDetector(state.inner), options as RarityOptions).restore(state);
    }
    case "onset": {
      const state = snapshot.state as { filter: unknown; inner: DetectorSnapshot };
      return new OnsetFilter(restoreDetector(state.inner), options as OnsetOptions).restore(state);
    }
    default:
      throw new RangeError(`unknown detector snapshot kind: ${snapshot.kind}`);
  }
}
