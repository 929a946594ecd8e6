// An engineer's changes to a device (limits, alarm settings, descriptions): checked against the
// registry's tag definitions, stored apart from the PLC's birth tag list (which every birth
// rewrites) and merged into it whenever the registry answers.
import type { DeviceDocument, DeviceOverrides, DeviceUpdate, LimitKind, TagAlarmSettings, TagDefinition, TagOverride } from "../shared/types.ts";

/** Limits in their required order: lolo ≤ lo < hi ≤ hihi. */
export const LIMIT_KINDS: readonly LimitKind[] = ["lolo", "lo", "hi", "hihi"];
export const METADATA_MAX_KEYS = 20;

export type UpdateCheck = { ok: true; value: DeviceOverrides } | { ok: false; field: string; message: string };

/** A tag definition with an override applied: a number sets a limit, `null` removes it. */
export function effectiveTag(tag: TagDefinition, override: TagOverride | undefined): TagDefinition {
  if (!override) return tag;
  const effective: TagDefinition = { ...tag };
  for (const kind of LIMIT_KINDS) {
    const value = override[kind];
    if (value === null) delete effective[kind];
    else if (value !== undefined) effective[kind] = value;
  }
  if (override.alarm) {
    const alarm: Record<string, unknown> = { ...tag.alarm };
    for (const [key, value] of Object.entries(override.alarm)) {
      if (value === null) delete alarm[key];
      else if (key === "severity") alarm.severity = { ...tag.alarm?.severity, ...(value as TagAlarmSettings["severity"]) };
      else if (value !== undefined) alarm[key] = value;
    }
    if (Object.keys(alarm).length > 0) effective.alarm = alarm as TagAlarmSettings;
    else delete effective.alarm;
  }
  return effective;
}

/** The device as clients and the other services see it: birth tags with the overrides merged in. */
export function effectiveDevice(device: DeviceDocument): DeviceDocument {
  const overrides = device.overrides;
  if (!overrides) return { ...device, metadata: {} };
  const byName = new Map(overrides.tags.map((t) => [t.name, t]));
  return { ...device, tags: device.tags.map((t) => effectiveTag(t, byName.get(t.name))), metadata: { ...overrides.metadata } };
}

/** Why a tag's limits are unusable (out of range or out of order), naming a limit the change touched. */
export function limitProblem(tag: TagDefinition, changed: ReadonlySet<LimitKind>): { kind: LimitKind; message: string } | undefined {
  const range = tag.min !== undefined || tag.max !== undefined ? `${tag.min ?? "-∞"}..${tag.max ?? "∞"}${tag.unit ? ` ${tag.unit}` : ""}` : "";
  for (const kind of LIMIT_KINDS) {
    const value = tag[kind];
    if (value === undefined) continue;
    if ((tag.min !== undefined && value < tag.min) || (tag.max !== undefined && value > tag.max)) {
      return { kind, message: `${kind} ${value} is outside the engineering range of ${tag.name}: ${range}` };
    }
  }
  const present = LIMIT_KINDS.filter((k) => tag[k] !== undefined);
  for (let i = 0; i < present.length; i++) {
    for (let j = i + 1; j < present.length; j++) {
      const [low, high] = [present[i], present[j]];
      const a = tag[low] as number;
      const b = tag[high] as number;
      // A low and a high limit must leave room between them; lolo may equal lo, hi may equal hihi.
      const strict = (low === "lolo" || low === "lo") && (high === "hi" || high === "hihi");
      if (strict ? a < b : a <= b) continue;
      const kind = changed.has(high) || !changed.has(low) ? high : low;
      return { kind, message: `limits of ${tag.name} must be ordered lolo ≤ lo < hi ≤ hihi: ${low} ${a} ${strict ? "is not below" : "is above"} ${high} ${b}` };
    }
  }
  return undefined;
}

function mergeTagOverride(previous: TagOverride & { name: string }, change: TagOverride): TagOverride & { name: string } {
  const merged: TagOverride & { name: string } = { ...previous };
  for (const kind of LIMIT_KINDS) if (change[kind] !== undefined) merged[kind] = change[kind];
  if (change.alarm) {
    const alarm: Record<string, unknown> = { ...previous.alarm };
    for (const [key, value] of Object.entries(change.alarm)) {
      if (value === undefined) continue;
      alarm[key] = key === "severity" && value !== null && alarm.severity ? { ...(alarm.severity as object), ...(value as object) } : value;
    }
    merged.alarm = alarm;
  }
  return merged;
}

/**
 * Applies a change to a device's stored overrides: unknown tags, limits on non-numeric tags,
 * limits outside the engineering range or out of order are refused, naming the field.
 */
export function applyDeviceUpdate(device: DeviceDocument, update: DeviceUpdate, user: string, at: number): UpdateCheck {
  const fail = (field: string, message: string): UpdateCheck => ({ ok: false, field, message });
  const metadataChanges = Object.entries(update.metadata ?? {});
  const tagChanges = Object.entries(update.tags ?? {});
  if (metadataChanges.length === 0 && tagChanges.length === 0) return fail("tags", "nothing to change: give metadata and/or tags");
  const current = device.overrides ?? { metadata: {}, tags: [], updatedBy: user, updatedAt: at, revision: 0 };

  const metadata = { ...current.metadata };
  for (const [key, value] of metadataChanges) {
    if (value === null) delete metadata[key];
    else metadata[key] = value;
  }
  if (Object.keys(metadata).length > METADATA_MAX_KEYS) return fail("metadata", `metadata holds at most ${METADATA_MAX_KEYS} entries`);

  const overrides = new Map(current.tags.map((t) => [t.name, t]));
  for (const [name, change] of tagChanges) {
    const tag = device.tags.find((t) => t.name === name);
    if (!tag) {
      const known = device.tags.map((t) => t.name);
      const list = known.length > 20 ? `${known.slice(0, 20).join(", ")}, …` : known.join(", ");
      return fail(`tags.${name}`, `tag "${name}" is not a tag of ${device._id} (tags: ${list || "none"})`);
    }
    if (tag.type !== "number") return fail(`tags.${name}`, `${name} is a ${tag.type} tag: only numeric tags take limits and alarm settings`);
    const merged = mergeTagOverride(overrides.get(name) ?? { name }, change);
    const changed = new Set(LIMIT_KINDS.filter((k) => change[k] !== undefined));
    const problem = limitProblem(effectiveTag(tag, merged), changed);
    if (problem) return fail(`tags.${name}.${problem.kind}`, problem.message);
    overrides.set(name, merged);
  }
  return { ok: true, value: { metadata, tags: [...overrides.values()], updatedBy: user, updatedAt: at, revision: current.revision + 1 } };
}
