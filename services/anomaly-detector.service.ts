import { Errors, type Context, type ServiceSchema } from "moleculer";
import type { Consumer, EachBatchPayload } from "kafkajs";
import type { Collection, Db } from "mongodb";
import { deviceCacheMixin } from "../mixins/device-cache.mixin.ts";
import { healthMixin } from "../mixins/health.mixin.ts";
import { kafkaMixin } from "../mixins/kafka.mixin.ts";
import { mongoMixin } from "../mixins/mongo.mixin.ts";
import { AnomalyConditionSource, type AnomalyCheckpoint } from "../src/alarms/anomaly-condition.ts";
import { ConditionEvaluator, type ConditionSource } from "../src/alarms/condition-evaluator.ts";
import { LEVEL_PRESETS, type DetectorSpec } from "../src/anomaly/index.ts";
import type { PlantwireConfig } from "../src/shared/config.ts";
import { kafkaTopic } from "../src/shared/topics.ts";
import type { AlarmDocument, AlarmTransition, DeviceAnomalyScore, TelemetryRecord } from "../src/shared/types.ts";

/** A device's birth/death as the preprocessor publishes it on `scada.events.v1`. */
interface DeviceStateEvent {
  type: "device.state";
  device: string;
  state: "online" | "offline";
  ts: number;
}

/** How often silent devices are looked for (communication loss). */
const SILENCE_CHECK_MS = 1_000;
/** One document per device, `_id` = device id: read and replaced by `_id` only. */
const CHECKPOINTS = "anomaly_checkpoints";
const ID = { type: "string", pattern: /^[A-Za-z0-9_.-]{1,64}$/ } as const;

export interface AnomalyDetectorStats {
  evaluated: number;
  transitions: number;
  activeConditions: number;
  devices: number;
  anomaly: {
    detector: string;
    threshold: number;
    devices: number;
    warmingUp: number;
    /** Devices continued from a checkpoint since this instance started. */
    restored: number;
    active: number;
    checkpointsWritten: number;
    checkpointErrors: number;
    /** Duration of the latest checkpoint round, ms. */
    lastCheckpointMs: number | null;
  };
}

/** The configured level-mode preset with the configured warm-up on every member. */
export function anomalySpec(config: PlantwireConfig): DetectorSpec {
  const withWarmup = (spec: DetectorSpec): DetectorSpec =>
    spec.kind === "ensemble"
      ? { ...spec, members: (spec.members ?? []).map(withWarmup) }
      : ({ ...spec, options: { ...spec.options, warmup: config.anomaly.warmupSamples } } as DetectorSpec);
  return withWarmup(LEVEL_PRESETS[config.anomaly.detector]);
}

