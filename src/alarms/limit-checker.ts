import type { AlarmTransition, LimitKind, TagDefinition, TelemetryRecord } from "../shared/types.ts";

interface ActiveCondition {
  alarmId: string;
  kind: LimitKind;
  limit: number;
}

/** Fraction of a tag's engineering span (or of the limit, without a span) a value must recede before clearing. */
export const DEFAULT_DEADBAND_FRACTION = 0.01;

function deadband(tag: TagDefinition, limit: number, fraction: number): number {
  const span = tag.min !== undefined && tag.max !== undefined ? tag.max - tag.min : Math.abs(limit);
  return span * fraction;
}

/**
 * Static high/low limit conditions per device and tag. Raises when a value goes beyond a limit and
 * clears only once it is back inside by the deadband, so noise at the limit does not chatter.
 */
export class LimitChecker {
  readonly #active = new Map<string, ActiveCondition>();
  readonly #deadbandFraction: number;

  constructor(deadbandFraction = DEFAULT_DEADBAND_FRACTION) {
    this.#deadbandFraction = deadbandFraction;
  }

  /** Restores conditions that were active before a restart, so they are not raised twice. */
  restore(active: readonly Pick<AlarmTransition, "alarmId" | "device" | "tag" | "kind" | "limit">[]): void {
    for (const a of active) this.#active.set(`${a.device}/${a.tag}`, { alarmId: a.alarmId, kind: a.kind, limit: a.limit });
  }

  activeCount(): number {
    return this.#active.size;
  }

  evaluate(record: TelemetryRecord, tags: readonly TagDefinition[]): AlarmTransition[] {
    const transitions: AlarmTransition[] = [];
    for (const tag of tags) {
      const sample = record.values[tag.name];
      if (!sample || typeof sample.v !== "number" || sample.q === "bad") continue;
      const value = sample.v;
      const key = `${record.device}/${tag.name}`;
      const active = this.#active.get(key);
      const base = { device: record.device, tag: tag.name, value, ts: record.ts };
      if (active) {
        const band = deadband(tag, active.limit, this.#deadbandFraction);
        const back = active.kind === "hi" ? value < active.limit - band : value > active.limit + band;
        if (back) {
          this.#active.delete(key);
          transitions.push({ ...base, alarmId: active.alarmId, kind: active.kind, limit: active.limit, state: "cleared" });
        }
        continue;
      }
      const kind: LimitKind | undefined = tag.hi !== undefined && value > tag.hi ? "hi" : tag.lo !== undefined && value < tag.lo ? "lo" : undefined;
      if (!kind) continue;
      const limit = (kind === "hi" ? tag.hi : tag.lo) as number;
      const alarmId = `${record.device}:${tag.name}:${kind}:${record.ts}`;
      this.#active.set(key, { alarmId, kind, limit });
      transitions.push({ ...base, alarmId, kind, limit, state: "active" });
    }
    return transitions;
  }
}
