import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { DETECTOR_KINDS, type DetectorKind } from "../anomaly/index.ts";
import { ConfigError } from "./errors.ts";

/** Every setting plantwire reads, with its local default. `.env.example` lists the same names. */
export interface PlantwireConfig {
  nodeId: string | undefined;
  /** Moleculer namespace: brokers only see nodes of the same namespace (tests use their own). */
  namespace: string;
  /** Port of the process's HTTP health endpoint (/live, /ready); 0 turns it off. */
  healthPort: number;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace";
  services: string[];
  natsUrl: string;
  redisUrl: string;
  mqttUrl: string;
  /** MQTT_SECRET: every MQTT password (services', simulated PLCs') derives from it; unset: anonymous (MQTT_AUTH=off). */
  mqttSecret: string | undefined;
  /** false only with the demo switch MQTT_AUTH=off: the local broker lets anyone in. */
  mqttAuth: boolean;
  /** PEM contents for mqtts:// and wss:// (docs/security.md, "TLS"): a private CA, an optional client certificate. */
  mqttTls: { ca?: string; cert?: string; key?: string };
  /** How long the broker keeps the preprocessor's session (and queues for it) while it is away, in s. */
  mqttSessionExpiryS: number;
  topicRoot: string;
  kafkaBrokers: string[];
  /** Prepended to every Kafka topic name, so test runs and tenants can share a cluster. */
  kafkaTopicPrefix: string;
  kafkaPartitions: number;
  kafkaReplication: number;
  mongoUrl: string;
  apiPort: number;
  apiHost: string;
  /** PEM contents of API_TLS_CERT and API_TLS_KEY: the API serves HTTPS; undefined: plain HTTP. */
  apiTls: { cert: string; key: string } | undefined;
  /** API authentication and rate limiting (docs/security.md, "Authentication and roles"). */
  auth: {
    /** false only with the demo switch API_AUTH=off: every route open, no user recorded. */
    enabled: boolean;
    /** HS256 key of the login tokens; a secret, from the environment only (needed by api and auth). */
    jwtSecret: string | undefined;
    /** Password of the `admin` user the auth service creates when no user exists; a secret. */
    adminPassword: string | undefined;
    tokenTtlS: number;
    /** Requests per client (user, API key or address) and window; 0 turns rate limiting off. */
    rateLimit: number;
    rateWindowMs: number;
  };
  maxPayloadBytes: number;
  bucketSpanMs: number;
  /** How long a device must stay quiet after its window ended before the historian writes the window. */
  historianSealGraceMs: number;
  /** How long each historian tier is kept (the retention job deletes older documents), and how often it runs. */
  historianRetention: {
    rawDays: number;
    minuteDays: number;
    hourDays: number;
    sweepMs: number;
  };
  /** How long a command waits for the PLC's acknowledgement before it counts as timed out. */
  commandTimeoutMs: number;
  /** Live stream (Server-Sent Events) limits of one api replica. */
  stream: {
    /** Events queued per client before the oldest are dropped. */
    queueCapacity: number;
    heartbeatMs: number;
    /** A client whose socket stays full this long is disconnected. */
    stallTimeoutMs: number;
    maxClients: number;
    maxFilters: number;
  };
  /** Learned anomaly alarms of the anomaly-detector (docs/anomaly-benchmark.md, "Wiring"). */
  anomaly: {
    /** Level-mode preset (src/anomaly/presets.ts) run per device. */
    detector: DetectorKind;
    /** Score at or above which a device's anomaly alarm becomes active; it clears below half of it. */
    threshold: number;
    onDelayMs: number;
    offDelayMs: number;
    /** Samples a new detector learns before it may score. */
    warmupSamples: number;
    /** After a machine (re)enters running, its samples are neither scored nor learnt for this long. */
    settleMs: number;
    /** How often changed detector state is checkpointed to MongoDB. */
    checkpointMs: number;
  };
  plc: {
    count: number;
    scanMs: number;
    seed: number;
    site: string;
    /** This replica owns the PLCs whose index modulo shardCount equals shardIndex. */
    shardIndex: number;
    shardCount: number;
    /** Telemetry messages each PLC holds while they cannot be delivered (store-and-forward); the oldest go first. */
    bufferMax: number;
    /** After a reconnect, telemetry acknowledged this long before the connection was lost is sent again (0: off). */
    resendWindowMs: number;
  };
}

