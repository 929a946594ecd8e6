// The REST API as the dashboard calls it (docs/api.md). Same origin: the gateway serves both.
import type { AlarmKpis } from "../../src/alarms/alarm-kpis.ts";
import type { JournalPage } from "../../src/alarms/alarm-store.ts";
import type { CommandRequest, CommandView } from "../../src/control/commands.ts";
import type { KafkaLagReport } from "../../src/kafka/consumer-lag.ts";
import type { SystemHealth } from "../../src/shared/health-summary.ts";
import type { AlarmDocument, DeviceAnomalyScore, DeviceDocument, HistoryPoint, LatestValue } from "../../src/shared/types.ts";
import { authHeader, sessionExpired } from "./session.ts";

export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

async function request<T>(path: string, init?: RequestInit, acceptStatus: readonly number[] = []): Promise<T> {
  const res = await fetch(`/api${path}`, { ...init, headers: { Accept: "application/json", ...authHeader(), ...(init?.body ? { "Content-Type": "application/json" } : {}) } });
  if (res.status === 401) sessionExpired();
  const body = (await res.json().catch(() => null)) as (T & { error?: { message?: string } }) | null;
  if (!res.ok && !acceptStatus.includes(res.status)) throw new ApiError(res.status, body?.error?.message ?? `${res.status} ${res.statusText}`);
  return body as T;
}

const post = <T>(path: string, body: unknown) => request<T>(path, { method: "POST", body: JSON.stringify(body) });

/** A history point: raw (`v`) or, once the historian serves rollups, an aggregate with `avg`/`min`/`max`. */
export type TrendPoint = Partial<HistoryPoint> & { ts: number; avg?: number; min?: number; max?: number };

export interface HistoryAnswer {
  source?: string;
  points: TrendPoint[];
}

/** A dead letter as `GET /api/dead-letters` lists it. */
export interface DeadLetterView {
  _id: string;
  reason: string;
  source: string;
  device?: string;
  at: number;
  status: string;
}

export interface StreamStats {
  clients: number;
  eventsSent: number;
  eventsDropped: number;
  records: { telemetry: number; alarms: number };
}

export const api = {
  devices: () => request<{ total: number; devices: DeviceDocument[] }>("/devices?limit=1000"),
  device: (id: string) => request<DeviceDocument>(`/devices/${encodeURIComponent(id)}`),
  latest: (id: string) => request<{ device: string; values: Record<string, LatestValue> }>(`/devices/${encodeURIComponent(id)}/latest`),
  /** At most `points` points: raw samples on short ranges, 1 m or 1 h rollups (`avg`, `min`, `max`) on long ones. */
  history: (id: string, tag: string, from: number, to: number, points: number) =>
    request<HistoryAnswer>(`/devices/${encodeURIComponent(id)}/history?${new URLSearchParams({ tag, from: String(from), to: String(to), points: String(points) })}`),
  alarms: (query: Record<string, string>) => request<{ total: number; alarms: AlarmDocument[] }>(`/alarms?${new URLSearchParams({ limit: "1000", ...query })}`),
  alarm: (id: string) => request<{ alarm: AlarmDocument; journal: JournalPage }>(`/alarms/${encodeURIComponent(id)}?journalLimit=50`),
  kpis: () => request<AlarmKpis>("/alarms/kpis"),
  ack: (id: string, comment: string) => post<AlarmDocument>(`/alarms/${encodeURIComponent(id)}/ack`, comment ? { comment } : {}),
  shelve: (id: string, durationMs: number, comment: string) => post<AlarmDocument>(`/alarms/${encodeURIComponent(id)}/shelve`, { durationMs, comment }),
  unshelve: (id: string, comment: string) => post<AlarmDocument>(`/alarms/${encodeURIComponent(id)}/unshelve`, comment ? { comment } : {}),
  comment: (id: string, comment: string) => post<AlarmDocument>(`/alarms/${encodeURIComponent(id)}/comments`, { comment }),
  sendCommand: (device: string, command: CommandRequest) => post<CommandView>(`/devices/${encodeURIComponent(device)}/commands`, command),
  command: (id: string) => request<CommandView>(`/commands/${encodeURIComponent(id)}`),
  commands: (device: string) => request<{ commands: CommandView[] }>(`/commands?device=${encodeURIComponent(device)}&limit=10`),
  /** 503 still carries the health report (some service or server is down). */
  health: () => request<SystemHealth>("/health", undefined, [503]),
  streamStats: () => request<StreamStats>("/stream/stats"),
  /** Consumer lag per group; 503 (an ApiError) when Kafka is unreachable. */
  kafkaLag: () => request<KafkaLagReport>("/system/kafka"),
  /** Null while the detector has evaluated none of the device's telemetry (404). */
  anomaly: async (id: string) => {
    try {
      return await request<DeviceAnomalyScore & { source: "live" | "checkpoint" }>(`/devices/${encodeURIComponent(id)}/anomaly`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return null;
      throw err;
    }
  },
  /** Null while the gateway has no dead-letter route (404). */
  deadLetters: async () => {
    try {
      return await request<{ total: number; items: DeadLetterView[] }>("/dead-letters?limit=20");
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return null;
      throw err;
    }
  },
};
