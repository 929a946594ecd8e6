// The chaos scenarios, shared by test/chaos/chaos.spec.ts (short, CI) and bench/chaos.bench.ts
// (soak): a private infrastructure stack, every service in its own process, the PLC simulator
// under steady load; one scenario SIGKILLs one service process or server, restarts it, and then
// compares, per PLC, the seqs sent in the scenario with the samples the historian holds.
import { setTimeout as sleep } from "node:timers/promises";
import type { ServiceBroker } from "moleculer";
import mqtt from "mqtt";
import type { PlcListing } from "../../services/plc-simulator.service.ts";
import { createPlantwireBroker } from "../../src/main.ts";
import { ALL_SERVICES, loadConfig } from "../../src/shared/config.ts";
import type { DeviceDocument } from "../../src/shared/types.ts";
import { isolatedEnv, startPlantwire, waitHealthy, type RunningProcess, type TestSystemEnv } from "../helpers/system.ts";
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
  /** How long the pipeline may take to hold everything sent, after the load of a scenario. */
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
  /** Samples older than this belong to an earlier simulator process (an earlier seq epoch). */
  #epochStart = 0;

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
        LOG_LEVEL: "warn",
      },
      stackMongoServer(offset),
    );
    this.stack = new PrivateStack(offset, { KAFKA_TOPIC_PREFIX: this.env.KAFKA_TOPIC_PREFIX, KAFKA_PARTITIONS: this.env.KAFKA_PARTITIONS });
    await this.stack.start();
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
    for (const plc of await this.#list()) this.#checked.set(plc.device, -1);
  }

  async stop(): Promise<void> {
    // The simulator first and orderly, so no PLC gives up buffered telemetry mid-check.
    for (const name of ["plc-simulator", ...ALL_SERVICES.filter((s) => s !== "plc-simulator")]) await this.#processes.get(name)?.stop();
    await this.#client?.stop();
    await this.stack?.remove();
  }

  /** /api/health 200: every service and server up; on timeout the output of every process. */
  async #waitHealthy(): Promise<void> {
    await waitHealthy(this.env, this.#api, 180_000).catch((err: Error) => {
      throw new Error(`${err.message.split("\n")[0]}\n${this.#outputs()}`);
    });
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
    return process_;
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
    const client = await mqtt.connectAsync(this.env.MQTT_URL as string, { clientId: `${this.env.MOLECULER_NAMESPACE}-observer` });
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
    const startedAt = Date.now();
    const observer = isSimulator ? await this.#observe() : undefined;
    const before = await waitFor("the PLC listing", () => this.#list(), 30_000, 250);
    const resentBefore = before.reduce((n, p) => n + p.telemetry.resent, 0);
    await sleep(loadMs);
    const lastListed = new Map((await this.#list()).map((p) => [p.device, p.seq ?? -1]));
    const killedAt = Date.now();
    await this.#kill(target);
    const downMs = Date.now() - killedAt;
    await this.#waitHealthy();
    const healthyMs = Date.now() - killedAt;
    await sleep(loadMs);
    const end = await waitFor("the PLC listing", () => this.#list(), 30_000, 250);
    const resent = end.reduce((n, p) => n + p.telemetry.resent, 0) - (isSimulator ? 0 : resentBefore);
    const from = Math.max(this.#epochStart, startedAt - 30_000);

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

    let counts: { device: string; sent: number; stored: number; lost: string[]; duplicated: number; note: string }[] = [];
    const measure = async () => {
      const next: typeof counts = [];
      for (const { device, expected, keyOf, note } of expectations) {
        const want = expected();
        const keys = (await this.#history(device, from)).map(keyOf).filter((k) => k !== undefined);
        const stored = new Set(keys);
        const lost = [...want].filter((k) => !stored.has(k));
        next.push({ device, sent: want.size, stored: stored.size, lost, duplicated: keys.length - stored.size, note });
      }
      counts = next;
      return counts.every((c) => c.lost.length === 0);
    };
    const drained = await waitFor(`the history to hold every sample sent in scenario ${describeTarget(target)}`, measure, drainMs, 1_000).catch(() => false);
    await observer?.close();
    if (isSimulator) this.#epochStart = killedAt + 1;
    for (const plc of end) this.#checked.set(plc.device, plc.seq ?? -1);

    const sum = (f: (c: (typeof counts)[number]) => number) => counts.reduce((n, c) => n + f(c), 0);
    return {
      scenario: describeTarget(target),
      downMs,
      healthyMs,
      sent: sum((c) => c.sent),
      stored: sum((c) => c.stored),
      lost: sum((c) => c.lost.length),
      duplicated: sum((c) => c.duplicated),
      resent,
      drained: drained === true,
      detail: counts
        .filter((c) => c.lost.length > 0 || c.duplicated > 0 || c.note)
        .map((c) => `${c.device}: lost ${c.lost.length}${c.lost.length ? ` (${c.lost.slice(0, 8).join(", ")}${c.lost.length > 8 ? ", …" : ""})` : ""}, duplicated ${c.duplicated}${c.note ? `; ${c.note}` : ""}`),
    };
  }

  /** For failure messages: the killed service's output, or the killed server's log and what the services said. */
  logsOf(target: Target): string {
    return target.kind === "service" ? (this.#processes.get(target.name)?.output() ?? "") : `${this.stack.log(target.name)}\n${this.#outputs()}`;
  }
}

export function describeTarget(target: Target): string {
  return target.kind === "service" ? `service ${target.name}` : `server ${target.name === "mongo" ? "mongo (FerretDB)" : target.name}`;
}

export function formatTable(rows: ScenarioResult[]): string {
  const lines = [
    "| SIGKILL + restart | back up (s) | healthy (s) | sent | stored | lost | duplicated | resent by PLCs |",
    "|---|---|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.scenario} | ${(r.downMs / 1000).toFixed(1)} | ${(r.healthyMs / 1000).toFixed(1)} | ${r.sent} | ${r.stored} | ${r.lost}${r.drained ? "" : " (not drained)"} | ${r.duplicated} | ${r.resent} |`),
  ];
  return lines.join("\n");
}
