// Runs a whole plantwire system as child processes against the real local servers, isolated from
// any other run by its own Moleculer namespace, MQTT root, Kafka topic prefix and Mongo database.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { Kafka, logLevel, type Consumer } from "kafkajs";
import type { ServiceBroker } from "moleculer";
import { MongoClient } from "mongodb";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { signJwt } from "../../src/auth/jwt.ts";
import type { Role } from "../../src/auth/roles.ts";
import { createPlantwireBroker } from "../../src/main.ts";
import { changeAccounts } from "../../src/mqtt-auth/account-store.ts";
import { derivedPassword, deviceAccount, deviceUsername, serviceUsername, systemAccounts, type ServiceRole } from "../../src/mqtt-auth/accounts.ts";
import { loadConfig } from "../../src/shared/config.ts";
import { KAFKA_TOPICS } from "../../src/shared/topics.ts";
import type { DeviceAddress } from "../../src/shared/types.ts";
import { waitFor } from "./wait.ts";

const REPO = fileURLToPath(new URL("../..", import.meta.url));

export interface TestSystemEnv extends Record<string, string> {
  MOLECULER_NAMESPACE: string;
  MQTT_TOPIC_ROOT: string;
  KAFKA_TOPIC_PREFIX: string;
  MONGO_URL: string;
  API_PORT: string;
  MQTT_SECRET: string;
}

/** The local stack's Mosquitto (scripts/infra.sh, default PLANTWIRE_DATA): where the shared tests' accounts go. */
export const SHARED_MQTT_URL = "mqtt://127.0.0.1:1883";
const SHARED_DATA = process.env.PLANTWIRE_DATA || `${REPO}.data`;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** The API secrets of every system this test process starts (isolatedEnv): fresh per process, never in the repository. */
export const TEST_JWT_SECRET = randomBytes(32).toString("base64url");
export const TEST_ADMIN_PASSWORD = randomBytes(12).toString("base64url");
/** The MQTT secret of every system this test process starts: its accounts' passwords derive from it. */
export const TEST_MQTT_SECRET = randomBytes(32).toString("base64url");

/**
 * A bearer token as `POST /api/auth/login` issues it, signed with the test process's secret, so a
 * test needs neither a login round trip nor the auth service among the services it starts.
 */
export function testToken(role: Role = "admin", name = role === "admin" ? "admin" : `test-${role}`): string {
  const iat = Math.floor(Date.now() / 1000);
  return signJwt({ sub: name, role, iat, exp: iat + 86_400 }, TEST_JWT_SECRET);
}

/** The Authorization header of a test client with `role` (admin: may do everything). */
export function authHeaders(role: Role = "admin"): Record<string, string> {
  return { Authorization: `Bearer ${testToken(role)}` };
}

/** fetch with an admin's credentials added (a test's own headers win). */
export function apiFetch(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, headers: { ...authHeaders(), ...(init.headers as Record<string, string> | undefined) } });
}

