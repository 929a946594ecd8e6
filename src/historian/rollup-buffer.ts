import { emptyPeriodData, mergePeriodData, type PeriodData, type TierSpec } from "./rollups.ts";

export interface PeriodRef {
  device: string;
  start: number;
}

/** A source document's contribution to a period, by the source's `_id`. */
export interface Contribution {
  id: string;
  data: PeriodData;
}

/** A tier document to write: the period's sources not stored in any of its documents yet. */
export interface PeriodPlan extends PeriodRef {
  n: number;
  sources: string[];
  data: PeriodData;
}

interface PeriodState extends PeriodRef {
  /** True when `n` and `covered` are what the stored documents 0..n-1 of the period hold. */
  known: boolean;
  n: number;
  covered: Set<string>;
  /** Sources aggregated in memory and in no stored document of the period yet. */
  pending: Map<string, PeriodData>;
  /** Sources this replica wrote recently, kept for queries that read the documents before them. */
  recent: Map<string, PeriodData>;
}

interface DeviceState {
  /** Start of the newest period a source was added to. */
  newest: number;
  /** Wall-clock time of the last source added. */
  lastIngest: number;
}

function key(ref: PeriodRef): string {
  return `${ref.device}:${ref.start}`;
}

/**
 * One rollup tier in memory, without I/O (the service reads and writes): per device and period,
 * the contributions of sources (raw chunks for 1 m, 1 m documents for 1 h) that no stored
 * document of the period lists yet. A period is loaded by `_id` before sources are added (its
 * documents say which sources are covered, and sources stored but covered by none are added
 * then). Adding a source twice changes nothing, so replays and rebuilds never double count.
 *
 * A period is written once it is over (its device's sources reached a later period, or the clock
 * is past its end plus the grace and the device has been quiet for the grace) and nothing it
 * waits for is pending (`blocked`: raw records not stored yet, open hours of a day). Sources
 * that arrive after it was written go into the next document of the period, n + 1.
 */
export class RollupTierBuffer {
  readonly spec: TierSpec;
  private readonly graceMs: number;
  /** Periods without pending sources remembered per device behind its newest one. */
  private readonly retainPeriods: number;
  private readonly periods = new Map<string, PeriodState>();
  private readonly devices = new Map<string, DeviceState>();

  constructor(spec: TierSpec, graceMs: number, retainPeriods = 2) {
    this.spec = spec;
    this.graceMs = graceMs;
    this.retainPeriods = retainPeriods;
  }

  /** Sources held in memory and not written yet. */
  get pendingSources(): number {
    let n = 0;
    for (const p of this.periods.values()) n += p.pending.size;
    return n;
  }

  knowsDevice(device: string): boolean {
    return this.devices.has(device);
  }

  /** Start of the newest period the device's sources reached (-Infinity when unknown). */
  newest(device: string): number {
    return this.devices.get(device)?.newest ?? -Infinity;
  }

  /** Those of the refs whose periods must be loaded before sources are added to them. */
  toLoad(refs: readonly PeriodRef[]): PeriodRef[] {
    const wanted = new Map<string, PeriodRef>();
    for (const ref of refs) if (!this.periods.get(key(ref))?.known) wanted.set(key(ref), ref);
    return [...wanted.values()];
  }

  /**
   * What a load found: the sources listed by the period's stored documents 0..n-1 (one list per
   * document), and the contributions of stored sources none of them lists.
   */
  learn(ref: PeriodRef, documentSources: readonly (readonly string[])[], uncovered: readonly Contribution[]): void {
    const p = this.period(ref);
    p.known = true;
    p.n = documentSources.length;
    p.covered = new Set(documentSources.flat());
    p.pending = new Map();
    for (const c of uncovered) if (!p.covered.has(c.id)) p.pending.set(c.id, c.data);
    p.recent = new Map([...p.recent].filter(([id]) => p.covered.has(id)));
  }

