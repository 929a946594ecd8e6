// Creates the architecture's Kafka topics; topics that already exist are left as they are.
// Run by `scripts/infra.sh start` once the broker port is open: `node scripts/create-topics.ts`.
// Retries until the broker answers metadata requests (a freshly started KRaft broker opens its
// port a moment before it can serve them), up to CREATE_TOPICS_TIMEOUT_MS (default 90 s).
// Settings come from the environment through loadConfig(): KAFKA_BROKERS, KAFKA_PARTITIONS,
// KAFKA_REPLICATION, KAFKA_TOPIC_PREFIX (prepended to every topic name).
import { Kafka, logLevel } from "kafkajs";
import type { Admin, ITopicConfig } from "kafkajs";
import { loadConfig } from "../src/shared/config.ts";
import { KAFKA_TOPICS, kafkaTopic } from "../src/shared/topics.ts";
import type { KafkaTopicKind } from "../src/shared/topics.ts";

function log(message: string): void {
  console.log(`create-topics: ${message}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

async function ensureTopics(admin: Admin, wanted: ITopicConfig[], partitions: number): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = wanted.filter((t) => !existing.has(t.topic));
  if (missing.length > 0) {
    await admin.createTopics({ topics: missing, waitForLeaders: true });
  }
  const created = new Set(missing.map((t) => t.topic));
  const metadata = await admin.fetchTopicMetadata({ topics: wanted.map((t) => t.topic) });
  for (const { topic: name } of wanted) {
    const count = metadata.topics.find((t) => t.name === name)?.partitions.length ?? 0;
    const state = created.has(name) ? "created" : "exists";
    log(`${name}: ${state}, ${count} partitions`);
    if (count !== partitions) {
      log(`  note: KAFKA_PARTITIONS is ${partitions}; the topic keeps its ${count} partitions (changing them remaps keys, do it deliberately)`);
    }
  }
}

async function main(): Promise<void> {
  const config = loadConfig();
  const timeoutMs = Number(process.env.CREATE_TOPICS_TIMEOUT_MS ?? 90_000);
  const kafka = new Kafka({
    clientId: "plantwire-create-topics",
    brokers: config.kafkaBrokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    retry: { retries: 2, initialRetryTime: 300 },
  });
  const kinds = Object.keys(KAFKA_TOPICS) as KafkaTopicKind[];
  const wanted: ITopicConfig[] = kinds.map((kind) => ({
    topic: kafkaTopic(config.kafkaTopicPrefix, kind),
    numPartitions: config.kafkaPartitions,
    replicationFactor: config.kafkaReplication,
  }));

  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    const admin = kafka.admin();
    try {
      await admin.connect();
      await ensureTopics(admin, wanted, config.kafkaPartitions);
      return;
    } catch (err) {
      if (Date.now() >= deadline) {
        throw new Error(`Kafka at ${config.kafkaBrokers.join(",")} did not accept the topics within ${timeoutMs} ms: ${errorText(err)}`);
      }
      if (attempt === 1 || attempt % 10 === 0) {
        log(`waiting for Kafka at ${config.kafkaBrokers.join(",")} (${errorText(err)})`);
      }
      await sleep(1000);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}

main().catch((err: unknown) => {
  console.error(`create-topics: error: ${errorText(err)}`);
  process.exitCode = 1;
});
