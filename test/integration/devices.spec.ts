// PATCH /api/devices/{id} through the real servers: the PLC's birth and telemetry over MQTT
// (preprocessor), the change over the REST gateway, the registry in MongoDB (FerretDB) behind the
// Redis cacher, and the anomaly detector's limit alarms on Kafka.
import { strict as assert } from "node:assert";
import type { ServiceBroker } from "moleculer";
import { MongoClient } from "mongodb";
import type { MqttClient } from "mqtt";
import type { AuditEntry } from "../../src/audit/chain.ts";
import { deviceTopic } from "../../src/shared/topics.ts";
import type { AlarmDocument, DeviceDocument, DeviceUpdate, StatePayload } from "../../src/shared/types.ts";
import { apiFetch, cleanupRun, connectMqtt, isolatedEnv, startServices, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

interface Json<T> {
  status: number;
  body: T;
}

interface ErrorBody {
  error: { type: string; message: string; fields?: string[] };
}

const oven = { site: "plant1", area: "paint-shop", line: "line1", device: "oven-01" };
const ovenTags: StatePayload["tags"] = [
  { name: "zone_temp", unit: "°C", type: "number", min: 0, max: 400, lo: 100, hi: 192 },
  { name: "state", unit: "", type: "string" },
];

describe("device updates (PATCH /api/devices/{id})", function () {
  this.timeout(120_000);
  let env: TestSystemEnv;
  let broker: ServiceBroker;
  let plc: MqttClient;
  let api: string;
  let seq = 0;

  async function call<T>(method: string, path: string, body?: unknown): Promise<Json<T>> {
    const res = await apiFetch(`${api}${path}`, { method, headers: body === undefined ? {} : { "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as T };
  }

  async function birth(ts: number): Promise<void> {
    const payload: StatePayload = { state: "online", ts, machineType: "oven", tags: ovenTags };
    await plc.publishAsync(deviceTopic(env.MQTT_TOPIC_ROOT, oven, "state"), JSON.stringify(payload), { qos: 1, retain: true });
  }

  async function sendTemperature(value: number): Promise<void> {
    seq++;
    await plc.publishAsync(deviceTopic(env.MQTT_TOPIC_ROOT, oven, "telemetry"), JSON.stringify({ ts: Date.now(), seq, values: { zone_temp: value, state: "running" } }), { qos: 1 });
  }

  async function zoneAlarms(): Promise<AlarmDocument[]> {
    const { body } = await call<{ alarms: AlarmDocument[] }>("GET", `/alarms?device=${oven.device}&tag=zone_temp`);
    return body.alarms;
  }

  before(async () => {
    env = await isolatedEnv("devices");
    api = `http://127.0.0.1:${env.API_PORT}/api`;
    broker = await startServices(env, ["devices", "preprocessor", "alarms", "anomaly-detector", "api"]);
    plc = await connectMqtt(env, { clientId: `${env.MOLECULER_NAMESPACE}-plc` });
    await birth(Date.now());
    await waitFor("the birth to register the device", async () => (await call("GET", `/devices/${oven.device}`)).status === 200, 20_000);
  });

  after(async () => {
    await plc?.endAsync();
    await broker?.stop();
    if (env) await cleanupRun(env);
  });

  it("changes a limit: GET shows it, a new birth keeps it, and the limit alarm follows it", async () => {
    // 180 °C is inside the PLC's limits (100..192): evaluated, no alarm.
    const evaluated = async () => (await broker.call<{ evaluated: number }>("anomaly-detector.stats")).evaluated;
    await sendTemperature(180);
    await waitFor("the first sample evaluated", async () => (await evaluated()) > 0, 30_000, 200);
    assert.deepEqual(await zoneAlarms(), []);

    const patched = await call<DeviceDocument>("PATCH", `/devices/${oven.device}`, { tags: { zone_temp: { hi: 170, alarm: { onDelayMs: 0 } } }, metadata: { location: "hall 2, bay 4" } });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body.tags.find((t) => t.name === "zone_temp")?.hi, 170);

    const { body: device } = await call<DeviceDocument>("GET", `/devices/${oven.device}`);
    const zone = device.tags.find((t) => t.name === "zone_temp");
    assert.deepEqual([zone?.lo, zone?.hi, zone?.alarm?.onDelayMs], [100, 170, 0], "GET (through the cacher) shows the change");
    assert.deepEqual(device.metadata, { location: "hall 2, bay 4" });
    assert.equal(device.overrides?.updatedBy, "admin");
    const { body: list } = await call<{ devices: DeviceDocument[] }>("GET", "/devices?site=plant1");
    assert.equal(list.devices.find((d) => d._id === oven.device)?.tags.find((t) => t.name === "zone_temp")?.hi, 170, "the list too");

    // The PLC restarts: its birth carries hi 192 again; the engineer's 170 stays.
    const reborn = Date.now() + 1;
    await birth(reborn);
    const after = await waitFor("the new birth registered", async () => {
      const { body } = await call<DeviceDocument>("GET", `/devices/${oven.device}`);
      return body.updatedAt === reborn ? body : undefined;
    }, 20_000, 200);
    assert.equal(after.tags.find((t) => t.name === "zone_temp")?.hi, 170);

    // The same 180 °C is now above hi: the anomaly detector raises an hi alarm against 170.
    const raised = await waitFor("an active hi alarm on zone_temp", async () => {
      await sendTemperature(180);
      return (await zoneAlarms()).find((a) => a.kind === "hi" && a.state === "active-unack");
    }, 30_000, 500);
    assert.deepEqual([raised.limit, raised.value], [170, 180]);

    const mongo = new MongoClient(env.MONGO_URL);
    try {
      const audit = await mongo.db().collection<AuditEntry>("audit").find({ subject: "device", subjectId: oven.device }).toArray();
      assert.deepEqual(audit.map((a) => [a.action, a.user, (a.details.change as DeviceUpdate).tags?.zone_temp?.hi]), [["device.updated", "admin", 170]]);
    } finally {
      await mongo.close();
    }
  });

  it("removes a limit with null and changes metadata only", async () => {
    const removed = await call<DeviceDocument>("PATCH", `/devices/${oven.device}`, { tags: { zone_temp: { lo: null } }, metadata: { name: "Curing oven 1", location: null } });
    assert.equal(removed.status, 200, JSON.stringify(removed.body));
    const { body } = await call<DeviceDocument>("GET", `/devices/${oven.device}`);
    const zone = body.tags.find((t) => t.name === "zone_temp");
    assert.equal(zone?.lo, undefined);
    assert.equal(zone?.hi, 170, "the earlier change stays");
    assert.deepEqual(body.metadata, { name: "Curing oven 1" });
  });

  it("answers 400 naming the field for bad changes, 404 for an unknown device", async () => {
    const cases: [unknown, string, RegExp][] = [
      [{ tags: { nope: { hi: 1 } } }, "tags.nope", /not a tag of oven-01/],
      [{ tags: { state: { hi: 1 } } }, "tags.state", /only numeric tags/],
      [{ tags: { zone_temp: { hi: "hot" } } }, "tags.zone_temp.hi", /must be a number/],
      [{ tags: { zone_temp: { hi: 500 } } }, "tags.zone_temp.hi", /outside the engineering range/],
      [{ tags: { zone_temp: { hihi: 150 } } }, "tags.zone_temp.hihi", /must be ordered/],
      [{ tags: { zone_temp: { limit: 1 } } }, "tags.zone_temp", /forbidden keys/],
      [{ metadata: { "bad key": "x" } }, "metadata.bad key", /pattern/],
      [{ metadata: { notes: "x".repeat(1001) } }, "metadata.notes", /length/],
      [{}, "tags", /nothing to change/],
    ];
    for (const [body, field, message] of cases) {
      const res = await call<ErrorBody>("PATCH", `/devices/${oven.device}`, body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.deepEqual(res.body.error.fields, [field], JSON.stringify(res.body));
      assert.match(res.body.error.message, message);
    }
    const unknown = await call<ErrorBody>("PATCH", "/devices/no-such-plc", { tags: { zone_temp: { hi: 1 } } });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.type, "DEVICE_NOT_FOUND");
    const { body } = await call<DeviceDocument>("GET", `/devices/${oven.device}`);
    assert.equal(body.tags.find((t) => t.name === "zone_temp")?.hi, 170, "nothing refused was stored");
  });
});
