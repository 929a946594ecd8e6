import type { PlantwireConfig } from "../shared/config.ts";
import { DEFAULT_RAW_TIER_OPTIONS, type RawTierOptions } from "./raw-window-buffer.ts";

/** The raw tier's settings from the validated configuration: window span and seal grace. */
export function rawTierOptions(config: PlantwireConfig): RawTierOptions {
  return { ...DEFAULT_RAW_TIER_OPTIONS, spanMs: config.bucketSpanMs, graceMs: config.historianSealGraceMs };
}
