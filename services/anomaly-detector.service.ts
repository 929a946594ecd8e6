import type { ServiceSchema } from "moleculer";
import type { EachBatchPayload } from "kafkajs";
import { deviceCacheMixin } from "../mixins/device-cache.mixin.ts";
import { healthMixin } from "../mixins/health.mixin.ts";
import { kafkaMixin } from "../mixins/kafka.mixin.ts";
import { ConditionEvaluator, type ConditionSource } from "../src/alarms/condition-evaluator.ts";
import type { PlantwireConfig } from "../src/shared/config.ts";
import { kafkaTopic } from "../src/shared/topics.ts";
import type { AlarmDocument, AlarmTransition, TelemetryRecord } from "../src/shared/types.ts";

/** A device's birth/death as the preprocessor publishes it on `scada.events.v1`. */
interface DeviceStateEvent {
  type: "device.state";
  device: string;
  state: "online" | "offline";
  ts: number;
}

/** How often silent devices are looked for (communication loss). */
const SILENCE_CHECK_MS = 1_000;

/** Watches the telemetry stream per device and publishes alarm condition transitions to `scada.alarms.v1`. */
export default function createAnomalyDetectorService(config: PlantwireConfig): ServiceSchema {
  const telemetryTopic = kafkaTopic(config.kafkaTopicPrefix, "telemetry");
  const eventsTopic = kafkaTopic(config.kafkaTopicPrefix, "events");
  return {
    name: "anomaly-detector",
    dependencies: ["alarms"],
    mixins: [deviceCacheMixin(), kafkaMixin(config), healthMixin()],

    actions: {
      stats: {
        handler(): { evaluated: number; transitions: number; activeConditions: number; devices: number } {
          const conditions = this.conditions as ConditionEvaluator;
          return { evaluated: this.evaluated, transitions: this.transitions, activeConditions: conditions.activeCount(), devices: conditions.devices().length };
        },
      },
    },

    methods: {
      async evaluateBatch({ batch }: EachBatchPayload): Promise<void> {
        if (batch.topic === eventsTopic) return this.applyDeviceEvents(batch.messages.map((m) => m.value?.toString() ?? ""));
        const transitions: AlarmTransition[] = [];
        const partitions = this.devicePartitions as Map<string, number>;
        for (const message of batch.messages) {
          let record: TelemetryRecord;
          try {
            record = JSON.parse(message.value?.toString() ?? "") as TelemetryRecord;
          } catch {
            continue; // The historian dead-letters unreadable records; detection just skips them.
          }
          const tags = await this.lookupDeviceTags(record.device);
          if (!tags) continue;
          partitions.set(record.device, batch.partition);
          this.evaluated++;
          // The seam for learned detectors: every source sees each record; their transitions share one lifecycle.
          for (const source of this.conditionSources as ConditionSource[]) transitions.push(...source.evaluate(record, tags, Date.now()));
        }
        await this.publishTransitions(transitions);
      },

      async applyDeviceEvents(values: string[]): Promise<void> {
        const transitions: AlarmTransition[] = [];
        for (const value of values) {
          let event: DeviceStateEvent;
          try {
            event = JSON.parse(value) as DeviceStateEvent;
          } catch {
            continue;
          }
          if (event?.type !== "device.state" || (event.state !== "online" && event.state !== "offline")) continue;
          // Only devices whose telemetry this replica watches: the owner of their partition judges them.
          transitions.push(...(this.conditions as ConditionEvaluator).deviceState(event.device, event.state, Date.now()));
        }
        await this.publishTransitions(transitions);
      },

      async checkSilence(): Promise<void> {
        try {
          await this.publishTransitions((this.conditions as ConditionEvaluator).tick(Date.now()));
        } catch (err) {
          this.logger.warn("communication-loss check failed", { error: (err as Error).message });
        }
      },

      async publishTransitions(transitions: AlarmTransition[]): Promise<void> {
        this.transitions += transitions.length;
        await this.kafkaProduce("alarms", transitions.map((t) => ({ key: t.device, value: JSON.stringify(t) })));
      },

      /** After a rebalance: forget devices whose partitions moved away, and do not count the pause as silence. */
      partitionsAssigned(assignment: Record<string, number[]>): void {
        const owned = new Set(assignment[telemetryTopic] ?? []);
        const conditions = this.conditions as ConditionEvaluator;
        const partitions = this.devicePartitions as Map<string, number>;
        for (const [device, partition] of partitions) {
          if (owned.has(partition)) continue;
          partitions.delete(device);
          conditions.forget(device);
        }
        conditions.resetSilence(Date.now());
      },
    },

    created() {
      this.conditions = new ConditionEvaluator();
      // Learned detectors (src/anomaly) are added to this list once they emit AlarmTransitions of kind "anomaly".
      this.conditionSources = [this.conditions] satisfies ConditionSource[];
      this.devicePartitions = new Map<string, number>();
      this.evaluated = 0;
      this.transitions = 0;
    },

    async started() {
      const active: AlarmDocument[] = await this.broker.call("alarms.active");
      (this.conditions as ConditionEvaluator).restore(active.map((a) => ({ device: a.device, tag: a.tag, kind: a.kind, suppressed: a.suppressed })));
      await this.kafkaConsume({
        group: "anomaly-detector",
        topics: ["telemetry", "events"],
        eachBatch: (payload: EachBatchPayload) => this.evaluateBatch(payload),
        onGroupJoin: (assignment: Record<string, number[]>) => this.partitionsAssigned(assignment),
      });
      this.silenceTimer = setInterval(() => void this.checkSilence(), SILENCE_CHECK_MS);
    },

    async stopped() {
      clearInterval(this.silenceTimer);
    },
  };
}
