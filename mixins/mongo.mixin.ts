import type { ServiceSchema } from "moleculer";
import { MongoClient, type Db } from "mongodb";
import type { PlantwireConfig } from "../src/shared/config.ts";
import { probe, type HealthCheck } from "../src/shared/health.ts";

/** A MongoDB connection through the official driver; `this.db` is the URL's database. */
export function mongoMixin(config: PlantwireConfig): Partial<ServiceSchema> {
  return {
    methods: {
      async healthCheckMongo(): Promise<HealthCheck> {
        return probe(() => (this.db as Db).command({ ping: 1 }));
      },
    },

    created() {
      this.mongoClient = new MongoClient(config.mongoUrl, { serverSelectionTimeoutMS: 5_000, appName: `plantwire-${this.name}` });
    },

    async started() {
      await (this.mongoClient as MongoClient).connect();
      this.db = (this.mongoClient as MongoClient).db();
    },

    async stopped() {
      await (this.mongoClient as MongoClient).close();
    },
  };
}
