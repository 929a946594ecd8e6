import type { ServiceSchema } from "moleculer";
import mqtt, { type IClientOptions, type IPublishPacket, type ISubscriptionMap, type MqttClient } from "mqtt";
import { derivedPassword } from "../src/mqtt-auth/accounts.ts";
import type { PlantwireConfig } from "../src/shared/config.ts";
import type { HealthCheck } from "../src/shared/health.ts";

export interface MqttSubscriberOptions {
  /** Stable client id: with a persistent session the broker keeps queued messages for it. */
  clientId: string;
  /** The MQTT account (src/mqtt-auth/accounts.ts); its password derives from MQTT_SECRET. */
  username: string;
  subscriptions: string[];
  /** Resolves once the message is safely handed on; the PUBACK is sent only then. */
  onMessage: (topic: string, payload: Buffer, packet: IPublishPacket) => Promise<void>;
}

/**
 * Credentials and TLS every plantwire MQTT client shares: the account's password derived from
 * MQTT_SECRET (anonymous without one, for MQTT_AUTH=off). `rejectUnauthorized` is pinned to true:
 * there is deliberately no switch that turns certificate verification off.
 */
function connectionOptions(config: PlantwireConfig, username: string): IClientOptions {
  const credentials = config.mqttSecret === undefined ? {} : { username, password: derivedPassword(config.mqttSecret, username) };
  return { ...credentials, ...config.mqttTls, rejectUnauthorized: true };
}

/**
 * Options of a clean-session MQTT v5 client (PLCs, control): credentials and TLS from the config, a 10 s
 * keepalive so the broker notices a dead peer quickly, reconnect every second.
 */
export function cleanSessionOptions(config: PlantwireConfig, clientId: string, username: string): IClientOptions {
  return {
    clientId,
    protocolVersion: 5,
    clean: true,
    ...connectionOptions(config, username),
    keepalive: 10,
    reconnectPeriod: 1_000,
    connectTimeout: 5_000,
  };
}

/**
 * An MQTT v5 subscriber with QoS 1, a persistent session and acknowledgement after processing:
 * a message is acknowledged to the broker only when `onMessage` resolved, so a crash redelivers it.
 * A resumed session delivers its backlog as soon as it connects: list this mixin BEFORE the mixins
 * `onMessage` needs (Moleculer starts mixins last to first), so they are ready by then.
 */
export function mqttSubscriberMixin(config: PlantwireConfig, options: (service: Record<string, unknown>) => MqttSubscriberOptions): Partial<ServiceSchema> {
  return {
    methods: {
      async healthCheckMqtt(): Promise<HealthCheck> {
        const client = this.mqttClient as MqttClient | undefined;
        if (!client?.connected) return { ok: false, detail: "not connected to the MQTT broker" };
        return this.mqttSubscribed ? { ok: true } : { ok: false, detail: "connected, not subscribed (yet) on this connection" };
      },
    },

    async started() {
      const { clientId, username, subscriptions, onMessage } = options(this);
      const client = mqtt.connect(config.mqttUrl, {
        clientId,
        protocolVersion: 5,
        clean: false,
        // Kept while the subscriber is away (restart, crash): MQTT_SESSION_EXPIRY_S.
        properties: { sessionExpiryInterval: config.mqttSessionExpiryS },
        ...connectionOptions(config, username),
        reconnectPeriod: 1_000,
        connectTimeout: 5_000,
        resubscribe: true,
      });
      this.mqttClient = client;
      client.handleMessage = (packet, done) => {
        onMessage(packet.topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload), packet).then(
          () => done(),
          (err: Error) => {
            // Not acknowledged: the broker redelivers it on the next connection of this session.
            if (this.mqttStopping || this.broker.stopping) {
              this.logger.info("mqtt message left unacknowledged for redelivery after restart", { topic: packet.topic });
              return;
            }
            this.logger.error("mqtt message handling failed; reconnecting for redelivery", { topic: packet.topic, error: err.message });
            client.end(true, () => client.reconnect());
          },
        );
      };
      client.on("error", (err) => this.logger.warn("mqtt client error", { clientId, error: err.message }));
      client.on("offline", () => this.logger.warn("mqtt client offline", { clientId }));
      await new Promise<void>((resolve, reject) => {
        client.once("connect", () => resolve());
        client.once("error", reject);
      });
      // With a resumed session the subscriptions already exist; subscribing again is harmless.
      const filters = Object.fromEntries(subscriptions.map((topic) => [topic, { qos: 1 as const }]));
      await client.subscribeAsync(filters);
      this.mqttSubscribed = true;
      this.logger.info("mqtt subscribed", { clientId, subscriptions });
      // And again after every reconnect. mqtt.js resubscribes only when the broker has no session,
      // but Mosquitto 2.0.11 restores a persisted session WITHOUT its $share subscriptions (after a
      // broker restart): "session present", and nothing delivered ever again (docs/reliability.md,
      // "Chaos"); meanwhile publishers get "no matching subscribers" (PLCs resend those). Without
      // `resubscribe: true` mqtt.js would skip filters it has subscribed before and send nothing.
      let connection = 0;
      client.on("connect", () => {
        const current = ++connection;
        this.mqttSubscribed = false;
        client.subscribeAsync(Object.assign({ resubscribe: true }, filters) as ISubscriptionMap).then(
          () => {
            if (current !== connection) return;
            this.mqttSubscribed = true;
            this.logger.info("mqtt subscribed again after reconnecting", { clientId });
          },
          (err: Error) => {
            // A connection that closed meanwhile subscribes on its next connect.
            if (current !== connection || this.mqttStopping || !client.connected) return;
            this.logger.warn("mqtt subscribe after reconnecting failed; reconnecting to retry", { clientId, error: err.message });
            client.end(true, () => client.reconnect());
          },
        );
      });
    },

    async stopped() {
      this.mqttStopping = true;
      await (this.mqttClient as MqttClient | undefined)?.endAsync();
    },
  };
}
