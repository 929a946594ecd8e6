// Alarm condition definitions derived from a tag's entry in the device registry.
import type { AlarmKind, AlarmSeverity, LimitKind, TagDefinition } from "../shared/types.ts";
import { deadbandOf, DEFAULT_DEADBAND_FRACTION } from "./limit-checker.ts";

/** The tag name of alarms about the device as a whole (communication loss). */
export const DEVICE_TAG = "*";

export const DEFAULT_SEVERITY: Record<AlarmKind, AlarmSeverity> = {
  hihi: "high",
  lolo: "high",
  hi: "medium",
  lo: "medium",
  roc: "medium",
  stuck: "low",
  comm: "high",
  anomaly: "low",
};

/** Labels operators know (ISA-18.2 / DCS usage). */
export const KIND_LABEL: Record<AlarmKind, string> = {
  hihi: "HH",
  hi: "H",
  lo: "L",
  lolo: "LL",
  roc: "rate of change",
  stuck: "stuck value",
  comm: "communication loss",
  anomaly: "anomaly",
};

/** The one id an alarm has for its whole life: one alarm per condition. */
export function alarmIdOf(device: string, tag: string, kind: AlarmKind): string {
  return `${device}:${tag}:${kind}`;
}

export type TagConditionKind = LimitKind | "roc" | "stuck";

/** One condition of a tag; `limit` is in the tag's unit (units/s for roc, ms for stuck). */
export interface ConditionDefinition {
  tag: string;
  unit: string;
  kind: TagConditionKind;
  limit: number;
  severity: AlarmSeverity;
  deadband: number;
  onDelayMs: number;
  offDelayMs: number;
}

const LIMIT_KINDS: readonly LimitKind[] = ["hihi", "hi", "lo", "lolo"];

/** The conditions a numeric tag defines: one per limit it has, plus rate-of-change and stuck value where set. */
export function conditionDefinitions(tag: TagDefinition, deadbandFraction = DEFAULT_DEADBAND_FRACTION): ConditionDefinition[] {
  if (tag.type !== "number") return [];
  const settings = tag.alarm ?? {};
  const severity = (kind: TagConditionKind): AlarmSeverity => settings.severity?.[kind] ?? DEFAULT_SEVERITY[kind];
  const delays = { onDelayMs: Math.max(0, settings.onDelayMs ?? 0), offDelayMs: Math.max(0, settings.offDelayMs ?? 0) };
  const definitions: ConditionDefinition[] = [];
  for (const kind of LIMIT_KINDS) {
    const limit = tag[kind];
    if (typeof limit !== "number" || !Number.isFinite(limit)) continue;
    definitions.push({ tag: tag.name, unit: tag.unit, kind, limit, severity: severity(kind), deadband: Math.max(0, deadbandOf(tag, limit, deadbandFraction)), ...delays });
  }
  if (settings.rocPerSecond !== undefined && settings.rocPerSecond > 0) {
    definitions.push({ tag: tag.name, unit: `${tag.unit}/s`, kind: "roc", limit: settings.rocPerSecond, severity: severity("roc"), deadband: 0, ...delays });
  }
  if (settings.stuckAfterMs !== undefined && settings.stuckAfterMs > 0) {
    // The stuck time is its own delay: the condition raises as soon as it is reached.
    definitions.push({ tag: tag.name, unit: "ms", kind: "stuck", limit: settings.stuckAfterMs, severity: severity("stuck"), deadband: 0, onDelayMs: 0, offDelayMs: delays.offDelayMs });
  }
  return definitions;
}
