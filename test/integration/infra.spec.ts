// Proves each local server works with the client library the services use.
// Needs the servers running: `bash scripts/infra.sh start`, then
//   node_modules/.bin/node node_modules/.bin/mocha --timeout 60000 test/integration/infra.spec.ts
// (or `npm run test:integration`). Every test makes its own uniquely named topic / collection /
// key / subject and removes it again.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { Kafka, Partitioners, logLevel } from "kafkajs";
import mqtt from "mqtt";
import type { MqttClient } from "mqtt";
import { MongoClient } from "mongodb";
import { Redis } from "ioredis";
import { connect, StringCodec } from "nats";
import { loadConfig } from "../../src/shared/config.ts";
import { KAFKA_TOPICS, kafkaTopic } from "../../src/shared/topics.ts";
import { cleanupRun, isolatedEnv, mqttLogin, type TestSystemEnv } from "../helpers/system.ts";
import type { KafkaTopicKind } from "../../src/shared/topics.ts";

const config = loadConfig();
const MQTT_WS_URL = process.env.MQTT_WS_URL ?? "ws://127.0.0.1:9001";
const run = randomUUID().slice(0, 8);

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe("local infrastructure (scripts/infra.sh start)", function () {
  describe("Kafka 4.1 with kafkajs 2.2.4", function () {
    const kafka = new Kafka({
      clientId: `plantwire-infra-test-${run}`,
      brokers: config.kafkaBrokers,
      logLevel: logLevel.ERROR,
      connectionTimeout: 3000,
    });

    it("has the architecture's topics with the configured partition count", async function () {
      const admin = kafka.admin();
      await admin.connect();
      try {
        const names = (Object.keys(KAFKA_TOPICS) as KafkaTopicKind[]).map((kind) => kafkaTopic(config.kafkaTopicPrefix, kind));
        const metadata = await admin.fetchTopicMetadata({ topics: names });
        for (const name of names) {
          const topic = metadata.topics.find((t) => t.name === name);
          assert.ok(topic, `topic ${name} is missing (scripts/infra.sh start creates it)`);
          assert.equal(topic.partitions.length, config.kafkaPartitions, `${name} partitions`);
        }
      } finally {
        await admin.disconnect();
      }
    });

    it("round-trips 100 keyed messages through an idempotent producer and a consumer group, in per-key order", async function () {
      const topic = `plantwire.infra-test.${run}`;
      const groupId = `plantwire-infra-test-${run}`;
      const keys = 10;
      const perKey = 10;
      const admin = kafka.admin();
      const producer = kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
      await admin.connect();
      try {
        await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true });
        await producer.connect();
        // ten requests of ten messages, keys interleaved: per-key order must survive batching
        for (let seq = 0; seq < perKey; seq++) {
          const messages = Array.from({ length: keys }, (_, k) => ({
            key: `device-${k}`,
            value: JSON.stringify({ device: `device-${k}`, seq }),
          }));
          const result = await producer.send({ topic, acks: -1, messages });
          assert.ok(result.every((r) => r.errorCode === 0), `produce errors: ${JSON.stringify(result)}`);
        }

        const seen = new Map<string, { seq: number; partition: number }[]>();
        let count = 0;
        let done: () => void = () => undefined;
        const all = new Promise<void>((resolve) => (done = resolve));
        await consumer.connect();
        await consumer.subscribe({ topic, fromBeginning: true });
        await consumer.run({
          eachMessage: async ({ partition, message }) => {
            const key = message.key?.toString() ?? "";
            const { seq } = JSON.parse(message.value?.toString() ?? "{}") as { seq: number };
            const list = seen.get(key) ?? [];
            list.push({ seq, partition });
            seen.set(key, list);
            if (++count >= keys * perKey) done();
          },
        });
        await withTimeout(all, 30_000, `${keys * perKey} messages (got ${count})`);

        assert.equal(count, keys * perKey, "each message exactly once");
        assert.equal(seen.size, keys);
        for (const [key, list] of seen) {
          assert.deepEqual(list.map((m) => m.seq), Array.from({ length: perKey }, (_, i) => i), `order of ${key}`);
          assert.equal(new Set(list.map((m) => m.partition)).size, 1, `${key} stays on one partition`);
        }
      } finally {
        await consumer.disconnect().catch(() => undefined);
        await producer.disconnect().catch(() => undefined);
        await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
        await admin.deleteGroups([groupId]).catch(() => undefined);
        await admin.disconnect();
      }
    });
  });

  describe("Mosquitto with mqtt.js 5", function () {
    const clients: MqttClient[] = [];
    // Mosquitto refuses anonymous clients: these log in as a test system's MQTT admin.
    let env: TestSystemEnv;

    before(async function () {
      env = await isolatedEnv("infra");
    });

    after(async function () {
      if (env) await cleanupRun(env);
    });

    async function client(url: string, options: mqtt.IClientOptions = {}): Promise<MqttClient> {
      const c = await mqtt.connectAsync(url, {
        ...mqttLogin(env),
        protocolVersion: 5,
        clientId: `plantwire-infra-test-${run}-${clients.length}`,
        reconnectPeriod: 0,
        connectTimeout: 5000,
        ...options,
      });
      clients.push(c);
      return c;
    }

    function nextMessage(c: MqttClient, topic: string): Promise<{ payload: string; qos: number }> {
      return withTimeout(
        new Promise((resolve) => {
          c.on("message", (t, payload, packet) => {
            if (t === topic) resolve({ payload: payload.toString(), qos: packet.qos });
          });
        }),
        5000,
        `a message on ${topic}`,
      );
    }

    afterEach(async function () {
      await Promise.all(clients.splice(0).map((c) => c.endAsync().catch(() => undefined)));
    });

    it("delivers QoS 1 from TCP (1883) to WebSocket (9001) and back", async function () {
      const tcp = await client(config.mqttUrl);
      const ws = await client(MQTT_WS_URL);
      const toWs = `${env.MQTT_TOPIC_ROOT}/to-ws`;
      const toTcp = `${env.MQTT_TOPIC_ROOT}/to-tcp`;
      await ws.subscribeAsync(toWs, { qos: 1 });
      await tcp.subscribeAsync(toTcp, { qos: 1 });

      const atWs = nextMessage(ws, toWs);
      await tcp.publishAsync(toWs, "hello over tcp", { qos: 1 });
      assert.deepEqual(await atWs, { payload: "hello over tcp", qos: 1 });

      const atTcp = nextMessage(tcp, toTcp);
      await ws.publishAsync(toTcp, "hello over ws", { qos: 1 });
      assert.deepEqual(await atTcp, { payload: "hello over ws", qos: 1 });
    });

    it("queues QoS 1 messages for an offline persistent session", async function () {
      const topic = `${env.MQTT_TOPIC_ROOT}/persistent`;
      const clientId = `plantwire-infra-test-${run}-persistent`;
      const session = { clientId, clean: false, properties: { sessionExpiryInterval: 60 } };
      const sub = await client(config.mqttUrl, session);
      await sub.subscribeAsync(topic, { qos: 1 });
      await sub.endAsync();

      const pub = await client(config.mqttUrl);
      await pub.publishAsync(topic, "queued while offline", { qos: 1 });

      // mqtt.js emits queued messages right after CONNACK: listen before the connection completes
      const again = mqtt.connect(config.mqttUrl, { ...mqttLogin(env), protocolVersion: 5, reconnectPeriod: 0, ...session });
      clients.push(again);
      assert.deepEqual(await nextMessage(again, topic), { payload: "queued while offline", qos: 1 });
      await again.endAsync();
      // drop the session on the broker
      const cleanup = await client(config.mqttUrl, { clientId, clean: true, properties: { sessionExpiryInterval: 0 } });
      await cleanup.endAsync();
    });
  });

  describe("MongoDB wire (FerretDB) with the mongodb driver", function () {
    it("inserts, finds, and maintains rollups with $inc/$min/$max upserts", async function () {
      const client = new MongoClient(config.mongoUrl, { serverSelectionTimeoutMS: 5000 });
      const db = client.db(`plantwire_infra_test_${run}`);
      try {
        await client.connect();
        const samples = db.collection<{ _id: string; device: string; v: number }>("samples");
        await samples.insertMany([
          { _id: "a", device: "d1", v: 3 },
          { _id: "b", device: "d1", v: 9 },
          { _id: "c", device: "d2", v: 5 },
        ]);
        const d1 = await samples.find({ device: "d1" }).sort({ v: -1 }).toArray();
        assert.deepEqual(d1.map((d) => d._id), ["b", "a"]);

        const rollups = db.collection<{ _id: string }>("rollups");
        const id = "d1|2024-01-01T00:00";
        for (const v of [5, 3, 9]) {
          await rollups.updateOne(
            { _id: id },
            {
              $inc: { "tags.temp.count": 1, "tags.temp.sum": v },
              $min: { "tags.temp.min": v },
              $max: { "tags.temp.max": v },
              $setOnInsert: { device: "d1" },
            },
            { upsert: true },
          );
        }
        // the historian writes rollups in bulk; the same operators through bulkWrite
        await rollups.bulkWrite([
          {
            updateOne: {
              filter: { _id: id },
              update: { $inc: { "tags.temp.count": 1, "tags.temp.sum": 1 }, $min: { "tags.temp.min": 1 }, $max: { "tags.temp.max": 1 } },
              upsert: true,
            },
          },
        ]);
        const doc = await rollups.findOne({ _id: id });
        assert.deepEqual(doc, { _id: id, device: "d1", tags: { temp: { count: 4, sum: 18, min: 1, max: 9 } } });
      } finally {
        await db.dropDatabase().catch(() => undefined);
        await client.close();
      }
    });
  });

  describe("Redis with ioredis", function () {
    it("sets and gets a key", async function () {
      const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
      const key = `plantwire:infra-test:${run}`;
      try {
        await redis.connect();
        assert.equal(await redis.set(key, "value", "EX", 30), "OK");
        assert.equal(await redis.get(key), "value");
      } finally {
        await redis.del(key).catch(() => undefined);
        await redis.quit();
      }
    });
  });

  describe("NATS with nats.js 2", function () {
    it("answers a request", async function () {
      const nc = await connect({ servers: config.natsUrl, timeout: 3000 });
      const sc = StringCodec();
      const subject = `plantwire.infra-test.${run}`;
      try {
        nc.subscribe(subject, { callback: (_err, msg) => msg.respond(sc.encode(`pong:${sc.decode(msg.data)}`)) });
        const reply = await nc.request(subject, sc.encode("ping"), { timeout: 2000 });
        assert.equal(sc.decode(reply.data), "pong:ping");
      } finally {
        await nc.drain();
      }
    });
  });
});
