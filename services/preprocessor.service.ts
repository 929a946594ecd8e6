import type { Context, ServiceSchema } from "moleculer";
import type { MqttClient } from "mqtt";
import { deviceCacheMixin } from "../mixins/device-cache.mixin.ts";
import { healthMixin } from "../mixins/health.mixin.ts";
import { kafkaMixin } from "../mixins/kafka.mixin.ts";
import { mqttSubscriberMixin } from "../mixins/mqtt.mixin.ts";
import { mqttSessionAdoptionMixin } from "../mixins/mqtt-session-adoption.mixin.ts";
import { serviceUsername } from "../src/mqtt-auth/accounts.ts";
import { deadLetter } from "../src/ingest/dead-letter.ts";
import { normalizeState, normalizeTelemetry, parseJsonObject } from "../src/ingest/telemetry.ts";
import type { PlantwireConfig } from "../src/shared/config.ts";
import { kindFilter, parseDeviceTopic, type ParsedTopic } from "../src/shared/topics.ts";
import type { DeadLetterCode, DeadLetterRecord, DeviceDocument, IngestOutcome } from "../src/shared/types.ts";

export interface PreprocessorStats {
  received: number;
  forwarded: number;
  deadLettered: number;
  deadLetterReasons: Record<string, number>;
  /** Dead letters run through validation again (`replay`), whatever the outcome. */
  replayed: number;
}

