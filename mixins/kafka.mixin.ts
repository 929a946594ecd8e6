import type { Logger, ServiceSchema } from "moleculer";
import { Kafka, logLevel as KafkaLogLevel, Partitioners, type Consumer, type EachBatchPayload, type Message, type Producer } from "kafkajs";
import type { PlantwireConfig } from "../src/shared/config.ts";
import { consumerGroupId } from "../src/kafka/consumer-lag.ts";
import { probe, type HealthCheck } from "../src/shared/health.ts";
import { KAFKA_TOPICS, kafkaTopic, type KafkaTopicKind } from "../src/shared/topics.ts";

export interface KafkaConsumerOptions {
  /** Suffix of the group id; the full id is `<namespace>.<group>` so test runs never share groups. */
  group: string;
  topics: KafkaTopicKind[];
  /** Called per partition batch; offsets are committed only after it resolves (unless autoCommit is false). */
  eachBatch: (payload: EachBatchPayload) => Promise<void>;
  /**
   * false: the mixin still marks each handled batch as consumed (so fetching moves on) but never
   * commits; the service commits what it has made durable itself, with `consumer.commitOffsets`.
   * kafkajs then commits nothing on its own either, not even on a rebalance or a stop. Default true.
   */
  autoCommit?: boolean;
  /** Called on every (re)join of the group with this member's partitions per topic, before it fetches. */
  onGroupJoin?: (assignment: Record<string, number[]>) => void;
  partitionsConsumedConcurrently?: number;
  /** Let the broker gather up to this many bytes (waiting at most maxWaitTimeInMs) into one batch. */
  minBytes?: number;
  maxWaitTimeInMs?: number;
}

// kafkajs logs every failed request as an error, though it retries them; real failures surface as thrown errors.
const LOG_METHODS = { [KafkaLogLevel.ERROR]: "warn", [KafkaLogLevel.WARN]: "warn", [KafkaLogLevel.INFO]: "info", [KafkaLogLevel.DEBUG]: "debug" } as const;

/** A kafkajs client for plantwire's brokers whose log lines go to the service's logger under `label`. */
export function createKafkaClient(config: PlantwireConfig, clientId: string, logger: Logger, label: string): Kafka {
  return new Kafka({
    clientId,
    brokers: config.kafkaBrokers,
    connectionTimeout: 3_000,
    requestTimeout: 10_000,
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5_000 },
    logLevel: KafkaLogLevel.WARN,
    logCreator: () => (entry) => {
      const method = LOG_METHODS[entry.level as keyof typeof LOG_METHODS] ?? "info";
      const { message, broker, error, groupId, topic } = entry.log as Record<string, unknown>;
      logger[method](`${label}: ${String(message)}`, { component: entry.namespace, broker, error, groupId, topic });
    },
  });
}

/** How often a consumer tells the group coordinator it is alive (sessionTimeout is 10 s). */
const HEARTBEAT_INTERVAL_MS = 1_000;

/** Topic creation runs once per process and prefix, however many services share the process. */
const topicsEnsured = new Map<string, Promise<void>>();

/**
 * Kafka client for a service: an idempotent producer (acks=all) connected on start, and consumers
 * whose offsets are committed only after the handler finished, so delivery is at least once.
 */