  /** Adds a source's contribution to a loaded period; false when the period already has it. */
  add(ref: PeriodRef, id: string, data: PeriodData, now: number): boolean {
    const p = this.periods.get(key(ref));
    if (!p?.known) throw new Error(`rollup period ${key(ref)} was not loaded before adding to it`);
    const device = this.devices.get(ref.device);
    if (device) {
      device.newest = Math.max(device.newest, ref.start);
      device.lastIngest = now;
    } else {
      this.devices.set(ref.device, { newest: ref.start, lastIngest: now });
    }
    if (p.covered.has(id) || p.pending.has(id)) return false;
    p.pending.set(id, data);
    return true;
  }

  /**
   * The documents to write now: periods with pending sources that are over and not blocked.
   * `newestHint` lets a coarser tier know how far its device's finer tier got.
   */
  take(now: number, blocked: (ref: PeriodRef) => boolean, newestHint: (device: string) => number = () => -Infinity): PeriodPlan[] {
    const plans: PeriodPlan[] = [];
    for (const p of this.periods.values()) {
      if (!p.known || p.pending.size === 0) continue;
      const device = this.devices.get(p.device);
      const newest = Math.max(device?.newest ?? Infinity, newestHint(p.device));
      const over = p.start < newest || (now >= p.start + this.spec.periodMs + this.graceMs && now >= (device?.lastIngest ?? 0) + this.graceMs);
      if (!over || blocked(p)) continue;
      const data = emptyPeriodData();
      for (const contribution of p.pending.values()) mergePeriodData(data, contribution, this.spec.intervalMs);
      plans.push({ device: p.device, start: p.start, n: p.n, sources: [...p.pending.keys()], data });
    }
    return plans;
  }

  /** The plan's document was acknowledged by MongoDB. */
  written(plan: PeriodPlan): void {
    const p = this.period(plan);
    for (const id of plan.sources) {
      const data = p.pending.get(id);
      p.pending.delete(id);
      p.covered.add(id);
      if (data) p.recent.set(id, data);
    }
    p.n = Math.max(p.n, plan.n + 1);
  }

  /** A write failed or collided with another writer's: reload the period before planning for it again. */
  invalidate(ref: PeriodRef): void {
    const p = this.periods.get(key(ref));
    if (p) p.known = false;
  }

  /** Whether a period of the device overlapping [from, to] holds sources not written yet. */
  hasPending(device: string, from: number, to: number): boolean {
    for (const p of this.periods.values()) if (p.device === device && p.pending.size > 0 && p.start <= to && p.start + this.spec.periodMs > from) return true;
    return false;
  }

  /** The device's contributions in memory for periods overlapping [from, to]: pending, and recent too when asked. */
  snapshot(device: string, from: number, to: number, withRecent: boolean): Contribution[] {
    const out: Contribution[] = [];
    for (const p of this.periods.values()) {
      if (p.device !== device || p.start > to || p.start + this.spec.periodMs <= from) continue;
      for (const [id, data] of p.pending) out.push({ id, data });
      if (withRecent) for (const [id, data] of p.recent) out.push({ id, data });
    }
    return out;
  }

  /** Forgets devices this replica no longer owns: their sources are stored, the new owner loads them. */
  retainDevices(keep: (device: string) => boolean): void {
    for (const device of [...this.devices.keys()]) if (!keep(device)) this.devices.delete(device);
    for (const [k, p] of this.periods) if (!keep(p.device)) this.periods.delete(k);
  }

  /** Forgets periods without pending sources more than retainPeriods behind their device's newest. */
  prune(): void {
    for (const [k, p] of this.periods) {
      if (p.pending.size > 0) continue;
      const newest = this.devices.get(p.device)?.newest ?? -Infinity;
      if (p.start < newest - this.retainPeriods * this.spec.periodMs) this.periods.delete(k);
    }
  }

  private period(ref: PeriodRef): PeriodState {
    let p = this.periods.get(key(ref));
    if (!p) {
      p = { device: ref.device, start: ref.start, known: false, n: 0, covered: new Set(), pending: new Map(), recent: new Map() };
      this.periods.set(key(ref), p);
    }
    return p;
  }
}