/** Settings that keep one test run's data apart from every other run's. `mongoServer`: another MongoDB-wire server (test/chaos runs its own). */
export async function isolatedEnv(label: string, extra: Record<string, string> = {}, mongoServer = "mongodb://127.0.0.1:27017"): Promise<TestSystemEnv> {
  const run = `${label}${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
  const env: TestSystemEnv = {
    MOLECULER_NAMESPACE: run,
    MQTT_TOPIC_ROOT: `${run}/v1`,
    KAFKA_TOPIC_PREFIX: `${run}.`,
    MONGO_URL: `${mongoServer}/${run}`,
    API_PORT: String(await freePort()),
    KAFKA_PARTITIONS: "3",
    LOG_LEVEL: "warn",
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    AUTH_ADMIN_PASSWORD: TEST_ADMIN_PASSWORD,
    MQTT_SECRET: TEST_MQTT_SECRET,
    // Tests fire requests faster than any person; test/integration/auth.spec.ts turns the limiter on.
    API_RATE_LIMIT: "0",
    ...extra,
  };
  // On the shared broker; a private one (extra MQTT_URL) is its owner's to provision.
  if (extra.MQTT_URL === undefined) await provisionMqtt(env);
  return env;
}

/**
 * The MQTT accounts a test system needs on a broker's stack: its service accounts, one per
 * simulated PLC, and `devices` (a test's own PLCs).
 */
export async function provisionMqtt(env: TestSystemEnv, devices: DeviceAddress[] = [], dataDir = SHARED_DATA, brokerUrl = SHARED_MQTT_URL): Promise<void> {
  const config = loadConfig({ ...process.env, ...env });
  const specs = [...systemAccounts(config, env.MQTT_SECRET), ...devices.map((d) => deviceAccount(env.MQTT_SECRET, deviceUsername(env.MQTT_TOPIC_ROOT, d)))];
  await changeAccounts({ dataDir }, { upsert: specs, brokerUrl });
}

/** Username and password of a test system's service account (admin: anything under its root). */
export function mqttLogin(env: TestSystemEnv, role: ServiceRole = "admin"): { username: string; password: string } {
  const username = serviceUsername(env.MOLECULER_NAMESPACE, role);
  return { username, password: derivedPassword(env.MQTT_SECRET, username) };
}

/** Username and password of a device of a test system (provisioned by provisionMqtt). */
export function deviceLogin(env: TestSystemEnv, address: DeviceAddress): { username: string; password: string } {
  const username = deviceUsername(env.MQTT_TOPIC_ROOT, address);
  return { username, password: derivedPassword(env.MQTT_SECRET, username) };
}

/** A client of the shared broker, logged in as one of the test system's service accounts. */
export function connectMqtt(env: TestSystemEnv, options: IClientOptions = {}, role: ServiceRole = "admin"): Promise<MqttClient> {
  return mqtt.connectAsync(SHARED_MQTT_URL, { ...mqttLogin(env, role), ...options });
}

export interface RunningProcess {
  child: ChildProcess;
  output: () => string;
  stop: () => Promise<number | null>;
}

/** Starts `node src/main.ts` with the given settings; its output is kept for failure messages. */
export function startPlantwire(env: Record<string, string>): RunningProcess {
  const child = spawn(process.execPath, ["src/main.ts"], { cwd: REPO, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** GET with an admin's credentials, the JSON answer parsed. */
export async function getJson<T = unknown>(url: string): Promise<{ status: number; body: T }> {
  const res = await apiFetch(url);
  return { status: res.status, body: (await res.json()) as T };
}

/** Waits until the API answers /api/health with every service and server up. */
export async function waitHealthy(env: TestSystemEnv, system: RunningProcess, timeoutMs = 90_000): Promise<void> {
  await waitFor(
    "a healthy system",
    async () => {
      if (system.child.exitCode !== null) throw new Error(`plantwire exited with ${system.child.exitCode}:\n${system.output()}`);
      const { status } = await getJson(`http://127.0.0.1:${env.API_PORT}/api/health`);
      return status === 200;
    },
    timeoutMs,
    250,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n--- plantwire output ---\n${system.output()}`);
  });
}

export function kafkaClient(): Kafka {
  return new Kafka({ clientId: "plantwire-test", brokers: ["127.0.0.1:9092"], logLevel: logLevel.NOTHING });
}

/** Removes what a run left in the servers: its topics, its database, its retained MQTT messages. */
export async function cleanupRun(env: TestSystemEnv): Promise<void> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    const topics = Object.values(KAFKA_TOPICS).map((t) => env.KAFKA_TOPIC_PREFIX + t);
    const existing = new Set(await admin.listTopics());
    await admin.deleteTopics({ topics: topics.filter((t) => existing.has(t)) });
  } finally {
    await admin.disconnect();
  }
  const mongo = new MongoClient(env.MONGO_URL);
  try {
    await mongo.db().dropDatabase();
  } finally {
    await mongo.close();
  }
  // A private broker (MQTT_URL) goes with its test; on the shared one, the run's retained births and accounts.
  if (env.MQTT_URL === undefined) {
    await clearRetained(env);
    const root = `${env.MQTT_TOPIC_ROOT}/`;
    const namespace = `${env.MOLECULER_NAMESPACE}-`;
    await changeAccounts({ dataDir: SHARED_DATA }, { remove: (a) => a.name.startsWith(root) || a.name.startsWith(namespace) });
  }
}

/** Clears every retained message under the system's root by publishing empty retained payloads (as its MQTT admin). */
export async function clearRetained(env: TestSystemEnv): Promise<void> {
  const filter = `${env.MQTT_TOPIC_ROOT}/#`;
  const client = await connectMqtt(env, { clientId: `cleanup-${process.pid}-${Date.now()}` });
  const retained = new Set<string>();
  client.on("message", (topic, payload, packet) => {
    if (packet.retain && payload.length > 0) retained.add(topic);
  });
  await client.subscribeAsync(filter, { qos: 1 });
  // Retained messages are sent right after SUBACK; a ping round trip guarantees they arrived.
  await client.publishAsync(`${filter.replace(/#$/, "")}_cleanup`, "", { qos: 1 });
  for (const topic of retained) await client.publishAsync(topic, "", { qos: 1, retain: true });
  await client.endAsync();
}

/** Starts the named services in this process (one broker) with an isolated configuration. */
export async function startServices(env: TestSystemEnv, services: string[]): Promise<ServiceBroker> {
  const config = loadConfig({ ...process.env, ...env, SERVICES: services.join(","), LOG_LEVEL: env.LOG_LEVEL ?? "warn" });
  const broker = await createPlantwireBroker(config);
  await broker.start();
  return broker;
}

/** Collects the records of one of the run's Kafka topics, read from the beginning. */
export async function collectTopic<T>(env: TestSystemEnv, kind: keyof typeof KAFKA_TOPICS, into: { key: string; value: T }[]): Promise<Consumer> {
  const consumer = kafkaClient().consumer({ groupId: `${env.MOLECULER_NAMESPACE}.test-${kind}-${Math.random().toString(36).slice(2)}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topics: [env.KAFKA_TOPIC_PREFIX + KAFKA_TOPICS[kind]], fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void into.push({ key: message.key?.toString() ?? "", value: JSON.parse(message.value?.toString() ?? "null") as T }) });
  return consumer;
}