export function kafkaMixin(config: PlantwireConfig): Partial<ServiceSchema> {
  return {
    methods: {
      async kafkaProduce(kind: KafkaTopicKind, messages: Message[]): Promise<void> {
        if (messages.length === 0) return;
        await (this.kafkaProducer as Producer).send({ topic: kafkaTopic(config.kafkaTopicPrefix, kind), messages, acks: -1 });
      },

      /** Creates the architecture's topics that do not exist yet (existing ones are left as they are). */
      kafkaEnsureTopics(): Promise<void> {
        let ensured = topicsEnsured.get(config.kafkaTopicPrefix);
        if (!ensured) {
          ensured = this.kafkaCreateMissingTopics() as Promise<void>;
          ensured.catch(() => topicsEnsured.delete(config.kafkaTopicPrefix));
          topicsEnsured.set(config.kafkaTopicPrefix, ensured);
        }
        return ensured;
      },

      async kafkaCreateMissingTopics(): Promise<void> {
        const admin = (this.kafka as Kafka).admin();
        await admin.connect();
        try {
          const existing = new Set(await admin.listTopics());
          const missing = (Object.keys(KAFKA_TOPICS) as KafkaTopicKind[]).map((kind) => kafkaTopic(config.kafkaTopicPrefix, kind)).filter((t) => !existing.has(t));
          if (missing.length === 0) return;
          await admin.createTopics({
            waitForLeaders: true,
            topics: missing.map((topic) => ({ topic, numPartitions: config.kafkaPartitions, replicationFactor: config.kafkaReplication })),
          });
          this.logger.info("created kafka topics", { topics: missing });
        } finally {
          await admin.disconnect();
        }
      },

      async kafkaConsume(options: KafkaConsumerOptions): Promise<Consumer> {
        const consumer = (this.kafka as Kafka).consumer({
          groupId: consumerGroupId(config.namespace, options.group),
          sessionTimeout: 10_000,
          heartbeatInterval: HEARTBEAT_INTERVAL_MS,
          rebalanceTimeout: 20_000,
          minBytes: options.minBytes ?? 1,
          maxWaitTimeInMs: options.maxWaitTimeInMs ?? 200,
          retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: 10_000 },
        });
        if (options.onGroupJoin) {
          const onGroupJoin = options.onGroupJoin;
          consumer.on(consumer.events.GROUP_JOIN, (event) => onGroupJoin(event.payload.memberAssignment));
        }
        await consumer.connect();
        // A new group starts at the oldest record: a first deployment must not skip retained data.
        await consumer.subscribe({ topics: options.topics.map((kind) => kafkaTopic(config.kafkaTopicPrefix, kind)), fromBeginning: true });
        const autoCommit = options.autoCommit ?? true;
        await consumer.run({
          autoCommit,
          autoCommitThreshold: 1,
          partitionsConsumedConcurrently: options.partitionsConsumedConcurrently ?? 3,
          eachBatchAutoResolve: false,
          eachBatch: async (payload) => {
            if (payload.batch.messages.length === 0) return;
            // kafkajs heartbeats between batches only: a handler held up by its database (the
            // historian loading rollup hours on a busy FerretDB took up to 31 s, or MongoDB away) got
            // this member dropped from the group after sessionTimeout, and every rejoin set off a
            // rebalance of all members. Heartbeat while it runs (a rebalance is still only joined
            // once the batch is done, within rebalanceTimeout).
            const heartbeats = setInterval(() => payload.heartbeat().catch(() => undefined), HEARTBEAT_INTERVAL_MS);
            try {
              await options.eachBatch(payload);
            } finally {
              clearInterval(heartbeats);
            }
            payload.resolveOffset(payload.batch.lastOffset());
            if (autoCommit) await payload.commitOffsetsIfNecessary();
          },
        });
        (this.kafkaConsumers as Consumer[]).push(consumer);
        return consumer;
      },

      async healthCheckKafka(): Promise<HealthCheck> {
        return probe(async () => {
          const admin = (this.kafka as Kafka).admin();
          await admin.connect();
          try {
            await admin.describeCluster();
          } finally {
            await admin.disconnect();
          }
        });
      },
    },

    created() {
      this.kafka = createKafkaClient(config, `${config.namespace}-${this.name}-${this.broker.nodeID}`, this.logger, "kafka");
      // An idempotent producer retries without limit: while Kafka is away, sends wait (and MQTT
      // messages stay unacknowledged) instead of failing and being dropped.
      this.kafkaProducer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 5,
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner,
        retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5_000 },
      });
      this.kafkaConsumers = [] as Consumer[];
    },

    async started() {
      await this.kafkaEnsureTopics();
      await (this.kafkaProducer as Producer).connect();
    },

    async stopped() {
      await Promise.allSettled((this.kafkaConsumers as Consumer[]).map((c) => c.disconnect()));
      await (this.kafkaProducer as Producer).disconnect();
    },
  };
}
