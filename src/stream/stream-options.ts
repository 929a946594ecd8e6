import { ConfigError } from "../shared/errors.ts";
import type { StreamClientOptions } from "./stream-client.ts";

/** Live-stream settings of an api replica (environment variables, validated once). */
export interface StreamOptions extends StreamClientOptions {
  /** Clients per api replica at most; more get 503. */
  maxClients: number;
  /** `filter` parameters per client at most. */
  maxFilters: number;
}

const SETTINGS: { name: string; key: keyof StreamOptions; fallback: number; min: number; max: number }[] = [
  { name: "STREAM_QUEUE_MAX", key: "queueCapacity", fallback: 1000, min: 1, max: 1_000_000 },
  { name: "STREAM_HEARTBEAT_MS", key: "heartbeatMs", fallback: 15_000, min: 100, max: 300_000 },
  { name: "STREAM_STALL_TIMEOUT_MS", key: "stallTimeoutMs", fallback: 30_000, min: 100, max: 3_600_000 },
  { name: "STREAM_MAX_CLIENTS", key: "maxClients", fallback: 1000, min: 1, max: 100_000 },
  { name: "STREAM_MAX_FILTERS", key: "maxFilters", fallback: 20, min: 1, max: 1000 },
];

/** Reads the STREAM_* variables; throws ConfigError naming a bad one. */
export function loadStreamOptions(env: Record<string, string | undefined> = process.env): StreamOptions {
  const options = {} as StreamOptions;
  for (const { name, key, fallback, min, max } of SETTINGS) {
    const raw = env[name];
    const value = raw === undefined || raw === "" ? fallback : Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
    options[key] = value;
  }
  return options;
}
