// A private copy of the local infrastructure (scripts/infra.sh with its own PLANTWIRE_DATA and
// PLANTWIRE_PORT_OFFSET), so the chaos suite can SIGKILL servers without touching the shared ones.
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { waitFor } from "../helpers/wait.ts";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);

export const SERVERS = ["mosquitto", "nats", "redis", "kafka", "mongo"] as const;
export type Server = (typeof SERVERS)[number];

/** Every port scripts/infra.sh opens at offset 0. */
const BASE_PORTS = [1883, 9001, 4222, 8222, 6379, 9092, 9093, 27017, 8089];

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/**
 * An offset (multiple of 100 up to 5700) whose nine ports are all free. Every port stays below
 * 32768, where Linux starts handing out clients' ephemeral ports: in that range a client's
 * connection (kafkajs reconnecting to the killed Kafka, say) can take a server's port as its own
 * source port, and the restart then finds the port in use.
 */
export async function freePortOffset(): Promise<number> {
  const defaults = new Set([...BASE_PORTS, 8000]);
  const candidates = Array.from({ length: 57 }, (_, i) => (i + 1) * 100).filter((o) => BASE_PORTS.every((p) => !defaults.has(p + o)));
  const start = Math.floor(Math.random() * candidates.length);
  for (let i = 0; i < candidates.length; i++) {
    const offset = candidates[(start + i) % candidates.length];
    const free = await Promise.all(BASE_PORTS.map((p) => portFree(p + offset)));
    if (free.every(Boolean)) return offset;
  }
  throw new Error("no free port offset for a private stack in 100..5700");
}

/** Where services find a stack started with this offset. */
export function stackUrls(offset: number) {
  return {
    NATS_URL: `nats://127.0.0.1:${4222 + offset}`,
    REDIS_URL: `redis://127.0.0.1:${6379 + offset}`,
    MQTT_URL: `mqtt://127.0.0.1:${1883 + offset}`,
    KAFKA_BROKERS: `127.0.0.1:${9092 + offset}`,
  };
}

/** The MongoDB-wire server of a stack started with this offset (isolatedEnv adds the database). */
export function stackMongoServer(offset: number): string {
  return `mongodb://127.0.0.1:${27017 + offset}`;
}

/**
 * Whether every thread of a killed process has exited. The main thread's state is not enough: it
 * turns zombie first while the other threads (a JVM has dozens, Go servers several) are still being
 * torn down and the process's listening sockets still accept connections; `infra.sh start` then
 * found Kafka's port "in use", refused to start it and dropped its pid file. A zombie whose only
 * remaining thread is itself has released everything (a child of infra.sh's setsid is reaped by
 * init, perhaps not at once).
 */
function exited(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0];
    if (state !== "Z" && state !== "X") return false;
    return readdirSync(`/proc/${pid}/task`).every((tid) => tid === String(pid));
  } catch {
    return true; // gone from /proc: reaped
  }
}

export class PrivateStack {
  readonly dir = mkdtempSync(join(tmpdir(), "plantwire-chaos-"));
  readonly offset: number;
  /** Passed to infra.sh: create-topics makes the run's topics (at start and after a Kafka restart). */
  readonly #topicEnv: Record<string, string>;

  constructor(offset: number, topicEnv: Record<string, string>) {
    this.offset = offset;
    this.#topicEnv = topicEnv;
  }

  async #infra(command: "start" | "stop", servers: Server[] = []): Promise<void> {
    const env = { ...process.env, ...this.#topicEnv, PLANTWIRE_DATA: this.dir, PLANTWIRE_PORT_OFFSET: String(this.offset) };
    try {
      await run("bash", ["scripts/infra.sh", command, ...servers], { cwd: REPO, env, timeout: 240_000 });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`infra.sh ${command} ${servers.join(" ")} failed: ${e.message}\n${e.stdout ?? ""}${e.stderr ?? ""}`);
    }
  }

  /** Starts the servers (all by default) and waits until they answer, as infra.sh does. */
  start(servers: Server[] = []): Promise<void> {
    return this.#infra("start", servers);
  }

  /**
   * SIGKILL by the pid infra.sh recorded: no chance to flush or save anything. Returns once every
   * thread of the process has exited, i.e. once the kernel has closed its sockets and files.
   */
  async kill(server: Server): Promise<void> {
    const pid = Number(readFileSync(join(this.dir, "run", `${server}.pid`), "utf8").trim());
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no pid recorded for ${server} in ${this.dir}/run`);
    process.kill(pid, "SIGKILL");
    await waitFor(`${server} (pid ${pid}) to die`, () => exited(pid), 10_000, 20);
  }

  /** When Mosquitto last saved its sessions and queues (autosave_interval), if it has yet. */
  mosquittoSavedAt(): number | undefined {
    try {
      return statSync(join(this.dir, "mosquitto", "mosquitto.db")).mtimeMs;
    } catch {
      return undefined;
    }
  }

  /** Last lines of a server's log, for failure messages. */
  log(server: Server, lines = 20): string {
    try {
      return readFileSync(join(this.dir, "log", `${server}.log`), "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }

  async remove(): Promise<void> {
    try {
      await this.#infra("stop");
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
