// End to end: the whole system as a user starts it, a live-stream client on one simulated PLC.
import { strict as assert } from "node:assert";
import type { MqttClient } from "mqtt";
import type { DeviceDocument, TelemetryPayload, TelemetryRecord } from "../../src/shared/types.ts";
import { openEventStream, type EventStream } from "../../src/stream/sse-client.ts";
import { cleanupRun, connectMqtt, getJson, isolatedEnv, startPlantwire, testToken, waitHealthy, type RunningProcess, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

describe("live stream end to end", function () {
  this.timeout(180_000);
  let env: TestSystemEnv;
  let system: RunningProcess;
  let api: string;
  let observer: MqttClient | undefined;
  let stream: EventStream | undefined;

  before(async () => {
    env = await isolatedEnv("e2estream", { PLC_COUNT: "3", PLC_SCAN_MS: "200" });
    api = `http://127.0.0.1:${env.API_PORT}/api`;
    system = startPlantwire(env);
    await waitHealthy(env, system);
  });

  after(async () => {
    stream?.close();
    await observer?.endAsync();
    const code = await system?.stop();
    if (env) await cleanupRun(env);
    assert.equal(code, 0, `plantwire did not stop cleanly:\n${system?.output()}`);
  });

  it("delivers a PLC's values to a live-stream client within a second of their publication", async () => {
    const device = await waitFor("a registered device with latest values", async () => {
      const { body } = await getJson<{ devices: DeviceDocument[] }>(`${api}/devices`);
      for (const d of body.devices) {
        const latest = await getJson<{ values: Record<string, unknown> }>(`${api}/devices/${d._id}/latest`);
        if (latest.status === 200 && Object.keys(latest.body.values).length > 0) return d;
      }
      return undefined;
    });
    // What the PLC published, by seq, as a second witness of the values.
    const published = new Map<number, TelemetryPayload>();
    observer = await connectMqtt(env, { clientId: `e2e-stream-observer-${process.pid}` });
    observer.on("message", (_topic, payload) => {
      const message = JSON.parse(payload.toString()) as TelemetryPayload;
      published.set(message.seq, message);
    });
    await observer.subscribeAsync(`${env.MQTT_TOPIC_ROOT}/${device.site}/${device.area}/${device.line}/${device._id}/telemetry`, { qos: 1 });

    const filter = `${env.MQTT_TOPIC_ROOT}/${device.site}/+/+/${device._id}/telemetry`;
    stream = await openEventStream(`${api}/stream?filter=${encodeURIComponent(filter)}&access_token=${testToken("viewer")}`);
    assert.equal(stream.status, 200);
    const open = stream;
    await waitFor("the snapshot", () => open.messages.some((m) => m.event === "snapshot-complete"));
    const snapshot = open.messages.filter((m) => m.event === "snapshot").map((m) => JSON.parse(m.data) as { device: string; values: Record<string, unknown> });
    assert.deepEqual(snapshot.map((s) => s.device), [device._id]);
    assert.ok(Object.keys(snapshot[0].values).length > 0, "the snapshot has the device's latest values");

    const live = await waitFor("20 live records", () => {
      const records = open.messages.filter((m) => m.event === "telemetry");
      return records.length >= 20 ? records.slice(0, 20) : undefined;
    }, 30_000);
    const latencies = live.map((m) => m.receivedAt - (JSON.parse(m.data) as TelemetryRecord).ts).sort((a, b) => a - b);
    for (const m of live) {
      const record = JSON.parse(m.data) as TelemetryRecord;
      assert.equal(record.device, device._id, "only the subscribed device");
      const payload = published.get(record.seq);
      if (!payload) continue; // published before the observer subscribed
      assert.equal(record.ts, payload.ts, "the PLC's timestamp");
      for (const [tag, sample] of Object.entries(record.values)) {
        const raw: TelemetryPayload["values"][string] | undefined = payload.values[tag];
        assert.deepEqual(sample.v, typeof raw === "object" && raw !== null ? raw.v : raw, `${tag} as the PLC published it`);
      }
    }
    const seqs = live.map((m) => (JSON.parse(m.data) as TelemetryRecord).seq);
    assert.ok(seqs.every((s, i) => i === 0 || s === seqs[i - 1] + 1), `consecutive PLC records: ${seqs.join(",")}`);
    assert.ok(latencies.at(-1)! < 1_000, `PLC timestamp → client within 1 s; latencies ${latencies.join(", ")} ms`);
  });
});
