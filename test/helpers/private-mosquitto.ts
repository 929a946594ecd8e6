// A Mosquitto of a test's own (free port, private persistence directory), for tests that crash the
// broker: the shared one on 1883 is never touched.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { waitFor } from "./wait.ts";

/** An extra TLS listener on loopback, besides the plain one start() probes. Paths of PEM files. */
export interface MosquittoTlsListener {
  port: number;
  cafile: string;
  certfile: string;
  keyfile: string;
  /** Refuse clients without a certificate signed by `cafile`. */
  requireCertificate?: boolean;
}

/** Configured like scripts/infra.sh's Mosquitto (persistence, autosave every 60 s, queue limits) unless told otherwise. */
export class PrivateMosquitto {
  readonly dir = mkdtempSync(join(tmpdir(), "plantwire-mosquitto-"));
  readonly port: number;
  #child: ChildProcess | undefined;
  #log = "";

  readonly tls: MosquittoTlsListener | undefined;

  constructor(port: number, autosaveIntervalS = 60, tls?: MosquittoTlsListener) {
    this.port = port;
    this.tls = tls;
    const asRoot = process.getuid?.() === 0 ? "user root\n" : "";
    // Listener options apply to the listener above them; allow_anonymous is global (per_listener_settings false).
    const tlsListener = tls
      ? `listener ${tls.port} 127.0.0.1\ncafile ${tls.cafile}\ncertfile ${tls.certfile}\nkeyfile ${tls.keyfile}\nrequire_certificate ${tls.requireCertificate ? "true" : "false"}\n`
      : "";
    writeFileSync(
      join(this.dir, "mosquitto.conf"),
      `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location ${this.dir}/\nautosave_interval ${autosaveIntervalS}\n` +
        `max_queued_messages 100000\nmax_inflight_messages 1000\nmax_packet_size 2097152\nlog_dest stderr\nlog_type error\nlog_type warning\n${asRoot}${tlsListener}`,
    );
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** The TLS listener's address (constructed with `tls`). */
  get tlsUrl(): string {
    if (!this.tls) throw new Error("this mosquitto has no TLS listener");
    return `mqtts://127.0.0.1:${this.tls.port}`;
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
