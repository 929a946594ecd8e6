// Bad input at volume against the real servers: a few thousand hostile MQTT messages interleaved
// with valid telemetry. Every one has the outcome docs/reliability.md documents, counted exactly.
import { strict as assert } from "node:assert";
import type { Consumer } from "kafkajs";
import type { ServiceBroker } from "moleculer";
import type { MqttClient } from "mqtt";
import type { PreprocessorStats } from "../../services/preprocessor.service.ts";
import { deadLetter } from "../../src/ingest/dead-letter.ts";
import type { ServiceHealth } from "../../src/shared/health.ts";
import { deviceTopic } from "../../src/shared/topics.ts";
import type { DeadLetterRecord, DeviceAddress } from "../../src/shared/types.ts";
import { badInputCorpus, corpusBirth, type CorpusMessage } from "../fixtures/bad-input/corpus.ts";
import { cleanupRun, connectMqtt, collectTopic, isolatedEnv, startServices, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

const ROUNDS = 80;
const PUBLISH_WINDOW = 200;

/** What identifies a dead letter: its source topic and the payload as the record carries it. */
function letterKey(record: Pick<DeadLetterRecord, "source" | "encoding" | "payload">): string {
  return `${record.source}\u0000${record.encoding}\u0000${record.payload}`;
}

describe("bad input at volume", function () {
  this.timeout(180_000);
  let env: TestSystemEnv;
  let broker: ServiceBroker;
  let client: MqttClient;
  const consumers: Consumer[] = [];
  const deadLetters: { key: string; value: DeadLetterRecord }[] = [];
  const devices: DeviceAddress[] = ["oven-01", "oven-02", "press-01", "press-02"].map((device, i) => ({ site: "plant1", area: `area${i % 2}`, line: "line1", device }));

  before(async () => {
    env = await isolatedEnv("bad", { LOG_LEVEL: "error" });
    broker = await startServices(env, ["devices", "preprocessor", "historian"]);
    consumers.push(await collectTopic(env, "deadletter", deadLetters));
    client = await connectMqtt(env, { clientId: `${env.MOLECULER_NAMESPACE}-corpus`, protocolVersion: 5 });
    for (const d of devices) await client.publishAsync(deviceTopic(env.MQTT_TOPIC_ROOT, d, "state"), JSON.stringify(corpusBirth(Date.now())), { qos: 1, retain: true });
    await waitFor("the births to register every device", () => Promise.all(devices.map((d) => broker.call("devices.get", { id: d.device }))).then(() => true), 20_000);
  });

  after(async () => {
    await client?.endAsync();
    await Promise.all(consumers.map((c) => c.disconnect()));
    await broker?.stop();
    if (env) await cleanupRun(env);
  });

  it("dead-letters each hostile message with its reason, stores every valid sample once and stays healthy", async () => {
    const now = Date.now();
    const corpus = badInputCorpus({ root: env.MQTT_TOPIC_ROOT, devices, now, rounds: ROUNDS });
    const of = (kind: CorpusMessage["expected"]["kind"]) => corpus.filter((m) => m.expected.kind === kind);
    const routed = corpus.filter((m) => m.expected.kind !== "refused-by-broker");
    // A copy: in-process calls return the service's live stats object itself.
    const stats0 = { ...(await broker.call<PreprocessorStats>("preprocessor.stats")) };

    for (let i = 0; i < routed.length; i += PUBLISH_WINDOW) {
      await Promise.all(routed.slice(i, i + PUBLISH_WINDOW).map((m) => client.publishAsync(m.topic, m.payload, { qos: 1 })));
    }
    // Over max_packet_size: Mosquitto closes the sender's connection (QoS 0, so the client does not
    // resend it forever from its outgoing store on every reconnect).
    for (const m of of("refused-by-broker")) {
      const sender = await connectMqtt(env, { clientId: `${env.MOLECULER_NAMESPACE}-oversize`, protocolVersion: 5, reconnectPeriod: 0 });
      sender.on("error", () => undefined);
      const closed = new Promise<void>((resolve) => sender.once("close", () => resolve()));
      sender.publish(m.topic, m.payload, { qos: 0 });
      await closed;
      sender.end(true);
    }

    const delivered = of("dead-letter").length + of("stored").length + of("ignored").length;
    await waitFor(
      `the preprocessor to receive all ${delivered} delivered messages`,
      async () => {
        const received = (await broker.call<PreprocessorStats>("preprocessor.stats")).received - stats0.received;
        if (received < delivered) throw new Error(`${received} received so far`);
        return true;
      },
      90_000,
      250,
    );
    const expectedLetters = of("dead-letter");
    await waitFor(`${expectedLetters.length} dead letters`, () => deadLetters.length >= expectedLetters.length, 30_000);

    // Exact accounting: each expected dead letter found once with its reason, nothing else.
    const expected = new Map<string, RegExp[]>();
    for (const m of expectedLetters) {
      if (m.expected.kind !== "dead-letter") continue;
      const key = letterKey(deadLetter(m.topic, "", m.payload, 0));
      expected.set(key, [...(expected.get(key) ?? []), m.expected.reason]);
    }
    for (const { key, value } of deadLetters) {
      assert.equal(key, value.source);
      const reasons = expected.get(letterKey(value));
      assert.ok(reasons && reasons.length > 0, `unexpected dead letter on ${value.source}: ${value.reason}`);
      assert.match(value.reason, reasons.pop() as RegExp);
    }
    assert.deepEqual([...expected.values()].flat(), [], "every expected dead letter arrived");
    assert.equal(deadLetters.length, expectedLetters.length);
    const big = deadLetters.filter((d) => d.value.truncatedFrom !== undefined).map((d) => d.value.truncatedFrom);
    assert.deepEqual(big.sort(), corpus.filter((m) => m.payload.length > 65_536 && m.expected.kind === "dead-letter").map((m) => m.payload.length).sort());

    const stats = await broker.call<PreprocessorStats>("preprocessor.stats");
    assert.equal(stats.received - stats0.received, delivered, "nothing routed beyond the corpus' delivered messages");
    assert.equal(stats.deadLettered - stats0.deadLettered, expectedLetters.length);

    // Every valid sample (and every one accepted by a documented rule) stored exactly once.
    for (const d of devices) {
      const seqs = [...new Set(of("stored").flatMap((m) => (m.expected.kind === "stored" && m.expected.device === d.device ? [m.expected.seq] : [])))].sort((a, b) => a - b);
      const points = await waitFor(
        `${seqs.length} samples of ${d.device} in the history`,
        async () => {
          // Points enough for one per second over the span: the raw tier answers, sample by sample.
          const history = await broker.call<{ kind: string; points: { seq: number }[] }, object>("historian.history", { id: d.device, tag: "temp", from: now - 3 * 3_600_000, to: now + 10 * 60_000, points: 100_000 });
          assert.equal(history.kind, "samples");
          const got = new Set(history.points.map((p) => p.seq));
          const missing = seqs.filter((s) => !got.has(s));
          if (missing.length > 0) throw new Error(`${history.points.length} points, missing seq ${missing.slice(0, 10).join(", ")}${missing.length > 10 ? ", …" : ""}`);
          return history.points;
        },
        60_000,
        500,
      );
      assert.deepEqual(points.map((p) => p.seq).sort((a, b) => a - b), seqs, `${d.device}: every seq once, nothing else`);
    }

    for (const service of ["devices", "preprocessor", "historian"]) {
      const health = await broker.call<ServiceHealth>(`${service}.health`);
      assert.ok(health.ok, `${service} healthy: ${JSON.stringify(health)}`);
    }
    console.log(`      corpus: ${corpus.length} messages (${expectedLetters.length} dead-lettered, ${of("stored").length} stored, ${of("ignored").length} ignored, ${of("not-routed").length} not routed, ${of("refused-by-broker").length} refused by the broker)`);
  });
});
