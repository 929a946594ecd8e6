// MQTT accounts and ACLs on the local Mosquitto (scripts/infra.sh, provisioned by
// scripts/mqtt-accounts.ts): nobody in without an account, a device only on its own topics, each
// service only on what it needs (issue #6, docs/security.md "MQTT accounts").
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { deviceTopic } from "../../src/shared/topics.ts";
import type { DeviceAddress } from "../../src/shared/types.ts";
import { cleanupRun, deviceLogin, isolatedEnv, mqttLogin, provisionMqtt, SHARED_MQTT_URL, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

const run = promisify(execFile);
/** PUBACK / SUBACK reason code 0x87 (MQTT 5). */
const NOT_AUTHORIZED = 135;

describe("MQTT accounts and ACLs on Mosquitto", function () {
  this.timeout(60_000);
  let env: TestSystemEnv;
  const clients: MqttClient[] = [];
  const pressA: DeviceAddress = { site: "plant1", area: "press-shop", line: "line1", device: "press-a" };
  const pressB: DeviceAddress = { site: "plant1", area: "press-shop", line: "line1", device: "press-b" };

  before(async () => {
    env = await isolatedEnv("mqttacl", { PLC_COUNT: "0" });
    await provisionMqtt(env, [pressA, pressB]);
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => undefined)));
  });

  after(async () => {
    if (env) await cleanupRun(env);
  });

  async function connect(login: { username?: string; password?: string }, options: IClientOptions = {}): Promise<MqttClient> {
    const client = await mqtt.connectAsync(SHARED_MQTT_URL, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5_000, ...login, ...options });
    clients.push(client);
    return client;
  }

  /** Everything under the system's root, as its monitor account sees it. */
  async function watch(): Promise<{ topic: string; payload: string }[]> {
    const monitor = await connect(mqttLogin(env, "monitor"));
    const seen: { topic: string; payload: string }[] = [];
    monitor.on("message", (topic, payload) => seen.push({ topic, payload: payload.toString() }));
    await monitor.subscribeAsync(`${env.MQTT_TOPIC_ROOT}/#`, { qos: 1 });
    return seen;
  }

  /** The reason code of a QoS 1 publish's PUBACK (0: accepted). */
  async function publishReason(client: MqttClient, topic: string, payload: string): Promise<number> {
    try {
      const packet = (await client.publishAsync(topic, payload, { qos: 1 })) as { reasonCode?: number } | undefined;
      return packet?.reasonCode ?? 0;
    } catch (err) {
      return (err as { code?: number }).code ?? -1;
    }
  }

  it("refuses anonymous clients and wrong passwords", async () => {
    await assert.rejects(connect({}), /Not authorized|not authorised/i);
    await assert.rejects(connect({ username: deviceLogin(env, pressA).username, password: "guess" }), /Not authorized|not authorised/i);
    await assert.rejects(connect({ ...deviceLogin(env, pressA), username: deviceLogin(env, pressB).username }), /Not authorized|not authorised/i, "A's password is not B's");
    const ok = await connect(deviceLogin(env, pressA));
    assert.ok(ok.connected);
  });

  it("lets a device publish its own telemetry and state, and nothing as another device", async () => {
    const seen = await watch();
    const a = await connect(deviceLogin(env, pressA));
    assert.equal(await publishReason(a, deviceTopic(env.MQTT_TOPIC_ROOT, pressB, "telemetry"), "spoofed"), NOT_AUTHORIZED);
    assert.equal(await publishReason(a, deviceTopic(env.MQTT_TOPIC_ROOT, pressB, "state"), "spoofed"), NOT_AUTHORIZED);
    assert.equal(await publishReason(a, deviceTopic(env.MQTT_TOPIC_ROOT, { ...pressA, line: "line9" }, "telemetry"), "moved"), NOT_AUTHORIZED, "nor from another place in the plant");
    assert.equal(await publishReason(a, deviceTopic(env.MQTT_TOPIC_ROOT, pressA, "cmd"), "self-command"), NOT_AUTHORIZED, "a device does not command");
    assert.equal(await publishReason(a, deviceTopic(env.MQTT_TOPIC_ROOT, pressA, "state"), "online"), 0);
    assert.equal(await publishReason(a, deviceTopic(env.MQTT_TOPIC_ROOT, pressA, "telemetry"), "own"), 0);
    // One publisher's messages reach a subscriber in order: once "own" is there, nothing before it is on its way.
    await waitFor("A's own telemetry at the monitor", () => seen.some((m) => m.payload === "own"), 5_000);
    assert.deepEqual(seen.map((m) => m.payload), ["online", "own"]);
  });

  it("delivers a device only its own commands", async () => {
    const a = await connect(deviceLogin(env, pressA));
    const received: string[] = [];
    a.on("message", (topic, payload) => received.push(`${topic} ${payload.toString()}`));
    // Mosquitto 2.0 grants these subscriptions and checks the ACL at each delivery instead.
    await a.subscribeAsync(deviceTopic(env.MQTT_TOPIC_ROOT, pressB, "cmd"), { qos: 1 });
    await a.subscribeAsync(`${env.MQTT_TOPIC_ROOT}/#`, { qos: 1 });

    const control = await connect(mqttLogin(env, "control"));
    assert.equal(await publishReason(control, deviceTopic(env.MQTT_TOPIC_ROOT, pressB, "cmd"), "for B"), 0);
    assert.equal(await publishReason(control, deviceTopic(env.MQTT_TOPIC_ROOT, pressA, "cmd"), "for A"), 0);
    // One publisher's messages arrive in order: B's command would have come before A's.
    await waitFor("A's command", () => received.length > 0, 5_000);
    assert.deepEqual(received, [`${deviceTopic(env.MQTT_TOPIC_ROOT, pressA, "cmd")} for A`]);
  });

  it("keeps each service account to its job", async () => {
    const preprocessor = await connect(mqttLogin(env, "preprocessor"));
    assert.equal(await publishReason(preprocessor, deviceTopic(env.MQTT_TOPIC_ROOT, pressA, "telemetry"), "forged"), NOT_AUTHORIZED, "the preprocessor only reads");
    const heard: string[] = [];
    preprocessor.on("message", (_topic, payload) => heard.push(payload.toString()));
    await preprocessor.subscribeAsync(`${env.MQTT_TOPIC_ROOT}/#`, { qos: 1 });
    const admin = await connect(mqttLogin(env, "admin"));
    assert.equal(await publishReason(admin, deviceTopic(env.MQTT_TOPIC_ROOT, pressA, "cmd"), "a command"), 0);
    assert.equal(await publishReason(admin, deviceTopic(env.MQTT_TOPIC_ROOT, pressA, "telemetry"), "telemetry"), 0);
    await waitFor("the telemetry at the preprocessor", () => heard.length > 0, 5_000);
    assert.deepEqual(heard, ["telemetry"], "it reads telemetry but not commands");
    const control = await connect(mqttLogin(env, "control"));
    assert.equal(await publishReason(control, deviceTopic(env.MQTT_TOPIC_ROOT, pressA, "telemetry"), "forged"), NOT_AUTHORIZED, "control sends commands only");
    const monitor = await connect(mqttLogin(env, "monitor"));
    assert.equal(await publishReason(monitor, deviceTopic(env.MQTT_TOPIC_ROOT, pressA, "cmd"), "forged"), NOT_AUTHORIZED, "the monitor only reads");
    assert.equal(await publishReason(admin, "other-root/x/telemetry", "elsewhere"), NOT_AUTHORIZED, "the admin account ends at its root");
  });

  it("provisions a real device from the command line and prints the password it connects with", async () => {
    const cli = (args: string[], extra: Record<string, string> = {}) =>
      run(process.execPath, ["scripts/mqtt-accounts.ts", ...args], { env: { ...process.env, ...env, ...extra } });
    const { stdout } = await cli(["device", "plant1/assembly/line7/robot-07"]);
    const username = /username: (.+)/.exec(stdout)?.[1];
    const password = /password: (.+)/.exec(stdout)?.[1];
    assert.equal(username, `${env.MQTT_TOPIC_ROOT}/plant1/assembly/line7/robot-07`);
    assert.ok(password);
    const robot = await connect({ username, password });
    assert.equal(await publishReason(robot, `${username}/telemetry`, "{}"), 0);
    await robot.endAsync();
    assert.equal((await cli(["password", username])).stdout.trim(), password);
    assert.match((await cli(["list"])).stdout, new RegExp(`device\\t${username.replaceAll("/", "\\/")}`));

    await cli(["remove", username]);
    await assert.rejects(connect({ username, password }), /Not authorized|not authorised/i, "removed: refused from then on");
    await assert.rejects(cli(["device", "plant1/assembly/line7"]), (err: { code?: number; stderr?: string }) => err.code === 2 && /site\/area\/line\/device/.test(err.stderr ?? ""));
    await assert.rejects(cli(["provision"], { MQTT_SECRET: "" }), (err: { code?: number; stderr?: string }) => err.code === 2 && /MQTT_SECRET/.test(err.stderr ?? ""));
  });
});
