import type { BrokerOptions } from "moleculer";
import { loadConfig, type PlantwireConfig } from "./src/shared/config.ts";

/** ioredis connection options from a redis:// URL (the cacher's types take an object, not a URL). */
export function redisConnectionOptions(redisUrl: string): Record<string, unknown> {
  const url = new URL(redisUrl);
  return {
    host: url.hostname,
    port: Number(url.port || 6379),
    username: url.username || undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    db: Number(url.pathname.slice(1) || 0),
    tls: url.protocol === "rediss:" ? {} : undefined,
  };
}

/**
 * Broker options for every plantwire process. Timeouts and heartbeats are explicit: Moleculer's
 * defaults (no request timeout, 30 s heartbeat timeout) leave callers hanging long after a node died.
 */
export function brokerOptions(config: PlantwireConfig): BrokerOptions {
  return {
    namespace: config.namespace,
    nodeID: config.nodeId ?? null,
    logger: { type: "Console", options: { formatter: "json", colors: false } },
    logLevel: config.logLevel,
    transporter: { type: "NATS", options: { url: config.natsUrl } },
    cacher: { type: "Redis", options: { redis: redisConnectionOptions(config.redisUrl), prefix: `${config.namespace}-cache`, ttl: 30 } },
    serializer: "JSON",
    requestTimeout: 5_000,
    retryPolicy: { enabled: true, retries: 2, delay: 100, maxDelay: 1_000, factor: 2, check: (err) => !!(err as { retryable?: boolean }).retryable },
    heartbeatInterval: 2,
    heartbeatTimeout: 6,
    disableBalancer: false,
    registry: { strategy: "RoundRobin", preferLocal: true },
    circuitBreaker: { enabled: true, threshold: 0.5, minRequestCount: 20, windowTime: 60, halfOpenTime: 10_000 },
    tracking: { enabled: true, shutdownTimeout: 10_000 },
    validator: true,
    metrics: false,
    tracing: false,
  };
}

export default brokerOptions(loadConfig());
