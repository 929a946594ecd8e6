// Alarm-system performance figures (ISA-18.2 / EEMUA 191): alarm rate per 10 minutes and floods,
// bad actors, standing alarms, chattering, time to acknowledge. Pure: computed from journal
// entries and current alarm documents.
import type { AlarmDocument, AlarmEvent, AlarmKind, AlarmState } from "../shared/types.ts";

export const TEN_MINUTES_MS = 600_000;

export interface KpiOptions {
  from: number;
  to: number;
  now: number;
  /** An alarm active at least this long is standing (ISA-18.2 calls them stale after 24 h). */
  standingAfterMs: number;
  topN: number;
  /** More annunciated alarms than this in 10 minutes is a flood (ISA-18.2: 10). */
  floodPerTenMinutes: number;
}

export const DEFAULT_KPI_OPTIONS = { standingAfterMs: 24 * 3_600_000, topN: 10, floodPerTenMinutes: 10 } as const;

interface AlarmRef {
  alarmId: string;
  device: string;
  tag: string;
  kind: AlarmKind;
}

export interface AlarmKpis {
  from: number;
  to: number;
  /** Alarms that reached an operator (a transition into active-unack) in the period. */
  annunciated: number;
  perTenMinutes: { average: number; peak: number; floodIntervals: number; buckets: { start: number; count: number }[] };
  topBadActors: (AlarmRef & { annunciated: number; share: number })[];
  standing: { thresholdMs: number; count: number; alarms: (AlarmRef & { activeForMs: number; state: AlarmState })[] };
  timeToAck: { acknowledged: number; meanMs: number | null; medianMs: number | null };
  chattering: AlarmRef[];
  /** Alarms per current state. */
  current: Record<AlarmState, number>;
}

export type KpiEvent = Pick<AlarmEvent, "alarmId" | "device" | "tag" | "kind" | "at" | "action" | "from" | "to" | "ackDelayMs">;

/** Whether the entry put an alarm in front of an operator: a new activation or a re-annunciation. */
export function isAnnunciation(event: Pick<AlarmEvent, "from" | "to">): boolean {
  return event.to === "active-unack" && event.from !== "active-unack";
}

function ref(a: { alarmId?: string; _id?: string; device: string; tag: string; kind: AlarmKind }): AlarmRef {
  return { alarmId: a.alarmId ?? a._id ?? "", device: a.device, tag: a.tag, kind: a.kind };
}

export function computeKpis(events: readonly KpiEvent[], alarms: readonly AlarmDocument[], options: KpiOptions): AlarmKpis {
  const { from, to, now } = options;
  const inPeriod = events.filter((e) => e.at >= from && e.at < to);
  const annunciations = inPeriod.filter(isAnnunciation);

  const firstBucket = Math.floor(from / TEN_MINUTES_MS);
  const lastBucket = Math.floor((Math.max(from, to - 1)) / TEN_MINUTES_MS);
  const counts = new Map<number, number>();
  for (const e of annunciations) {
    const bucket = Math.floor(e.at / TEN_MINUTES_MS);
    counts.set(bucket, (counts.get(bucket) ?? 0) + 1);
  }
  const buckets: { start: number; count: number }[] = [];
  for (let b = firstBucket; b <= lastBucket; b++) buckets.push({ start: b * TEN_MINUTES_MS, count: counts.get(b) ?? 0 });
  const peak = buckets.reduce((max, b) => Math.max(max, b.count), 0);

  const perAlarm = new Map<string, { ref: AlarmRef; annunciated: number }>();
  for (const e of annunciations) {
    const entry = perAlarm.get(e.alarmId) ?? { ref: ref(e), annunciated: 0 };
    entry.annunciated++;
    perAlarm.set(e.alarmId, entry);
  }
  const topBadActors = [...perAlarm.values()]
    .sort((a, b) => b.annunciated - a.annunciated || a.ref.alarmId.localeCompare(b.ref.alarmId))
    .slice(0, options.topN)
    .map((e) => ({ ...e.ref, annunciated: e.annunciated, share: Math.round((e.annunciated / annunciations.length) * 1000) / 1000 }));

  const standing = alarms
    .filter((a) => (a.state === "active-unack" || a.state === "active-acked") && now - a.activatedAt >= options.standingAfterMs)
    .map((a) => ({ ...ref(a), activeForMs: now - a.activatedAt, state: a.state }))
    .sort((a, b) => b.activeForMs - a.activeForMs);

  const delays = inPeriod
    .filter((e) => e.action === "acknowledged" && typeof e.ackDelayMs === "number")
    .map((e) => e.ackDelayMs as number)
    .sort((a, b) => a - b);
  const mid = Math.floor(delays.length / 2);

  const current: Record<AlarmState, number> = { "active-unack": 0, "active-acked": 0, "rtn-unack": 0, cleared: 0, shelved: 0, suppressed: 0, "out-of-service": 0 };
  for (const a of alarms) current[a.state]++;

  return {
    from,
    to,
    annunciated: annunciations.length,
    perTenMinutes: {
      average: Math.round((annunciations.length / buckets.length) * 100) / 100,
      peak,
      floodIntervals: buckets.filter((b) => b.count > options.floodPerTenMinutes).length,
      buckets,
    },
    topBadActors,
    standing: { thresholdMs: options.standingAfterMs, count: standing.length, alarms: standing.slice(0, options.topN) },
    timeToAck: {
      acknowledged: delays.length,
      meanMs: delays.length > 0 ? Math.round(delays.reduce((sum, d) => sum + d, 0) / delays.length) : null,
      medianMs: delays.length === 0 ? null : delays.length % 2 === 1 ? delays[mid] : Math.round((delays[mid - 1] + delays[mid]) / 2),
    },
    chattering: alarms.filter((a) => a.chattering).map(ref),
    current,
  };
}