/** Watches the telemetry stream per device and publishes alarm condition transitions to `scada.alarms.v1`. */
export default function createAnomalyDetectorService(config: PlantwireConfig): ServiceSchema {
  const telemetryTopic = kafkaTopic(config.kafkaTopicPrefix, "telemetry");
  const eventsTopic = kafkaTopic(config.kafkaTopicPrefix, "events");
  return {
    name: "anomaly-detector",
    dependencies: ["alarms"],
    mixins: [deviceCacheMixin(), kafkaMixin(config), mongoMixin(config), healthMixin()],
    settings: { rest: "/" },

    actions: {
      stats: {
        handler(): AnomalyDetectorStats {
          const conditions = this.conditions as ConditionEvaluator;
          const scores = (this.anomaly as AnomalyConditionSource).scores();
          return {
            evaluated: this.evaluated,
            transitions: this.transitions,
            activeConditions: conditions.activeCount() + scores.filter((s) => s.active).length,
            devices: conditions.devices().length,
            anomaly: {
              detector: config.anomaly.detector,
              threshold: config.anomaly.threshold,
              devices: scores.length,
              warmingUp: scores.filter((s) => s.warmingUp).length,
              restored: this.restoredDevices,
              active: scores.filter((s) => s.active).length,
              checkpointsWritten: this.checkpointsWritten,
              checkpointErrors: this.checkpointErrors,
              lastCheckpointMs: this.lastCheckpointMs,
            },
          };
        },
      },

      scores: {
        openapi: { summary: "Current anomaly score of every device this anomaly-detector instance watches" },
        handler(): DeviceAnomalyScore[] {
          return (this.anomaly as AnomalyConditionSource).scores();
        },
      },

      deviceScore: {
        rest: "GET /devices/:id/anomaly",
        role: "viewer",
        openapi: { summary: "A device's current anomaly score, the tags that explain it (value, expected, robust z) and its detector's state" },
        params: { id: ID },
        async handler(ctx: Context<{ id: string }>): Promise<DeviceAnomalyScore & { source: "live" | "checkpoint" }> {
          const live = (this.anomaly as AnomalyConditionSource).score(ctx.params.id);
          if (live) return { ...live, source: "live" };
          // Another replica owns the device's partition: its latest checkpoint is the best this one knows.
          const saved = await (this.checkpoints as Collection<AnomalyCheckpoint>).findOne({ _id: String(ctx.params.id) });
          if (saved) {
            const score = saved.last?.score ?? 0;
            return { device: saved._id, score, active: score >= config.anomaly.threshold, suppressed: false, threshold: config.anomaly.threshold, warmingUp: saved.last?.warmingUp ?? true, samples: saved.samples, runState: saved.runState, restored: false, tags: saved.tags, last: saved.last, source: "checkpoint" };
          }
          await ctx.call("devices.get", { id: ctx.params.id }); // 404 for an unknown device
          throw new Errors.MoleculerClientError(`device "${ctx.params.id}" has no anomaly score yet (no telemetry evaluated)`, 404, "NO_ANOMALY_SCORE", { id: ctx.params.id });
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
          if (!(this.anomaly as AnomalyConditionSource).has(record.device)) await this.restoreCheckpoint(record.device);
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

      /** After a rebalance: checkpoint and forget devices whose partitions moved away, and do not count the pause as silence. */
      partitionsAssigned(assignment: Record<string, number[]>): void {
        const owned = new Set(assignment[telemetryTopic] ?? []);
        const conditions = this.conditions as ConditionEvaluator;
        const anomaly = this.anomaly as AnomalyConditionSource;
        const partitions = this.devicePartitions as Map<string, number>;
        const leaving: AnomalyCheckpoint[] = [];
        for (const [device, partition] of partitions) {
          if (owned.has(partition)) continue;
          const checkpoint = anomaly.checkpoint(device, Date.now());
          if (checkpoint) leaving.push(checkpoint);
          partitions.delete(device);
          conditions.forget(device);
          anomaly.forget(device);
        }
        conditions.resetSilence(Date.now());
        if (leaving.length > 0) void this.writeCheckpoints(leaving);
      },

      /** Continues a device's detector from its checkpoint, if it has one (first record on this replica). */
      async restoreCheckpoint(device: string): Promise<void> {
        const saved = await (this.checkpoints as Collection<AnomalyCheckpoint>).findOne({ _id: device });
        if (!saved) return;
        try {
          (this.anomaly as AnomalyConditionSource).restoreDevice(saved);
          this.restoredDevices++;
        } catch (err) {
          // An unreadable checkpoint (e.g. from an incompatible version) costs a warm-up, nothing more.
          this.logger.warn("anomaly checkpoint not restored; the detector learns afresh", { device, error: (err as Error).message });
        }
      },

      /** Checkpoints every device whose detector changed since its last checkpoint. */
      async checkpointDirty(): Promise<void> {
        const anomaly = this.anomaly as AnomalyConditionSource;
        const now = Date.now();
        const checkpoints = anomaly.dirtyDevices().map((d) => anomaly.checkpoint(d, now)).filter((c): c is AnomalyCheckpoint => c !== null);
        await this.writeCheckpoints(checkpoints);
      },

      async writeCheckpoints(checkpoints: AnomalyCheckpoint[]): Promise<void> {
        if (checkpoints.length === 0) return;
        const started = performance.now();
        try {
          // One round trip; FerretDB still pays its update cost per document, hence periodic, not per record.
          await (this.checkpoints as Collection<AnomalyCheckpoint>).bulkWrite(
            checkpoints.map((c) => ({ replaceOne: { filter: { _id: c._id }, replacement: c, upsert: true } })),
            { ordered: false },
          );
          this.checkpointsWritten += checkpoints.length;
          this.lastCheckpointMs = Math.round(performance.now() - started);
        } catch (err) {
          this.checkpointErrors++;
          for (const c of checkpoints) (this.anomaly as AnomalyConditionSource).markDirty(c._id);
          this.logger.warn("anomaly checkpoint failed; retried at the next interval", { devices: checkpoints.length, error: (err as Error).message });
        }
      },
    },

    created() {
      this.conditions = new ConditionEvaluator();
      const { threshold, onDelayMs, offDelayMs, settleMs } = config.anomaly;
      this.anomaly = new AnomalyConditionSource({ spec: anomalySpec(config), threshold, onDelayMs, offDelayMs, settleMs });
      this.conditionSources = [this.conditions, this.anomaly] satisfies ConditionSource[];
      this.devicePartitions = new Map<string, number>();
      this.evaluated = 0;
      this.transitions = 0;
      this.restoredDevices = 0;
      this.checkpointsWritten = 0;
      this.checkpointErrors = 0;
      this.lastCheckpointMs = null;
    },

    async started() {
      this.checkpoints = (this.db as Db).collection<AnomalyCheckpoint>(CHECKPOINTS);
      const active: AlarmDocument[] = await this.broker.call("alarms.active");
      const restored = active.map((a) => ({ device: a.device, tag: a.tag, kind: a.kind, suppressed: a.suppressed }));
      (this.conditions as ConditionEvaluator).restore(restored.filter((a) => a.kind !== "anomaly"));
      (this.anomaly as AnomalyConditionSource).restoreActive(restored);
      const consumer: Consumer = await this.kafkaConsume({
        group: "anomaly-detector",
        topics: ["telemetry", "events"],
        eachBatch: (payload: EachBatchPayload) => this.evaluateBatch(payload),
        onGroupJoin: (assignment: Record<string, number[]>) => this.partitionsAssigned(assignment),
      });
      this.consumer = consumer;
      // Partitions may be about to move: save what this replica learnt so the next owner continues from it.
      consumer.on(consumer.events.REBALANCING, () => void this.checkpointDirty());
      this.silenceTimer = setInterval(() => void this.checkSilence(), SILENCE_CHECK_MS);
      this.checkpointTimer = setInterval(() => void this.checkpointDirty(), config.anomaly.checkpointMs);
    },

    async stopped() {
      clearInterval(this.silenceTimer);
      clearInterval(this.checkpointTimer);
      // Stop consuming first (its offsets are committed then), so the last checkpoint has seen every committed record.
      await (this.consumer as Consumer | undefined)?.disconnect();
      await this.checkpointDirty();
    },
  };
}
