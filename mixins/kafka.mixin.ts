import type { ServiceSchema } from "moleculer";
import { Kafka, logLevel as KafkaLogLevel, type Consumer, type EachBatchPayload, type Message, type Producer } from "kafkajs";
import type { PlantwireConfig } from "../src/shared/config.ts";
import { probe, type HealthCheck } from "../src/shared/health.ts";

export interface KafkaConsumerOptions {
  /** Suffix of the group id; the full id is `<namespace>.<group>` so test runs never share groups. */
  group: string;
  topics: string[];
  /** Called per partition batch; offsets are committed only after it resolves. */
  eachBatch: (payload: EachBatchPayload) => Promise<void>;
  partitionsConsumedConcurrently?: number;
}

const LOG_METHODS = { [KafkaLogLevel.ERROR]: "error", [KafkaLogLevel.WARN]: "warn", [KafkaLogLevel.INFO]: "info", [KafkaLogLevel.DEBUG]: "debug" } as const;

/**
 * Kafka client for a service: an idempotent producer (acks=all) connected on start, and consumers
 * whose offsets are committed only after the handler finished, so delivery is at least once.
 */
export function kafkaMixin(config: PlantwireConfig): Partial<ServiceSchema> {
  return {
    methods: {
      async kafkaProduce(topic: string, messages: Message[]): Promise<void> {
        if (messages.length === 0) return;
        await (this.kafkaProducer as Producer).send({ topic, messages, acks: -1 });
      },

      async kafkaConsume(options: KafkaConsumerOptions): Promise<Consumer> {
        const consumer = (this.kafka as Kafka).consumer({
          groupId: `${config.namespace}.${options.group}`,
          sessionTimeout: 10_000,
          heartbeatInterval: 1_000,
          rebalanceTimeout: 20_000,
          maxWaitTimeInMs: 200,
          retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: 10_000 },
        });
        await consumer.connect();
        await consumer.subscribe({ topics: options.topics, fromBeginning: true });
        await consumer.run({
          autoCommitThreshold: 1,
          partitionsConsumedConcurrently: options.partitionsConsumedConcurrently ?? 3,
          eachBatchAutoResolve: false,
          eachBatch: async (payload) => {
            if (payload.batch.messages.length === 0) return;
            await options.eachBatch(payload);
            payload.resolveOffset(payload.batch.lastOffset());
            await payload.commitOffsetsIfNecessary();
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
      const logger = this.logger;
      this.kafka = new Kafka({
        clientId: `${config.namespace}-${this.name}-${this.broker.nodeID}`,
        brokers: config.kafkaBrokers,
        connectionTimeout: 3_000,
        requestTimeout: 10_000,
        retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5_000 },
        logLevel: KafkaLogLevel.WARN,
        logCreator: () => (entry) => {
          const method = LOG_METHODS[entry.level as keyof typeof LOG_METHODS] ?? "info";
          logger[method](`kafka: ${entry.log.message}`, { namespace: entry.namespace, ...entry.log });
        },
      });
      this.kafkaProducer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 5, allowAutoTopicCreation: false });
      this.kafkaConsumers = [] as Consumer[];
    },

    async started() {
      await (this.kafkaProducer as Producer).connect();
    },

    async stopped() {
      await Promise.allSettled((this.kafkaConsumers as Consumer[]).map((c) => c.disconnect()));
      await (this.kafkaProducer as Producer).disconnect();
    },
  };
}
