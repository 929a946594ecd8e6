// The chaos scenarios, shared by test/chaos/chaos.spec.ts (short, CI) and bench/chaos.bench.ts
// (soak): a private infrastructure stack, every service in its own process, the PLC simulator
// under steady load; one scenario SIGKILLs one service process or server, restarts it, and then
// compares, per PLC, the seqs sent in the scenario with the samples the historian holds.
import { appendFileSync, cpSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ServiceBroker } from "moleculer";
import mqtt from "mqtt";
import type { PlcListing } from "../../services/plc-simulator.service.ts";
import type { PreprocessorStats } from "../../services/preprocessor.service.ts";
import { createPlantwireBroker } from "../../src/main.ts";
import { ALL_SERVICES, loadConfig } from "../../src/shared/config.ts";
import type { DeviceDocument } from "../../src/shared/types.ts";
import type { SystemHealth } from "../../src/shared/health-summary.ts";
import { getJson, isolatedEnv, mqttLogin, provisionMqtt, startPlantwire, type RunningProcess, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";
import { freePortOffset, PrivateStack, SERVERS, stackMongoServer, stackUrls, type Server } from "./private-stack.ts";

export type Target = { kind: "service"; name: string } | { kind: "server"; name: Server };

/** Every service process, the PLC simulator last (its restart starts a new seq epoch), then every server. */
export const ALL_TARGETS: Target[] = [
  ...ALL_SERVICES.filter((s) => s !== "plc-simulator").map((name): Target => ({ kind: "service", name })),
  ...SERVERS.map((name): Target => ({ kind: "server", name })),
  { kind: "service", name: "plc-simulator" },
];

export interface ChaosOptions {
  plcs: number;
  scanMs: number;
  /** Load before the kill and again after the restart (deliberate durations). */
  loadMs: number;
  /**
   * After the load of a scenario, how long the history may stop growing before what it still
   * lacks counts as lost (it may take longer while it grows: at most 4 times this).
   */
  drainMs: number;
  /** PLC_RESEND_WINDOW_MS of the simulator. */
  resendWindowMs: number;
}

export interface ScenarioResult {
  scenario: string;
  /** From the SIGKILL until the process or server answered again. */
  downMs: number;
  /** From the SIGKILL until /api/health was 200 again. */
  healthyMs: number;
  /** What /api/health last reported down before it was 200 again ("" if it never was). */
  lastDown: string;
  /** From the end of the load until the history held every sample (or the wait gave up). */
  drainMs: number;
  /**
   * Telemetry the broker had acknowledged to the PLCs but the preprocessor had not yet received
   * when the kill came (what Mosquitto held for it): the PLCs' `delivered` minus the
   * preprocessor's `received`, both counted over the load before the kill.
   */
  backlogAtKill: number;
  sent: number;
  stored: number;
  lost: number;
  duplicated: number;
  /** Telemetry the PLCs sent again after a reconnect (resend window). */
  resent: number;
  drained: boolean;
  /** Per PLC detail of what went wrong, empty when nothing did. */
  detail: string[];
}

interface Point {
  ts: number;
  seq: number;
}

/**
 * CHAOS_LOG_DIR=<dir>: every service process's output and, at the end, the servers' logs are kept
 * there (for reading after a failure; the run's output only keeps the tail of each).
 */
const LOG_DIR = process.env.CHAOS_LOG_DIR;
if (LOG_DIR) mkdirSync(LOG_DIR, { recursive: true });

/** A sample the simulator's MQTT traffic showed, keyed like the historian keys samples. */
const key = (p: Point) => `${p.ts}:${p.seq}`;

export class ChaosRun {
  readonly options: ChaosOptions;
  stack!: PrivateStack;
  env!: TestSystemEnv;
  readonly #processes = new Map<string, RunningProcess>();
  #client!: ServiceBroker;
  #tags = new Map<string, string>();
  /** Per PLC, the last seq already checked by an earlier scenario (-1: none). */
  #checked = new Map<string, number>();
  /** When those seqs were listed: every sample after them was scanned later. */
  #checkedAt = 0;
  /** Samples older than this belong to an earlier simulator process (an earlier seq epoch). */
  #epochStart = 0;
  /** When every PLC was publishing, so the preprocessor's MQTT session existed and was subscribed. */
  #subscribedAt = 0;

  constructor(options: ChaosOptions) {
    this.options = options;
  }

  async start(): Promise<void> {
    const offset = await freePortOffset();
    this.env = await isolatedEnv(
      "chaos",
      {
        ...stackUrls(offset),
        PLC_COUNT: String(this.options.plcs),
        PLC_SCAN_MS: String(this.options.scanMs),
        PLC_RESEND_WINDOW_MS: String(this.options.resendWindowMs),
        // Short windows, so that chunks are written (and Kafka offsets committed) within a scenario.
        HISTORIAN_BUCKET_MS: "5000",
        HISTORIAN_SEAL_GRACE_MS: "1000",
        LOG_LEVEL: process.env.CHAOS_LOG_LEVEL ?? "warn",
      },
      stackMongoServer(offset),
    );
    this.stack = new PrivateStack(offset, { KAFKA_TOPIC_PREFIX: this.env.KAFKA_TOPIC_PREFIX, KAFKA_PARTITIONS: this.env.KAFKA_PARTITIONS });
    await this.stack.start();
    // The stack's Mosquitto refuses anonymous clients, like every other: the run's accounts.
    await provisionMqtt(this.env, [], this.stack.dir, this.env.MQTT_URL);
    // Every seq from 0 counts: PLCs that come up before the pipeline has subscribed must retry.
    this.#epochStart = Date.now();
    for (const name of ALL_SERVICES) this.#startProcess(name);
    this.#client = await createPlantwireBroker({ ...loadConfig({ ...process.env, ...this.env, NODE_ID: `${this.env.MOLECULER_NAMESPACE}-chaos` }), services: [] });
    await this.#client.start();
    await this.#waitHealthy();
    await waitFor("every PLC publishing", async () => {
      const plcs = await this.#list();
      return plcs.length === this.options.plcs && plcs.every((p) => p.telemetry.delivered >= 5);
    }, 90_000, 250);
    this.#subscribedAt = Date.now();
    this.#checkedAt = this.#epochStart;
    for (const plc of await this.#list()) this.#checked.set(plc.device, -1);
  }

  async stop(): Promise<void> {
    try {
      // The simulator first and orderly, so no PLC gives up buffered telemetry mid-check.
      for (const name of ["plc-simulator", ...ALL_SERVICES.filter((s) => s !== "plc-simulator")]) await this.#processes.get(name)?.stop();
      await this.#client?.stop();
    } finally {
      if (LOG_DIR && this.stack) cpSync(join(this.stack.dir, "log"), join(LOG_DIR, "servers"), { recursive: true });
      await this.stack?.remove();
    }
  }

  /**
   * /api/health 200: every service and server up. Returns what was last reported down meanwhile;
   * on timeout fails with that and the output of every process.
   */
  async #waitHealthy(): Promise<string> {
    let lastDown = "";
    await waitFor("a healthy system", async () => {
      if (this.#api.child.exitCode !== null) throw new Error(`the api process exited with ${this.#api.child.exitCode}`);
      const { status, body } = await getJson<SystemHealth>(`http://127.0.0.1:${this.env.API_PORT}/api/health`);
      if (status === 200) return true;
      lastDown = describeDown(body);
      return false;
    }, 180_000, 250).catch((err: Error) => {
      throw new Error(`${err.message}; last down: ${lastDown}\n${this.#outputs()}`);
    });
    return lastDown;
  }

  /** The last output (warnings and errors) of every service process. */
  #outputs(): string {
    return [...this.#processes].map(([name, p]) => `--- ${name} (exit ${p.child.exitCode ?? p.child.signalCode ?? "running"}) ---\n${p.output().slice(-2_000)}`).join("\n");
  }

  get #api(): RunningProcess {
    return this.#processes.get("api") as RunningProcess;
  }

  #startProcess(name: string): RunningProcess {
    // The same node id after a restart, as a restarted pod or unit keeps it: the preprocessor's
    // persistent MQTT session is named after it (a new name would leave the old session in the
    // shared subscription, taking its share of the telemetry while nobody reads it).
    const process_ = startPlantwire({ ...this.env, SERVICES: name, NODE_ID: `${this.env.MOLECULER_NAMESPACE}-${name}` });
    this.#processes.set(name, process_);
    if (LOG_DIR) {
      const file = join(LOG_DIR, `${name}.log`);
      appendFileSync(file, `\n=== ${name} start ${new Date().toISOString()} (pid ${process_.child.pid}) ===\n`);
      const keep = (chunk: Buffer) => appendFileSync(file, chunk);
      process_.child.stdout?.on("data", keep);
      process_.child.stderr?.on("data", keep);
      process_.child.once("exit", (code, signal) => appendFileSync(file, `=== ${name} exit ${new Date().toISOString()} (${code ?? signal}) ===\n`));
    }
    return process_;
  }

  /** Messages the preprocessor has taken from its MQTT session (NaN if it does not answer). */
  #preprocessorReceived(): Promise<number> {
    return this.#client.call<PreprocessorStats, object>("preprocessor.stats", {}, { timeout: 5_000 }).then((s) => s.received, () => Number.NaN);
  }

  #list(): Promise<PlcListing[]> {
    return this.#client.call<PlcListing[], object>("plc-simulator.list", {}, { timeout: 5_000 });
  }

  async #tagOf(device: string): Promise<string> {
    let tag = this.#tags.get(device);
    if (tag === undefined) {
      const doc = await this.#client.call<DeviceDocument, object>("devices.get", { id: device }, { timeout: 5_000 });
      tag = doc.tags.find((t) => t.type === "number")?.name;
      if (tag === undefined) throw new Error(`${device} has no numeric tag`);
      this.#tags.set(device, tag);
    }
    return tag;
  }

  async #history(device: string, from: number): Promise<Point[]> {
    const tag = await this.#tagOf(device);
    const result = await this.#client.call<{ points: Point[] }, object>("historian.history", { id: device, tag, from, to: Date.now() + 5_000, points: 100_000 }, { timeout: 20_000 });
    return result.points.map(({ ts, seq }) => ({ ts, seq }));
  }

  /** Samples published on the run's telemetry topics while it runs (what reached the broker). */
  async #observe(): Promise<{ seen: Map<string, Point[]>; close: () => Promise<void> }> {
    const seen = new Map<string, Point[]>();
    const client = await mqtt.connectAsync(this.env.MQTT_URL as string, { ...mqttLogin(this.env, "monitor"), clientId: `${this.env.MOLECULER_NAMESPACE}-observer` });
    client.on("message", (topic, payload) => {
      const device = topic.split("/").at(-2) as string;
      const { ts, seq } = JSON.parse(payload.toString()) as Point;
      seen.set(device, [...(seen.get(device) ?? []), { ts, seq }]);
    });
    await client.subscribeAsync(`${this.env.MQTT_TOPIC_ROOT}/+/+/+/+/telemetry`, { qos: 1 });
    return { seen, close: () => client.endAsync() };
  }

  async #kill(target: Target): Promise<void> {
    if (target.kind === "server") {
      await this.stack.kill(target.name);
      await this.stack.start([target.name]);
      return;
    }
    const old = this.#processes.get(target.name) as RunningProcess;
    const exited = new Promise((resolve) => old.child.once("exit", resolve));
    old.child.kill("SIGKILL");
    await exited;
    // Moleculer stops a node that joins while the others still list its id (until the killed
    // node's heartbeat times out): start again until the new process stays up and is seen.
    const nodeID = `${this.env.MOLECULER_NAMESPACE}-${target.name}`;
    let current = this.#startProcess(target.name);
    await waitFor(`${target.name} to rejoin`, async () => {
      if (current.child.exitCode !== null) current = this.#startProcess(target.name);
      const nodes = await this.#client.call<{ id: string; available: boolean }[], object>("$node.list", {});
      return nodes.some((n) => n.id === nodeID && n.available) && current.child.exitCode === null;
    }, 120_000, 500);
  }

  /** Runs one scenario: load, SIGKILL + restart, load, then waits for the history to hold what was sent. */
  async scenario(target: Target): Promise<ScenarioResult> {
    const { loadMs, drainMs } = this.options;
    const isSimulator = target.kind === "service" && target.name === "plc-simulator";
    if (target.kind === "server" && target.name === "mosquitto") {
      // A restarted Mosquitto restores the sessions of its last autosave (every 60 s): only then does
      // the preprocessor resume a session instead of starting a new one, the case that once stopped
      // the pipeline (docs/reliability.md, "Chaos"). Run alone, the scenario would kill it before.
      await waitFor("Mosquitto to autosave the preprocessor's session", () => (this.stack.mosquittoSavedAt() ?? 0) > this.#subscribedAt, 90_000, 500);
    }
    const startedAt = Date.now();
    const observer = isSimulator ? await this.#observe() : undefined;
    const before = await waitFor("the PLC listing", () => this.#list(), 30_000, 250);
    const resentBefore = before.reduce((n, p) => n + p.telemetry.resent, 0);
    // The previous scenario ended with everything stored, so the preprocessor had received all
    // that was delivered then: what it lags behind at the kill is what the load added since.
    const deliveredBefore = before.reduce((n, p) => n + p.telemetry.delivered, 0);
    const receivedBefore = await this.#preprocessorReceived();
    await sleep(loadMs);
    const atKill = await this.#list();
    const lastListed = new Map(atKill.map((p) => [p.device, p.seq ?? -1]));
    const backlogAtKill = atKill.reduce((n, p) => n + p.telemetry.delivered, 0) - deliveredBefore - ((await this.#preprocessorReceived()) - receivedBefore);
    const killedAt = Date.now();
    await this.#kill(target);
    const downMs = Date.now() - killedAt;
    const lastDown = await this.#waitHealthy();
    const healthyMs = Date.now() - killedAt;
    await sleep(loadMs);
    const endListedAt = Date.now();
    const end = await waitFor("the PLC listing", () => this.#list(), 30_000, 250);
    const resent = end.reduce((n, p) => n + p.telemetry.resent, 0) - (isSimulator ? 0 : resentBefore);
    // The history is read from before the first sample this scenario checks (the one after the
    // previous scenario's listing), not from this scenario's start: the previous drain can take
    // longer than any fixed margin on a busy machine, and samples before `from` would count as lost.
    const from = Math.max(this.#epochStart, Math.min(startedAt, this.#checkedAt) - 30_000);

    // Per PLC, which samples the scenario must find in the history, keyed by seq or by (ts, seq).
    const expectations = end.map((plc) => {
      const s0 = this.#checked.get(plc.device) ?? -1;
      const s1 = plc.seq ?? -1;
      if (!isSimulator) {
        const expected = new Set(Array.from({ length: s1 - s0 }, (_, i) => String(s0 + 1 + i)));
        return { device: plc.device, expected: () => expected, keyOf: (p: Point) => (p.ts >= this.#epochStart && p.seq > s0 && p.seq <= s1 ? String(p.seq) : undefined), note: "" };
      }
      // The killed simulator's samples count as sent when they reached the broker; the new
      // process's start at seq 0 and must all arrive (until seen, a seq is expected by number).
      const inWindow = (p: Point) => (p.ts <= killedAt ? p.ts >= from && p.seq > s0 : p.seq <= s1);
      const observed = () => (observer?.seen.get(plc.device) ?? []).filter(inWindow);
      const published = Math.max(-1, ...observed().filter((p) => p.ts <= killedAt).map((p) => p.seq));
      const diedWith = (lastListed.get(plc.device) ?? -1) - published;
      const expected = () => {
        const seen = observed();
        const keys = new Set(seen.map(key));
        const restarted = new Set(seen.filter((p) => p.ts > killedAt).map((p) => p.seq));
        for (let seq = 0; seq <= s1; seq++) if (!restarted.has(seq)) keys.add(`unpublished seq ${seq}`);
        return keys;
      };
      return { device: plc.device, expected, keyOf: (p: Point) => (inWindow(p) ? key(p) : undefined), note: diedWith > 0 ? `${diedWith} scanned, never published by the killed process` : "" };
    });

    type Count = { device: string; sent: number; stored: number; lost: string[]; duplicated: number; note: string };
    const byDevice = new Map<string, Count>();
    const measure = async ({ device, expected, keyOf, note }: (typeof expectations)[number]) => {
      const want = expected();
      const keys = (await this.#history(device, from)).map(keyOf).filter((k) => k !== undefined);
      const stored = new Set(keys);
      byDevice.set(device, { device, sent: want.size, stored: stored.size, lost: [...want].filter((k) => !stored.has(k)), duplicated: keys.length - stored.size, note });
    };
    // Lost is what the history still lacks once it has stopped growing for drainMs: a pipeline
    // still catching up on a backlog (a Kafka outage on a busy machine: minutes) loses nothing.
    // Meanwhile only the PLCs still missing samples are read again, not to load the historian
    // that is catching up; at the end every PLC once more, for duplicates stored meanwhile.
    const drainStart = Date.now();
    let progressAt = drainStart;
    let mostStored = -1;
    let pending = expectations;
    for (;;) {
      for (const expectation of pending) await measure(expectation).catch(() => undefined);
      pending = pending.filter((e) => (byDevice.get(e.device)?.lost.length ?? 1) > 0);
      const stored = [...byDevice.values()].reduce((n, c) => n + c.stored, 0);
      if (stored > mostStored) [mostStored, progressAt] = [stored, Date.now()];
      if (pending.length === 0 || Date.now() - progressAt >= drainMs || Date.now() - drainStart >= 4 * drainMs) break;
      await sleep(1_000);
    }
    const drainedMs = Date.now() - drainStart;
    for (const expectation of expectations) await measure(expectation);
    const counts = expectations.map((e) => byDevice.get(e.device) as Count);
    const drained = counts.every((c) => c.lost.length === 0);
    await observer?.close();
    if (isSimulator) this.#epochStart = killedAt + 1;
    for (const plc of end) this.#checked.set(plc.device, plc.seq ?? -1);
    this.#checkedAt = endListedAt;

    const sum = (f: (c: (typeof counts)[number]) => number) => counts.reduce((n, c) => n + f(c), 0);
    return {
      scenario: describeTarget(target),
      downMs,
      healthyMs,
      lastDown,
      drainMs: drainedMs,
      backlogAtKill,
      sent: sum((c) => c.sent),
      stored: sum((c) => c.stored),
      lost: sum((c) => c.lost.length),
      duplicated: sum((c) => c.duplicated),
      resent,
      drained,
      detail: counts
        .filter((c) => c.lost.length > 0 || c.duplicated > 0 || c.note)
        .map((c) => `${c.device}: lost ${c.lost.length}${c.lost.length ? ` (${c.lost.slice(0, 8).join(", ")}${c.lost.length > 8 ? ", …" : ""}; last seq listed before the kill ${lastListed.get(c.device)})` : ""}, duplicated ${c.duplicated}${c.note ? `; ${c.note}` : ""}`),
    };
  }

  /** For failure messages: the killed service's output, or the killed server's log and what the services said. */
  logsOf(target: Target): string {
    return target.kind === "service" ? (this.#processes.get(target.name)?.output() ?? "") : `${this.stack.log(target.name)}\n${this.#outputs()}`;
  }
}

/** The services and servers a degraded /api/health names, with the reason it gives for each server. */
function describeDown(health: SystemHealth): string {
  const services = Object.entries(health.services ?? {}).filter(([, s]) => !s.ok).map(([name]) => `service ${name}`);
  const servers = Object.entries(health.servers ?? {}).filter(([, s]) => !s.ok).map(([name, s]) => `${name} (${s.detail ?? "down"})`);
  return [...services, ...servers].join(", ");
}

export function describeTarget(target: Target): string {
  return target.kind === "service" ? `service ${target.name}` : `server ${target.name === "mongo" ? "mongo (FerretDB)" : target.name}`;
}

export function formatTable(rows: ScenarioResult[]): string {
  const lines = [
    "| SIGKILL + restart | preprocessor behind at the kill | back up (s) | healthy (s) | all stored (s) | sent | stored | lost | duplicated | resent by PLCs |",
    "|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.scenario} | ${r.backlogAtKill} | ${(r.downMs / 1000).toFixed(1)} | ${(r.healthyMs / 1000).toFixed(1)} | ${(r.drainMs / 1000).toFixed(1)} | ${r.sent} | ${r.stored} | ${r.lost}${r.drained ? "" : " (not drained)"} | ${r.duplicated} | ${r.resent} |`),
  ];
  return lines.join("\n");
}
