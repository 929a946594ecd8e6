import type { ServiceSchema } from "moleculer";
import type { EachBatchPayload } from "kafkajs";
import { deviceCacheMixin } from "../mixins/device-cache.mixin.ts";
import { healthMixin } from "../mixins/health.mixin.ts";
import { kafkaMixin } from "../mixins/kafka.mixin.ts";
import { LimitChecker } from "../src/alarms/limit-checker.ts";
import type { PlantwireConfig } from "../src/shared/config.ts";
import type { AlarmDocument, AlarmTransition, TelemetryRecord } from "../src/shared/types.ts";

/** Watches the telemetry stream per device and publishes alarm condition transitions to `scada.alarms.v1`. */
export default function createAnomalyDetectorService(config: PlantwireConfig): ServiceSchema {
  return {
    name: "anomaly-detector",
    dependencies: ["alarms"],
    mixins: [deviceCacheMixin(), kafkaMixin(config), healthMixin()],

    actions: {
      stats: {
        handler(): { evaluated: number; transitions: number; activeConditions: number } {
          return { evaluated: this.evaluated, transitions: this.transitions, activeConditions: (this.limits as LimitChecker).activeCount() };
        },
      },
    },

    methods: {
      async evaluateBatch({ batch }: EachBatchPayload): Promise<void> {
        const transitions: AlarmTransition[] = [];
        for (const message of batch.messages) {
          let record: TelemetryRecord;
          try {
            record = JSON.parse(message.value?.toString() ?? "") as TelemetryRecord;
          } catch {
            continue; // The historian dead-letters unreadable records; detection just skips them.
          }
          const tags = await this.lookupDeviceTags(record.device);
          if (!tags) continue;
          this.evaluated++;
          transitions.push(...(this.limits as LimitChecker).evaluate(record, tags));
        }
        this.transitions += transitions.length;
        await this.kafkaProduce("alarms", transitions.map((t) => ({ key: t.device, value: JSON.stringify(t) })));
      },
    },

    created() {
      this.limits = new LimitChecker();
      this.evaluated = 0;
      this.transitions = 0;
    },

    async started() {
      const active: AlarmDocument[] = await this.broker.call("alarms.active");
      (this.limits as LimitChecker).restore(active.map((a) => ({ alarmId: a._id, device: a.device, tag: a.tag, kind: a.kind, limit: a.limit })));
      await this.kafkaConsume({ group: "anomaly-detector", topics: ["telemetry"], eachBatch: (payload: EachBatchPayload) => this.evaluateBatch(payload) });
    },
  };
}
