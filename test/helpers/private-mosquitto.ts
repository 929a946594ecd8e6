// A Mosquitto of a test's own (free port, private persistence directory), for tests that crash the
// broker: the shared one on 1883 is never touched.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { waitFor } from "./wait.ts";

/** Configured like scripts/infra.sh's Mosquitto (persistence, autosave every 60 s, queue limits) unless told otherwise. */
export class PrivateMosquitto {
  readonly dir = mkdtempSync(join(tmpdir(), "plantwire-mosquitto-"));
  readonly port: number;
  #child: ChildProcess | undefined;
  #log = "";

  constructor(port: number, autosaveIntervalS = 60) {
    this.port = port;
    const asRoot = process.getuid?.() === 0 ? "user root\n" : "";
    writeFileSync(
      join(this.dir, "mosquitto.conf"),
      `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location ${this.dir}/\nautosave_interval ${autosaveIntervalS}\n` +
        `max_queued_messages 100000\nmax_inflight_messages 1000\nmax_packet_size 2097152\nlog_dest stderr\nlog_type error\nlog_type warning\n${asRoot}`,
    );
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn("mosquitto", ["-c", join(this.dir, "mosquitto.conf")], { stdio: ["ignore", "ignore", "pipe"] });
    child.stderr?.on("data", (chunk: Buffer) => (this.#log = (this.#log + chunk.toString()).slice(-5_000)));
    this.#child = child;
    await waitFor(`mosquitto on port ${this.port}`, async () => {
      if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}: ${this.#log}`);
      const probe = await mqtt.connectAsync(this.url, { clientId: `probe-${process.pid}`, reconnectPeriod: 0, connectTimeout: 1_000 });
      await probe.endAsync();
      return true;
    }, 10_000, 100);
  }

  /** SIGKILL: no chance to save its persistence file. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }

  async remove(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