/** The services that connect to the MQTT broker, and so need MQTT_SECRET. */
export const MQTT_CLIENT_SERVICES = ["preprocessor", "control", "plc-simulator"];
export const ALL_SERVICES = ["devices", "plc-simulator", "preprocessor", "historian", "anomaly-detector", "alarms", "control", "dead-letters", "auth", "api"];

type Env = Record<string, string | undefined>;

function str(env: Env, name: string, fallback: string): string {
  const value = env[name];
  return value === undefined || value === "" ? fallback : value;
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function url(env: Env, name: string, fallback: string, schemes: string[]): string {
  const value = str(env, name, fallback);
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError(`${name} is not a URL: "${value}"`);
  }
  if (!schemes.includes(parsed.protocol.replace(/:$/, ""))) {
    throw new ConfigError(`${name} must use ${schemes.join(" or ")}, got "${value}"`);
  }
  return value;
}

function list(env: Env, name: string, fallback: string[]): string[] {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  return raw.split(",").map((s) => s.trim()).filter(Boolean);
}

function fraction(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || value >= 1) throw new ConfigError(`${name} must be a number between 0 and 1 (exclusive), got "${raw}"`);
  return value;
}

function detectorKind(env: Env): DetectorKind {
  const raw = str(env, "ANOMALY_DETECTOR", "robust-z");
  if (!(DETECTOR_KINDS as readonly string[]).includes(raw)) throw new ConfigError(`ANOMALY_DETECTOR must be one of ${DETECTOR_KINDS.join(", ")}, got "${raw}"`);
  return raw as DetectorKind;
}

/** PLC_SHARD="i/n": replica i of n simulator replicas (default "0/1"). */
function shard(env: Env): { shardIndex: number; shardCount: number } {
  const raw = str(env, "PLC_SHARD", "0/1");
  const match = /^(\d+)\/(\d+)$/.exec(raw);
  const shardIndex = match ? Number(match[1]) : NaN;
  const shardCount = match ? Number(match[2]) : NaN;
  if (!match || shardCount < 1 || shardIndex >= shardCount) {
    throw new ConfigError(`PLC_SHARD must be "index/count" with index < count, got "${raw}"`);
  }
  return { shardIndex, shardCount };
}

function topicPrefix(env: Env): string {
  const prefix = str(env, "KAFKA_TOPIC_PREFIX", "");
  if (!/^[A-Za-z0-9._-]{0,100}$/.test(prefix)) throw new ConfigError(`KAFKA_TOPIC_PREFIX may only hold letters, digits, ".", "_" and "-", got "${prefix}"`);
  return prefix;
}

/** API_AUTH / MQTT_AUTH: "on" (the default) or "off", the documented demo switches. */
function onOff(env: Env, name: "API_AUTH" | "MQTT_AUTH"): boolean {
  const raw = str(env, name, "on");
  if (raw !== "on" && raw !== "off") throw new ConfigError(`${name} must be "on" or "off", got "${raw}"`);
  return raw === "on";
}

/** The PEM file a variable names, read now so a wrong path fails at start rather than at the first connection. */
function pemFile(env: Env, name: string): string | undefined {
  const path = env[name];
  if (path === undefined || path === "") return undefined;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`${name} names a file that cannot be read: "${path}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!text.includes("-----BEGIN ")) throw new ConfigError(`${name} must name a PEM file, "${path}" is not one`);
  return text;
}

/** A certificate and its private key: both or neither, and they must belong together. */
function certPair(env: Env, certName: string, keyName: string): { cert: string; key: string } | undefined {
  const cert = pemFile(env, certName);
  const key = pemFile(env, keyName);
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined) throw new ConfigError(`${certName} must be set together with ${keyName}`);
  if (key === undefined) throw new ConfigError(`${keyName} must be set together with ${certName}`);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new ConfigError(`${certName} and ${keyName} do not form a usable certificate and key: ${(err as Error).message}`);
  }
  return { cert, key };
}

function mqttTls(env: Env, mqttUrl: string): PlantwireConfig["mqttTls"] {
  const ca = pemFile(env, "MQTT_TLS_CA");
  const pair = certPair(env, "MQTT_TLS_CERT", "MQTT_TLS_KEY");
  const tls = { ...(ca === undefined ? {} : { ca }), ...pair };
  // mqtt:// and ws:// would ignore them silently: the operator meant TLS.
  if (Object.keys(tls).length > 0 && !/^(mqtts|wss):/.test(mqttUrl)) {
    throw new ConfigError(`MQTT_TLS_CA, MQTT_TLS_CERT and MQTT_TLS_KEY need an mqtts:// or wss:// MQTT_URL, got "${mqttUrl}"`);
  }
  return tls;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"] as const;

