import type { Admin, Kafka } from "kafkajs";
import { Errors, type ServiceSchema } from "moleculer";
import { ConsumerLagReader, type KafkaLagReport } from "../src/kafka/consumer-lag.ts";
import type { PlantwireConfig } from "../src/shared/config.ts";
import { createKafkaClient } from "./kafka.mixin.ts";

/** Answers are reused this long: every dashboard viewer polls, Kafka is asked at most once per window. */
const CACHE_MS = 2_000;
/** Below the gateway's 5 s request timeout, so an unreachable Kafka gets a 503 naming it rather than a timeout. */
const READ_DEADLINE_MS = 3_500;

/** For the gateway: `GET /api/system/kafka`, the consumer lag of plantwire's consumer groups (src/kafka/consumer-lag.ts). */
export function kafkaLagMixin(config: PlantwireConfig): Partial<ServiceSchema> {
  return {
    actions: {
      kafkaLag: {
        rest: "GET /system/kafka",
        role: "viewer",
        openapi: {
          summary: "Kafka consumer lag per consumer group and topic (committed and end offsets per partition), and each topic's end offsets; 503 when Kafka is unreachable",
          description: "Read with the Kafka admin API and cached for 2 s. The live stream's groups never commit offsets, so their lag is null.",
        },
        params: {},
        async handler(): Promise<KafkaLagReport> {
          let timer: NodeJS.Timeout | undefined;
          const deadline = new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer within ${READ_DEADLINE_MS} ms`)), READ_DEADLINE_MS);
          });
          try {
            return await Promise.race([(this.kafkaLagReader as ConsumerLagReader).read(), deadline]);
          } catch (err) {
            // The next request connects afresh: a broken admin connection must not stick.
            void this.kafkaLagDisconnect();
            throw new Errors.MoleculerError(`Kafka is unreachable (${config.kafkaBrokers.join(", ")}): ${(err as Error).message}`, 503, "KAFKA_UNAVAILABLE");
          } finally {
            clearTimeout(timer);
          }
        },
      },
    },

    methods: {
      /** One admin connection, opened on the first request and kept while it works. */
      kafkaLagAdmin(): Promise<Admin> {
        if (!this.kafkaLagAdminReady) {
          // Few retries: an operator's screen wants "unreachable" quickly, not after a minute of backoff.
          const admin = (this.kafkaLagClient as Kafka).admin({ retry: { retries: 1, initialRetryTime: 200, maxRetryTime: 1_000 } });
          this.kafkaLagAdminReady = admin.connect().then(() => admin);
        }
        return this.kafkaLagAdminReady as Promise<Admin>;
      },

      async kafkaLagDisconnect(): Promise<void> {
        const ready = this.kafkaLagAdminReady as Promise<Admin> | null;
        this.kafkaLagAdminReady = null;
        await ready?.then((admin) => admin.disconnect()).catch(() => undefined);
      },
    },

    created() {
      this.kafkaLagClient = createKafkaClient(config, `${config.namespace}-${this.name}-lag-${this.broker.nodeID}`, this.logger, "kafka (consumer lag)");
      this.kafkaLagAdminReady = null;
      this.kafkaLagReader = new ConsumerLagReader(() => this.kafkaLagAdmin(), { namespace: config.namespace, topicPrefix: config.kafkaTopicPrefix, cacheMs: CACHE_MS });
    },

    async stopped() {
      await this.kafkaLagDisconnect();
    },
  };
}
