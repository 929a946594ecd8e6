import type { ServiceSchema } from "moleculer";
import { Redis } from "ioredis";
import type { PlantwireConfig } from "../src/shared/config.ts";
import { probe, type HealthCheck } from "../src/shared/health.ts";

/** An ioredis connection as `this.redis`; keys are prefixed with the Moleculer namespace. */
export function redisMixin(config: PlantwireConfig): Partial<ServiceSchema> {
  return {
    methods: {
      redisKey(...parts: string[]): string {
        return [config.namespace, ...parts].join(":");
      },
      async healthCheckRedis(): Promise<HealthCheck> {
        return probe(() => (this.redis as Redis).ping());
      },
    },

    created() {
      this.redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 3, enableOfflineQueue: true });
      this.redis.on("error", (err: Error) => this.logger.warn("redis error", { error: err.message }));
    },

    async started() {
      await (this.redis as Redis).connect();
    },

    async stopped() {
      await (this.redis as Redis).quit();
    },
  };
}