/** Reads and validates the environment once; throws ConfigError naming the bad setting. */
export function loadConfig(env: Env = process.env): PlantwireConfig {
  const logLevel = str(env, "LOG_LEVEL", "info");
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got "${logLevel}"`);
  }
  const services = list(env, "SERVICES", ALL_SERVICES);
  const unknown = services.filter((s) => !ALL_SERVICES.includes(s));
  if (unknown.length > 0) {
    throw new ConfigError(`SERVICES names unknown services: ${unknown.join(", ")} (known: ${ALL_SERVICES.join(", ")})`);
  }
  const topicRoot = str(env, "MQTT_TOPIC_ROOT", "scada/v1");
  if (/[#+]/.test(topicRoot) || topicRoot.startsWith("/") || topicRoot.endsWith("/")) {
    throw new ConfigError(`MQTT_TOPIC_ROOT must be a plain topic prefix without wildcards or edge slashes, got "${topicRoot}"`);
  }
  const mqttUrl = url(env, "MQTT_URL", "mqtt://127.0.0.1:1883", ["mqtt", "mqtts", "ws", "wss"]);
  return {
    nodeId: env.NODE_ID || undefined,
    namespace: str(env, "MOLECULER_NAMESPACE", "plantwire"),
    healthPort: int(env, "HEALTH_PORT", 0, 0, 65535),
    logLevel: logLevel as PlantwireConfig["logLevel"],
    services,
    natsUrl: url(env, "NATS_URL", "nats://127.0.0.1:4222", ["nats", "tls"]),
    redisUrl: url(env, "REDIS_URL", "redis://127.0.0.1:6379", ["redis", "rediss"]),
    mqttUrl,
    mqttSecret: env.MQTT_SECRET || undefined,
    mqttAuth: onOff(env, "MQTT_AUTH"),
    mqttTls: mqttTls(env, mqttUrl),
    mqttSessionExpiryS: int(env, "MQTT_SESSION_EXPIRY_S", 3_600, 1, 604_800),
    topicRoot,
    kafkaBrokers: list(env, "KAFKA_BROKERS", ["127.0.0.1:9092"]),
    kafkaTopicPrefix: topicPrefix(env),
    kafkaPartitions: int(env, "KAFKA_PARTITIONS", 6, 1, 1000),
    kafkaReplication: int(env, "KAFKA_REPLICATION", 1, 1, 10),
    mongoUrl: url(env, "MONGO_URL", "mongodb://127.0.0.1:27017/plantwire", ["mongodb", "mongodb+srv"]),
    apiPort: int(env, "API_PORT", 8000, 1, 65535),
    apiHost: str(env, "API_HOST", "127.0.0.1"),
    apiTls: certPair(env, "API_TLS_CERT", "API_TLS_KEY"),
    auth: {
      enabled: onOff(env, "API_AUTH"),
      jwtSecret: env.AUTH_JWT_SECRET || undefined,
      adminPassword: env.AUTH_ADMIN_PASSWORD || undefined,
      tokenTtlS: int(env, "AUTH_TOKEN_TTL_S", 28_800, 60, 2_592_000),
      rateLimit: int(env, "API_RATE_LIMIT", 600, 0, 100_000_000),
      rateWindowMs: int(env, "API_RATE_WINDOW_MS", 60_000, 1_000, 3_600_000),
    },
    maxPayloadBytes: int(env, "MAX_PAYLOAD_BYTES", 65536, 256, 16 * 1024 * 1024),
    bucketSpanMs: int(env, "HISTORIAN_BUCKET_MS", 60_000, 1000, 86_400_000),
    historianSealGraceMs: int(env, "HISTORIAN_SEAL_GRACE_MS", 5_000, 0, 3_600_000),
    historianRetention: {
      rawDays: int(env, "HISTORIAN_RETENTION_RAW_DAYS", 7, 1, 36_500),
      minuteDays: int(env, "HISTORIAN_RETENTION_1M_DAYS", 90, 1, 36_500),
      hourDays: int(env, "HISTORIAN_RETENTION_1H_DAYS", 1825, 1, 36_500),
      sweepMs: int(env, "HISTORIAN_RETENTION_SWEEP_MS", 3_600_000, 1_000, 86_400_000),
    },
    commandTimeoutMs: int(env, "COMMAND_TIMEOUT_MS", 10_000, 100, 600_000),
    stream: {
      queueCapacity: int(env, "STREAM_QUEUE_MAX", 1000, 1, 1_000_000),
      heartbeatMs: int(env, "STREAM_HEARTBEAT_MS", 15_000, 100, 300_000),
      stallTimeoutMs: int(env, "STREAM_STALL_TIMEOUT_MS", 30_000, 100, 3_600_000),
      maxClients: int(env, "STREAM_MAX_CLIENTS", 1000, 1, 100_000),
      maxFilters: int(env, "STREAM_MAX_FILTERS", 20, 1, 1000),
    },
    anomaly: {
      detector: detectorKind(env),
      threshold: fraction(env, "ANOMALY_THRESHOLD", 0.5),
      onDelayMs: int(env, "ANOMALY_ON_DELAY_MS", 0, 0, 3_600_000),
      offDelayMs: int(env, "ANOMALY_OFF_DELAY_MS", 30_000, 0, 3_600_000),
      warmupSamples: int(env, "ANOMALY_WARMUP_SAMPLES", 400, 1, 1_000_000),
      settleMs: int(env, "ANOMALY_SETTLE_MS", 60_000, 0, 3_600_000),
      checkpointMs: int(env, "ANOMALY_CHECKPOINT_MS", 30_000, 100, 3_600_000),
    },
    plc: {
      count: int(env, "PLC_COUNT", 20, 0, 100_000),
      scanMs: int(env, "PLC_SCAN_MS", 1000, 10, 3_600_000),
      seed: int(env, "PLC_SEED", 1, 0, 2 ** 31 - 1),
      site: str(env, "PLC_SITE", "plant1"),
      bufferMax: int(env, "PLC_BUFFER_MAX", 3600, 1, 10_000_000),
      resendWindowMs: int(env, "PLC_RESEND_WINDOW_MS", 5_000, 0, 3_600_000),
      ...shard(env),
    },
  };
}

/**
 * Fails fast when a process runs the api or auth service with authentication on but without its
 * secrets, or an MQTT client service without MQTT_SECRET (scripts/start.sh generates them; Compose
 * and Kubernetes pass them from the environment).
 * Apart from loadConfig, so the defaults stay loadable for tools and tests that need no secrets.
 */
export function requireSecrets(config: PlantwireConfig): void {
  const mqttUsers = config.services.filter((s) => MQTT_CLIENT_SERVICES.includes(s));
  if (config.mqttAuth && mqttUsers.length > 0 && (config.mqttSecret === undefined || config.mqttSecret.length < 32)) {
    throw new ConfigError(`MQTT_SECRET must be set to at least 32 characters for ${mqttUsers.join(", ")} (or MQTT_AUTH=off, the demo switch)`);
  }
  if (!config.auth.enabled) return;
  const needs = config.services.filter((s) => s === "api" || s === "auth");
  if (needs.length === 0) return;
  const secret = config.auth.jwtSecret;
  if (secret === undefined || secret.length < 32) {
    throw new ConfigError(`AUTH_JWT_SECRET must be set to at least 32 characters for ${needs.join(" and ")} (or API_AUTH=off, the demo switch)`);
  }
}