/** Counts dead letters by the reason's first words, so hostile input cannot grow the map without bound. */
function reasonKey(reason: string): string {
  return reason.split(/[:"(]/)[0].trim().slice(0, 60);
}

function refuse(code: DeadLetterCode, reason: string): IngestOutcome {
  return { ok: false, code, reason };
}

/** MQTT → validate → normalize → enrich (device registry) → Kafka, keyed by device; rejects to the dead-letter topic. */
export default function createPreprocessorService(config: PlantwireConfig): ServiceSchema {
  /** Each replica's persistent session is named after its node id (a survivor adopts a crashed one's). */
  const mqttClientId = (nodeId: string) => `${config.namespace}-preprocessor-${nodeId}`;
  const subscriptions = [`$share/${config.namespace}-preprocessor/${kindFilter(config.topicRoot, "state")}`, `$share/${config.namespace}-preprocessor/${kindFilter(config.topicRoot, "telemetry")}`];
  return {
    name: "preprocessor",
    // Moleculer starts mixins last to first and stops them first to last: Kafka is connected before
    // the MQTT session (whose backlog arrives at once after a restart) and closed after it.
    mixins: [
      deviceCacheMixin(),
      mqttSubscriberMixin(config, (service) => ({
        clientId: mqttClientId(config.nodeId ?? "0"),
        username: serviceUsername(config.namespace, "preprocessor"),
        subscriptions,
        onMessage: (topic, payload) => (service.handleMqttMessage as (t: string, p: Buffer) => Promise<void>)(topic, payload),
      })),
      mqttSessionAdoptionMixin(config, (service) => ({
        clientIdOf: mqttClientId,
        subscriptions,
        ownClient: () => service.mqttClient as MqttClient | undefined,
        onMessage: (topic, payload) => (service.handleMqttMessage as (t: string, p: Buffer) => Promise<void>)(topic, payload),
      })),
      kafkaMixin(config),
      healthMixin(),
    ],

    actions: {
      stats: {
        handler(): PreprocessorStats {
          return this.stats as PreprocessorStats;
        },
      },

      /**
       * Runs a message through the same validation path as the MQTT subscription (the dead-letters
       * service replays with it). A message still invalid is not dead-lettered again: the answer
       * carries the reason, and the caller keeps the original dead letter.
       */
      replay: {
        visibility: "public",
        params: {
          topic: { type: "string", min: 1, max: 1024 },
          payload: { type: "string", max: 16 * 1024 * 1024 },
          encoding: { type: "enum", values: ["utf8", "base64"] },
        },
        async handler(ctx: Context<{ topic: string; payload: string; encoding: "utf8" | "base64" }>): Promise<IngestOutcome> {
          const outcome = (await this.ingest(ctx.params.topic, Buffer.from(ctx.params.payload, ctx.params.encoding))) as IngestOutcome;
          (this.stats as PreprocessorStats).replayed++;
          this.logger.info("replayed a dead letter", { topic: ctx.params.topic, ok: outcome.ok, reason: outcome.ok ? undefined : outcome.reason });
          return outcome;
        },
      },
    },

    methods: {
      async handleMqttMessage(topic: string, payload: Buffer): Promise<void> {
        (this.stats as PreprocessorStats).received++;
        const outcome = (await this.ingest(topic, payload)) as IngestOutcome;
        if (!outcome.ok) await this.reject(topic, outcome, payload);
      },

      /** The one validation path of a message, whether it came from MQTT or is a dead letter replayed. */
      async ingest(topic: string, payload: Buffer): Promise<IngestOutcome> {
        const parsedTopic = parseDeviceTopic(config.topicRoot, topic);
        if (!parsedTopic) return refuse("invalid-topic", "topic does not match {root}/{site}/{area}/{line}/{device}/{kind}");
        // An empty retained message clears a state topic: nothing to register (and not a dead letter).
        if (parsedTopic.kind === "state" && payload.length === 0) return { ok: true };
        const json = parseJsonObject(payload, config.maxPayloadBytes);
        if (!json.ok) return refuse("invalid-payload", json.reason);
        if (parsedTopic.kind === "state") return this.handleState(parsedTopic, json.value);
        return this.handleTelemetry(parsedTopic, json.value);
      },

      async handleTelemetry(address: ParsedTopic, data: Record<string, unknown>): Promise<IngestOutcome> {
        const tags = await this.lookupDeviceTags(address.device);
        if (!tags) return refuse("unknown-device", `unknown device "${address.device}": no birth message registered it`);
        const record = normalizeTelemetry(data, address, tags, Date.now());
        if (!record.ok) return refuse("invalid-telemetry", record.reason);
        await this.kafkaProduce("telemetry", [{ key: address.device, value: JSON.stringify(record.value) }]);
        (this.stats as PreprocessorStats).forwarded++;
        return { ok: true };
      },

      async handleState(address: ParsedTopic, data: Record<string, unknown>): Promise<IngestOutcome> {
        const state = normalizeState(data);
        if (!state.ok) return refuse("invalid-state", state.reason);
        const { site, area, line, device } = address;
        const registered: DeviceDocument = await this.broker.call("devices.register", { site, area, line, device, ...state.value });
        this.rememberDeviceTags(device, registered.tags);
        const event = { type: "device.state", device, site, area, line, state: state.value.state, ts: state.value.ts };
        await this.kafkaProduce("events", [{ key: device, value: JSON.stringify(event) }]);
        (this.stats as PreprocessorStats).forwarded++;
        return { ok: true };
      },

      async reject(topic: string, outcome: { code: DeadLetterCode; reason: string }, payload: Buffer): Promise<void> {
        const record: DeadLetterRecord = { ...deadLetter(topic, outcome.reason, payload, Date.now()), code: outcome.code };
        await this.kafkaProduce("deadletter", [{ key: topic, value: JSON.stringify(record) }]);
        const stats = this.stats as PreprocessorStats;
        stats.deadLettered++;
        const key = reasonKey(outcome.reason);
        stats.deadLetterReasons[key] = (stats.deadLetterReasons[key] ?? 0) + 1;
        this.logger.warn("dead-lettered MQTT message", { topic, code: outcome.code, reason: outcome.reason });
      },
    },

    created() {
      this.stats = { received: 0, forwarded: 0, deadLettered: 0, deadLetterReasons: {}, replayed: 0 } satisfies PreprocessorStats;
    },
  };
}
