import type { Context, ServiceSchema } from "moleculer";
import type { EachBatchPayload } from "kafkajs";
import type { AnyBulkWriteOperation, Collection, Db, Filter } from "mongodb";
import { healthMixin } from "../mixins/health.mixin.ts";
import { kafkaMixin } from "../mixins/kafka.mixin.ts";
import { mongoMixin } from "../mixins/mongo.mixin.ts";
import type { PlantwireConfig } from "../src/shared/config.ts";
import { alarmWrite } from "../src/alarms/alarm-store.ts";
import type { AlarmDocument, AlarmTransition } from "../src/shared/types.ts";

export interface ListAlarmsParams {
  state?: "active" | "cleared";
  device?: string;
  limit?: number;
  offset?: number;
}

/** Stores alarm transitions from `scada.alarms.v1` in MongoDB and answers alarm queries. */
export default function createAlarmsService(config: PlantwireConfig): ServiceSchema {
  return {
    name: "alarms",
    mixins: [kafkaMixin(config), mongoMixin(config), healthMixin()],

    settings: { rest: "/" },

    actions: {
      list: {
        rest: "GET /alarms",
        params: {
          state: { type: "enum", values: ["active", "cleared"], optional: true },
          device: { type: "string", pattern: /^[A-Za-z0-9_.-]{1,64}$/, optional: true },
          limit: { type: "number", integer: true, min: 1, max: 1000, optional: true, convert: true },
          offset: { type: "number", integer: true, min: 0, optional: true, convert: true },
        },
        async handler(ctx: Context<ListAlarmsParams>): Promise<{ total: number; alarms: AlarmDocument[] }> {
          const { state, device, limit = 100, offset = 0 } = ctx.params;
          const filter: Filter<AlarmDocument> = {};
          if (state) filter.state = state;
          if (device) filter.device = device;
          const collection = this.alarms as Collection<AlarmDocument>;
          const [total, alarms] = await Promise.all([
            collection.countDocuments(filter),
            collection.find(filter).sort({ activatedAt: -1 }).skip(offset).limit(limit).toArray(),
          ]);
          return { total, alarms };
        },
      },

      active: {
        async handler(): Promise<AlarmDocument[]> {
          return (this.alarms as Collection<AlarmDocument>).find({ state: "active" }).toArray();
        },
      },
    },

    methods: {
      async storeTransitions({ batch }: EachBatchPayload): Promise<void> {
        const operations: AnyBulkWriteOperation<AlarmDocument>[] = [];
        for (const message of batch.messages) {
          try {
            operations.push(alarmWrite(JSON.parse(message.value?.toString() ?? "") as AlarmTransition));
          } catch (err) {
            this.logger.error("unreadable alarm transition skipped", { partition: batch.partition, offset: message.offset, error: (err as Error).message });
          }
        }
        // Ordered: an activation and its clearing in one batch must apply in that order.
        if (operations.length > 0) await (this.alarms as Collection<AlarmDocument>).bulkWrite(operations, { ordered: true });
      },
    },

    async started() {
      this.alarms = (this.db as Db).collection<AlarmDocument>("alarms");
      await this.alarms.createIndex({ state: 1, activatedAt: -1 });
      await this.alarms.createIndex({ device: 1, activatedAt: -1 });
      await this.kafkaConsume({ group: "alarms", topics: ["alarms"], eachBatch: (payload: EachBatchPayload) => this.storeTransitions(payload) });
    },
  };
}
