// The preprocessor's contract: MQTT in (real Mosquitto), device registry beside it, Kafka out (real broker).
import { strict as assert } from "node:assert";
import type { Consumer } from "kafkajs";
import type { ServiceBroker } from "moleculer";
import type { MqttClient } from "mqtt";
import type { PreprocessorStats } from "../../services/preprocessor.service.ts";
import { deadLetter } from "../../src/ingest/dead-letter.ts";
import { deviceTopic } from "../../src/shared/topics.ts";
import type { DeadLetterRecord, StatePayload, TelemetryRecord } from "../../src/shared/types.ts";
import { cleanupRun, connectMqtt, collectTopic, isolatedEnv, startServices, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

describe("preprocessor against Mosquitto and Kafka", function () {
  this.timeout(60_000);
  let env: TestSystemEnv;
  let broker: ServiceBroker;
  let plc: MqttClient;
  const consumers: Consumer[] = [];
  const telemetry: { key: string; value: TelemetryRecord }[] = [];
  const deadLetters: { key: string; value: DeadLetterRecord }[] = [];
  const address = { site: "plant1", area: "paint-shop", line: "line1", device: "oven-01" };

  before(async () => {
    env = await isolatedEnv("pre");
    broker = await startServices(env, ["devices", "preprocessor"]);
    consumers.push(await collectTopic(env, "telemetry", telemetry), await collectTopic(env, "deadletter", deadLetters));
    plc = await connectMqtt(env, { clientId: `${env.MOLECULER_NAMESPACE}-plc` });
    const birth: StatePayload = { state: "online", ts: Date.now(), machineType: "oven", tags: [{ name: "temp", unit: "°C", type: "number", min: 0, max: 300, hi: 250 }] };
    await plc.publishAsync(deviceTopic(env.MQTT_TOPIC_ROOT, address, "state"), JSON.stringify(birth), { qos: 1, retain: true });
    await waitFor("the birth to register the device", () => broker.call("devices.get", { id: address.device }).then(() => true), 10_000);
  });

  after(async () => {
    await plc?.endAsync();
    await Promise.all(consumers.map((c) => c.disconnect()));
    await broker?.stop();
    if (env) await cleanupRun(env);
  });

  it("forwards valid telemetry normalized, enriched and keyed by device, in order", async () => {
    const topic = deviceTopic(env.MQTT_TOPIC_ROOT, address, "telemetry");
    const ts = Date.now();
    for (let seq = 1; seq <= 20; seq++) {
      await plc.publishAsync(topic, JSON.stringify({ ts: ts + seq, seq, values: { temp: 180 + seq, door: false, probe: { v: 999, q: "bad" } } }), { qos: 1 });
    }
    await waitFor("20 telemetry records", () => telemetry.length >= 20, 20_000);
    assert.deepEqual(telemetry.map((r) => r.value.seq), Array.from({ length: 20 }, (_, i) => i + 1));
    const first = telemetry[0];
    assert.equal(first.key, "oven-01");
    assert.deepEqual({ ...first.value, receivedAt: 0 }, { ...address, ts: ts + 1, seq: 1, receivedAt: 0, values: { temp: { v: 181, q: "good" }, door: { v: false, q: "good" }, probe: { v: 999, q: "bad" } } });
  });

  it("dead-letters every bad message with its reason and counts it, without losing good ones", async () => {
    const good = deviceTopic(env.MQTT_TOPIC_ROOT, address, "telemetry");
    const unknown = deviceTopic(env.MQTT_TOPIC_ROOT, { ...address, device: "ghost-99" }, "telemetry");
    const before = (await broker.call<PreprocessorStats>("preprocessor.stats")).deadLettered;
    const cases: [string, string | Buffer, RegExp][] = [
      [good, "{not json", /not UTF-8 JSON/],
      [good, Buffer.from([0xde, 0xad, 0xbe, 0xef]), /not UTF-8 JSON/],
      [good, JSON.stringify({ ts: Date.now(), seq: "one", values: { temp: 1 } }), /seq must be/],
      [good, JSON.stringify({ ts: Date.now(), seq: 1, values: { temp: "x".repeat(80_000) } }), /exceeds the limit/],
      [good, JSON.stringify({ ts: Date.now() + 3_600_000, seq: 1, values: { temp: 1 } }), /clock skew/],
      [unknown, JSON.stringify({ ts: Date.now(), seq: 1, values: { temp: 1 } }), /unknown device "ghost-99"/],
    ];
    for (const [topic, payload] of cases) {
      await plc.publishAsync(topic, payload, { qos: 1 });
      await plc.publishAsync(good, JSON.stringify({ ts: Date.now(), seq: 1000 + deadLetters.length, values: { temp: 1 } }), { qos: 1 });
    }
    await waitFor(`${cases.length} dead letters`, () => deadLetters.length >= cases.length, 20_000);
    // Dead letters are keyed by source topic, so two topics may land in different partitions:
    // match each case by its payload rather than by arrival order.
    for (const [topic, payload, reason] of cases) {
      // As the record carries it: base64 when binary, the first 64 KiB of an oversized payload.
      const expected = deadLetter(topic, "", Buffer.from(payload), 0).payload;
      const letter = deadLetters.find((d) => d.value.payload === expected);
      assert.ok(letter, `a dead letter for ${expected.slice(0, 40)}`);
      assert.equal(letter.key, topic);
      assert.match(letter.value.reason, reason);
      assert.equal(letter.value.encoding, Buffer.isBuffer(payload) ? "base64" : "utf8");
    }
    const stats = await broker.call<PreprocessorStats>("preprocessor.stats");
    assert.equal(stats.deadLettered - before, cases.length);
    await waitFor("the good messages interleaved with the bad ones", () => telemetry.filter((r) => r.value.seq >= 1000).length >= cases.length, 20_000);
  });
});
