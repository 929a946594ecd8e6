// A Mosquitto crash during steady publishing loses no sample: the PLCs' store-and-forward buffers
// while the broker is gone and resends what the restarted broker had no subscriber for yet.
// Runs its own Mosquitto (free port, private persistence directory): the shared one is never touched.
import { strict as assert } from "node:assert";
import type { ServiceBroker } from "moleculer";
import type { PlcListing } from "../../services/plc-simulator.service.ts";
import type { DeviceDocument } from "../../src/shared/types.ts";
import { PrivateMosquitto } from "../helpers/private-mosquitto.ts";
import { cleanupRun, freePort, isolatedEnv, startServices, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

describe("store-and-forward through a Mosquitto crash", function () {
  this.timeout(180_000);
  let mosquitto: PrivateMosquitto;
  let env: TestSystemEnv;
  let pipeline: ServiceBroker;
  let simulator: ServiceBroker | undefined;

  before(async () => {
    mosquitto = new PrivateMosquitto(await freePort());
    await mosquitto.start();
    env = await isolatedEnv("saf", { MQTT_URL: mosquitto.url, PLC_COUNT: "3", PLC_SCAN_MS: "200", LOG_LEVEL: "error" });
    pipeline = await startServices(env, ["devices", "preprocessor", "historian"]);
  });

  after(async () => {
    await simulator?.stop();
    await pipeline?.stop();
    await mosquitto?.remove();
    if (env) await cleanupRun(env);
  });

  it("the historian holds every seq each PLC sent: 0 lost, 0 duplicated", async () => {
    const startedAt = Date.now();
    // The PLCs start once the pipeline is subscribed, so only the crash is measured.
    simulator = await startServices({ ...env, NODE_ID: `${env.MOLECULER_NAMESPACE}-plc` }, ["plc-simulator"]);
    const list = () => pipeline.call<PlcListing[]>("plc-simulator.list");
    await waitFor("steady publishing", async () => (await list()).every((p) => (p.seq ?? 0) >= 10 && p.telemetry.delivered >= 10), 30_000, 100);

    await mosquitto.kill();
    const killedAt = Date.now();
    const atKill = await list();
    await waitFor("the PLCs to scan on while the broker is down", async () => (await list()).every((p, i) => !p.connected && (p.seq ?? 0) >= (atKill[i].seq ?? 0) + 10), 20_000, 100);
    await mosquitto.start();
    const downMs = Date.now() - killedAt;
    await waitFor("the PLCs to reconnect and drain their buffers", async () => (await list()).every((p) => p.connected && p.telemetry.buffered === 0 && p.telemetry.inFlight === 0), 60_000, 100);
    const afterRestart = await list();
    await waitFor("steady publishing after the restart", async () => (await list()).every((p, i) => (p.seq ?? 0) >= (afterRestart[i].seq ?? 0) + 10), 30_000, 100);
    const sent = await list();
    await simulator.stop();
    simulator = undefined;

    const report: string[] = [];
    const outcomes: { device: string; lost: number; duplicated: number }[] = [];
    for (const plc of sent) {
      const last = plc.seq ?? -1;
      const device = await pipeline.call<DeviceDocument, object>("devices.get", { id: plc.device });
      const tag = device.tags.find((t) => t.type === "number")?.name ?? assert.fail(`${plc.device} has no numeric tag`);
      let seqs: number[] = [];
      // Bounded wait: when samples are lost, the report below says how many.
      await waitFor(`${plc.device}'s seq 0..${last} in the history`, async () => {
        const history = await pipeline.call<{ points: { seq: number }[] }, object>("historian.history", { id: plc.device, tag, from: startedAt - 60_000, to: Date.now() + 60_000, points: 100_000 });
        seqs = history.points.map((p) => p.seq);
        return new Set(seqs.filter((s) => s <= last)).size === last + 1;
      }, 30_000, 500).catch(() => undefined);
      const unique = new Set(seqs);
      const lost = Array.from({ length: last + 1 }, (_, s) => s).filter((s) => !unique.has(s));
      const duplicated = seqs.length - unique.size;
      report.push(`${plc.device}: sent 0..${last}, retried ${plc.telemetry.retried}, dropped ${plc.telemetry.dropped}, lost ${lost.length}${lost.length ? ` (${lost.slice(0, 5).join(", ")}…)` : ""}, duplicated ${duplicated}`);
      outcomes.push({ device: plc.device, lost: lost.length, duplicated });
    }
    console.log(`      broker down ${downMs} ms\n      ${report.join("\n      ")}`);
    assert.deepEqual(outcomes, sent.map((p) => ({ device: p.device, lost: 0, duplicated: 0 })));
  });
});
