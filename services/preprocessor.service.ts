import type { ServiceSchema } from "moleculer";
import { deviceCacheMixin } from "../mixins/device-cache.mixin.ts";
import { healthMixin } from "../mixins/health.mixin.ts";
import { kafkaMixin } from "../mixins/kafka.mixin.ts";
import { mqttSubscriberMixin } from "../mixins/mqtt.mixin.ts";
import { deadLetter } from "../src/ingest/dead-letter.ts";
import { normalizeState, normalizeTelemetry, parseJsonObject } from "../src/ingest/telemetry.ts";
import type { PlantwireConfig } from "../src/shared/config.ts";
import { kindFilter, parseDeviceTopic, type ParsedTopic } from "../src/shared/topics.ts";
import type { DeviceDocument } from "../src/shared/types.ts";

export interface PreprocessorStats {
  received: number;
  forwarded: number;
  deadLettered: number;
  deadLetterReasons: Record<string, number>;
}

/** Counts dead letters by the reason's first words, so hostile input cannot grow the map without bound. */
function reasonKey(reason: string): string {
  return reason.split(/[:"(]/)[0].trim().slice(0, 60);
}

/** MQTT → validate → normalize → enrich (device registry) → Kafka, keyed by device; rejects to the dead-letter topic. */
export default function createPreprocessorService(config: PlantwireConfig): ServiceSchema {
  return {
    name: "preprocessor",
    mixins: [
      deviceCacheMixin(),
      kafkaMixin(config),
      mqttSubscriberMixin(config, (service) => ({
        clientId: `${config.namespace}-preprocessor-${config.nodeId ?? "0"}`,
        subscriptions: [`$share/${config.namespace}-preprocessor/${kindFilter(config.topicRoot, "state")}`, `$share/${config.namespace}-preprocessor/${kindFilter(config.topicRoot, "telemetry")}`],
        onMessage: (topic, payload) => (service.handleMqttMessage as (t: string, p: Buffer) => Promise<void>)(topic, payload),
      })),
      healthMixin(),
    ],

    actions: {
      stats: {
        handler(): PreprocessorStats {
          return this.stats as PreprocessorStats;
        },
      },
    },

    methods: {
      async handleMqttMessage(topic: string, payload: Buffer): Promise<void> {
        const stats = this.stats as PreprocessorStats;
        stats.received++;
        const parsedTopic = parseDeviceTopic(config.topicRoot, topic);
        if (!parsedTopic) return this.reject(topic, "topic does not match {root}/{site}/{area}/{line}/{device}/{kind}", payload);
        const json = parseJsonObject(payload, config.maxPayloadBytes);
        if (!json.ok) return this.reject(topic, json.reason, payload);
        if (parsedTopic.kind === "state") return this.handleState(topic, parsedTopic, json.value, payload);
        return this.handleTelemetry(topic, parsedTopic, json.value, payload);
      },

      async handleTelemetry(topic: string, address: ParsedTopic, data: Record<string, unknown>, payload: Buffer): Promise<void> {
        const tags = await this.lookupDeviceTags(address.device);
        if (!tags) return this.reject(topic, `unknown device "${address.device}": no birth message registered it`, payload);
        const record = normalizeTelemetry(data, address, tags, Date.now());
        if (!record.ok) return this.reject(topic, record.reason, payload);
        await this.kafkaProduce("telemetry", [{ key: address.device, value: JSON.stringify(record.value) }]);
        (this.stats as PreprocessorStats).forwarded++;
      },

      async handleState(topic: string, address: ParsedTopic, data: Record<string, unknown>, payload: Buffer): Promise<void> {
        // An empty retained message clears the topic: nothing to register.
        if (payload.length === 0) return;
        const state = normalizeState(data);
        if (!state.ok) return this.reject(topic, state.reason, payload);
        const { site, area, line, device } = address;
        const registered: DeviceDocument = await this.broker.call("devices.register", { site, area, line, device, ...state.value });
        this.rememberDeviceTags(device, registered.tags);
        const event = { type: "device.state", device, site, area, line, state: state.value.state, ts: state.value.ts };
        await this.kafkaProduce("events", [{ key: device, value: JSON.stringify(event) }]);
        (this.stats as PreprocessorStats).forwarded++;
      },

      async reject(topic: string, reason: string, payload: Buffer): Promise<void> {
        const record = deadLetter(topic, reason, payload, Date.now());
        await this.kafkaProduce("deadletter", [{ key: topic, value: JSON.stringify(record) }]);
        const stats = this.stats as PreprocessorStats;
        stats.deadLettered++;
        const key = reasonKey(reason);
        stats.deadLetterReasons[key] = (stats.deadLetterReasons[key] ?? 0) + 1;
        this.logger.warn("dead-lettered MQTT message", { topic, reason });
      },
    },

    created() {
      this.stats = { received: 0, forwarded: 0, deadLettered: 0, deadLetterReasons: {} } satisfies PreprocessorStats;
    },
  };
}
