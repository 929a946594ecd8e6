// A private infrastructure stack (test/chaos/private-stack.ts) with every service running as N
// separate processes (replicas, each with its own NODE_ID; the PLC simulator sharded with
// PLC_SHARD="i/N", each api on its own port), under PLC load. Shared by
// test/chaos/replicas.spec.ts (SIGKILL one side of every service) and bench/backpressure.bench.ts
// (one replica each, MongoDB stopped for a while). Counts lost and duplicated samples per PLC, the
// seqs sent against the raw chunks in MongoDB.
import { execFile } from "node:child_process";
import { appendFileSync, cpSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Kafka, logLevel, type Admin } from "kafkajs";
import type { ServiceBroker } from "moleculer";
import { MongoClient } from "mongodb";
import mqtt from "mqtt";
import type { HistorianStats } from "../../services/historian.service.ts";
import type { PlcListing } from "../../services/plc-simulator.service.ts";
import type { PreprocessorStats } from "../../services/preprocessor.service.ts";
import { readLagReport, type KafkaLagReport } from "../../src/kafka/consumer-lag.ts";
import { createPlantwireBroker } from "../../src/main.ts";
import { ALL_SERVICES, loadConfig } from "../../src/shared/config.ts";
import type { DeviceDocument } from "../../src/shared/types.ts";
import { freePort, isolatedEnv, mqttLogin, provisionMqtt, startPlantwire, waitHealthy, type RunningProcess, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";
import { freePortOffset, PrivateStack, stackMongoServer, stackUrls, type Server } from "./private-stack.ts";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
/** REPLICA_RUN_LOG_DIR=<dir>: every process's whole output, and the servers' logs at the end, are kept there. */
const LOG_DIR = process.env.REPLICA_RUN_LOG_DIR;
if (LOG_DIR) mkdirSync(LOG_DIR, { recursive: true });
const run = promisify(execFile);

export interface ReplicaRunOptions {
  plcs: number;
  scanMs: number;
  /** Processes per service (2: replicas 0 and 1 of everything). */
  replicas: number;
  /** Settings for every process on top of the run's (e.g. HISTORIAN_BUCKET_MS). */
  env?: Record<string, string>;
}

export interface Point {
  ts: number;
  seq: number;
}

/** Per PLC: the seqs expected in MongoDB, how many of them it holds, which are missing, how many samples it holds twice. */
export interface DeviceCount {
  device: string;
  sent: number;
  stored: number;
  lost: number[];
  duplicated: number;
}

/** A process's resident set size in MiB (from /proc), undefined once it is gone. */
export function rssMiB(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
    return line ? Number(line.split(/\s+/)[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

export class ReplicaRun {
  readonly options: ReplicaRunOptions;
  stack!: PrivateStack;
  env!: TestSystemEnv;
  client!: ServiceBroker;
  /** The API port of each api replica (replica 0 has env.API_PORT). */
  apiPorts: number[] = [];
  /** Wall-clock time before the first service started: every PLC's seqs since then count. */
  startedAt = 0;
  readonly #processes = new Map<string, RunningProcess>();
  readonly #tags = new Map<string, string>();
  #kafka: Admin | undefined;
  #mongo: MongoClient | undefined;

  constructor(options: ReplicaRunOptions) {
    this.options = options;
  }

  nodeId(service: string, replica: number): string {
    return `${this.env.MOLECULER_NAMESPACE}-${service}-${replica}`;
  }

  process(service: string, replica: number): RunningProcess | undefined {
    return this.#processes.get(this.nodeId(service, replica));
  }

  /** The replica's process has neither exited nor been killed. */
  running(service: string, replica: number): boolean {
    const child = this.process(service, replica)?.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  apiUrl(replica: number): string {
    return `http://127.0.0.1:${this.apiPorts[replica]}/api`;
  }

  async start(): Promise<void> {
    const { plcs, scanMs, replicas } = this.options;
    const offset = await freePortOffset();
    this.env = await isolatedEnv(
      "replicas",
      {
        ...stackUrls(offset),
        PLC_COUNT: String(plcs),
        PLC_SCAN_MS: String(scanMs),
        // Short windows, as in the chaos run: chunks are written (and offsets committed) within seconds.
        HISTORIAN_BUCKET_MS: "5000",
        HISTORIAN_SEAL_GRACE_MS: "1000",
        LOG_LEVEL: process.env.REPLICA_RUN_LOG_LEVEL ?? "warn",
        ...this.options.env,
      },
      stackMongoServer(offset),
    );
    this.stack = new PrivateStack(offset, { KAFKA_TOPIC_PREFIX: this.env.KAFKA_TOPIC_PREFIX, KAFKA_PARTITIONS: this.env.KAFKA_PARTITIONS });
    await this.stack.start();
    await provisionMqtt(this.env, [], this.stack.dir, this.env.MQTT_URL);
    this.apiPorts = [Number(this.env.API_PORT)];
    while (this.apiPorts.length < replicas) this.apiPorts.push(await freePort());
    this.startedAt = Date.now();
    for (let r = 0; r < replicas; r++) for (const name of ALL_SERVICES) this.#startReplica(name, r);
    this.client = await createPlantwireBroker({ ...loadConfig({ ...process.env, ...this.env, NODE_ID: `${this.env.MOLECULER_NAMESPACE}-test` }), services: [] });
    await this.client.start();
    for (let r = 0; r < replicas; r++) await this.waitHealthy(r);
    await waitFor(
      "every PLC publishing",
      async () => {
        const listed = await this.listPlcs();
        return listed.length === plcs && listed.every((p) => p.telemetry.delivered >= 5);
      },
      120_000,
      250,
    );
  }

  async stop(): Promise<void> {
    const processes = [...this.#processes.entries()];
    // The simulators first and orderly, so no PLC gives up buffered telemetry mid-check.
    await Promise.all(processes.filter(([id]) => id.includes("-plc-simulator-")).map(([, p]) => p.stop()));
    await Promise.all(processes.filter(([id]) => !id.includes("-plc-simulator-")).map(([, p]) => p.stop()));
    await this.#kafka?.disconnect();
    await this.#mongo?.close();
    await this.client?.stop();
    if (LOG_DIR && this.stack) cpSync(join(this.stack.dir, "log"), join(LOG_DIR, "servers"), { recursive: true });
    await this.stack?.remove();
  }

  #startReplica(name: string, replica: number): RunningProcess {
    const { replicas } = this.options;
    const process_ = startPlantwire({
      ...this.env,
      SERVICES: name,
      NODE_ID: this.nodeId(name, replica),
      PLC_SHARD: `${replica}/${replicas}`,
      API_PORT: String(this.apiPorts[replica]),
    });
    this.#processes.set(this.nodeId(name, replica), process_);
    if (LOG_DIR) {
      const file = join(LOG_DIR, `${name}-${replica}.log`);
      process_.child.stdout?.on("data", (chunk: Buffer) => appendFileSync(file, chunk));
      process_.child.stderr?.on("data", (chunk: Buffer) => appendFileSync(file, chunk));
    }
    return process_;
  }

  /** GET /api/health of an api replica is 200: every service has a healthy instance, every server is up. */
  async waitHealthy(replica = 0, timeoutMs = 180_000): Promise<void> {
    await waitHealthy({ ...this.env, API_PORT: String(this.apiPorts[replica]) }, this.process("api", replica) as RunningProcess, timeoutMs).catch((err: Error) => {
      throw new Error(`${err.message.split("\n")[0]}\n${this.outputs()}`);
    });
  }

  /** SIGKILL: no chance to flush, commit or say goodbye. Resolves once the process is gone. */
  async kill(service: string, replica: number): Promise<void> {
    const victim = this.process(service, replica);
    if (!victim || !this.running(service, replica)) throw new Error(`${this.nodeId(service, replica)} is not running`);
    const exited = new Promise((resolve) => victim.child.once("exit", resolve));
    victim.child.kill("SIGKILL");
    await exited;
  }

  /** Stops a server of the private stack as an operator would (`infra.sh stop <server>`: SIGTERM, then waits). */
  async stopServer(server: Server): Promise<void> {
    const env = { ...process.env, PLANTWIRE_DATA: this.stack.dir, PLANTWIRE_PORT_OFFSET: String(this.stack.offset), MQTT_AUTH: "off" };
    await run("bash", ["scripts/infra.sh", "stop", server], { cwd: REPO, env, timeout: 120_000 });
  }

  /** The last output (warnings and errors) of every process. */
  outputs(): string {
    return [...this.#processes].map(([id, p]) => `--- ${id} (exit ${p.child.exitCode ?? p.child.signalCode ?? "running"}) ---\n${p.output().slice(-1_500)}`).join("\n");
  }

  /** Node ids of the replicas of a service the test's broker currently lists as available. */
  availableNodes(service: string): string[] {
    const services = this.client.registry.getServiceList({ onlyAvailable: true, skipInternal: true }) as unknown as { name: string; nodeID: string }[];
    return [...new Set(services.filter((s) => s.name === service).map((s) => s.nodeID))].sort();
  }

  /** Every PLC of every running simulator replica (each lists its own shard). */
  async listPlcs(): Promise<PlcListing[]> {
    const replicas = Array.from({ length: this.options.replicas }, (_, r) => r).filter((r) => this.running("plc-simulator", r));
    const lists = await Promise.all(replicas.map((r) => this.client.call<PlcListing[], object>("plc-simulator.list", {}, { nodeID: this.nodeId("plc-simulator", r), timeout: 5_000 })));
    return lists.flat();
  }

  historianStats(nodeID: string): Promise<HistorianStats> {
    return this.client.call<HistorianStats, object>("historian.stats", {}, { nodeID, timeout: 5_000, retries: 0 });
  }

  preprocessorStats(nodeID: string): Promise<PreprocessorStats> {
    return this.client.call<PreprocessorStats, object>("preprocessor.stats", {}, { nodeID, timeout: 5_000, retries: 0 });
  }

  /** Committed offsets and end offsets of the run's groups and topics (what GET /api/system/kafka answers). */
  async kafkaLag(): Promise<KafkaLagReport> {
    if (!this.#kafka) {
      const admin = new Kafka({ clientId: `${this.env.MOLECULER_NAMESPACE}-bench`, brokers: [this.env.KAFKA_BROKERS], logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      this.#kafka = admin;
    }
    return readLagReport(this.#kafka, this.env.MOLECULER_NAMESPACE, this.env.KAFKA_TOPIC_PREFIX, Date.now());
  }

  async #tagOf(device: string): Promise<string> {
    let tag = this.#tags.get(device);
    if (tag === undefined) {
      const doc = await this.client.call<DeviceDocument, object>("devices.get", { id: device }, { timeout: 5_000 });
      tag = doc.tags.find((t) => t.type === "number")?.name;
      if (tag === undefined) throw new Error(`${device} has no numeric tag`);
      this.#tags.set(device, tag);
    }
    return tag;
  }

  /** The raw history of a PLC's first numeric tag since `from` (stored chunks and what the historians hold in memory). */
  async history(device: string, nodeID?: string, from = this.startedAt): Promise<Point[]> {
    const tag = await this.#tagOf(device);
    const result = await this.client.call<{ points: Point[] }, object>(
      "historian.history",
      { id: device, tag, from, to: Date.now() + 5_000, points: 100_000 },
      { timeout: 20_000, ...(nodeID ? { nodeID, retries: 0 } : {}) },
    );
    return result.points.map(({ ts, seq }) => ({ ts, seq }));
  }

  /**
   * Per PLC, which of the expected seqs MongoDB holds (the raw chunks in the run's database, read
   * directly: the history API merges duplicates away), which are missing, and how many samples
   * (ts, seq) are stored more than once.
   */
  async count(expected: Map<string, Set<number>>): Promise<DeviceCount[]> {
    const chunks = (await this.#db()).collection<{ device: string; start: number; ts: number[]; seq: number[] }>("telemetry");
    const from = this.startedAt - 60_000;
    const counts: DeviceCount[] = [];
    for (const [device, want] of expected) {
      const keys: string[] = [];
      const seqs = new Set<number>();
      for await (const chunk of chunks.find({ device, start: { $gte: from } }, { projection: { ts: 1, seq: 1 } })) {
        chunk.seq.forEach((seq, i) => {
          if (chunk.ts[i] < this.startedAt || !want.has(seq)) return;
          keys.push(`${chunk.ts[i]}:${seq}`);
          seqs.add(seq);
        });
      }
      counts.push({ device, sent: want.size, stored: seqs.size, lost: [...want].filter((s) => !seqs.has(s)), duplicated: keys.length - new Set(keys).size });
    }
    return counts;
  }

  /** True once MongoDB holds a sample of the device taken after `ts`. */
  async storedAfter(device: string, ts: number): Promise<boolean> {
    const chunks = (await this.#db()).collection<{ device: string; end: number; ts: number[] }>("telemetry");
    for await (const chunk of chunks.find({ device, end: { $gt: ts } }, { projection: { ts: 1 } })) if (chunk.ts.some((t) => t > ts)) return true;
    return false;
  }

  async #db() {
    if (!this.#mongo) {
      this.#mongo = new MongoClient(this.env.MONGO_URL, { serverSelectionTimeoutMS: 5_000 });
      await this.#mongo.connect();
    }
    return this.#mongo.db();
  }

  /**
   * Waits until MongoDB holds every expected seq (or `timeoutMs` passed) and answers the last
   * count; `drained` tells whether it got there.
   */
  async drain(expected: Map<string, Set<number>>, timeoutMs: number): Promise<{ counts: DeviceCount[]; drained: boolean; ms: number }> {
    const t0 = Date.now();
    let counts: DeviceCount[] = [];
    const drained = await waitFor(
      "MongoDB to hold every sample sent",
      async () => {
        counts = await this.count(expected);
        return counts.every((c) => c.lost.length === 0);
      },
      timeoutMs,
      1_000,
    ).catch(() => false);
    return { counts, drained: drained === true, ms: Date.now() - t0 };
  }

  /** Samples published on the run's telemetry topics from now on, per device (what reached the broker). */
  async observe(): Promise<{ seen: Map<string, Point[]>; close: () => Promise<void> }> {
    const seen = new Map<string, Point[]>();
    const client = await mqtt.connectAsync(this.env.MQTT_URL, { ...mqttLogin(this.env, "monitor"), clientId: `${this.env.MOLECULER_NAMESPACE}-observer` });
    client.on("message", (topic, payload) => {
      const device = topic.split("/").at(-2) as string;
      const { ts, seq } = JSON.parse(payload.toString()) as Point;
      let points = seen.get(device);
      if (!points) seen.set(device, (points = []));
      points.push({ ts, seq });
    });
    await client.subscribeAsync(`${this.env.MQTT_TOPIC_ROOT}/+/+/+/+/telemetry`, { qos: 1 });
    return { seen, close: () => client.endAsync() };
  }
}

/** seqs 0..last of each PLC: everything a PLC that kept running has sent up to its listed seq. */
export function sentUpTo(listed: PlcListing[]): Map<string, Set<number>> {
  return new Map(listed.map((p) => [p.device, new Set(Array.from({ length: (p.seq ?? -1) + 1 }, (_, i) => i))]));
}

export function summarize(counts: DeviceCount[]): { sent: number; stored: number; lost: number; duplicated: number; detail: string[] } {
  const sum = (f: (c: DeviceCount) => number) => counts.reduce((n, c) => n + f(c), 0);
  return {
    sent: sum((c) => c.sent),
    stored: sum((c) => c.stored),
    lost: sum((c) => c.lost.length),
    duplicated: sum((c) => c.duplicated),
    detail: counts
      .filter((c) => c.lost.length > 0 || c.duplicated > 0)
      .map((c) => `${c.device}: lost ${c.lost.length}${c.lost.length ? ` (seq ${c.lost.slice(0, 8).join(", ")}${c.lost.length > 8 ? ", …" : ""})` : ""}, duplicated ${c.duplicated}`),
  };
}
