import type { Context, ServiceSchema } from "moleculer";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import type { PlantwireConfig } from "../src/shared/config.ts";

export interface SessionAdoptionOptions {
  /** The client id the replica on Moleculer node `nodeID` subscribes with (its persistent session). */
  clientIdOf: (nodeID: string) => string;
  /** The replica's subscriptions: subscribed again in an adopted session (see the connect handler). */
  subscriptions: string[];
  /** This replica's own subscriber: its connection options (credentials, TLS) are reused. */
  ownClient: () => MqttClient | undefined;
  /** Handles one message of an adopted session; its PUBACK is sent only once this resolved. */
  onMessage: (topic: string, payload: Buffer) => Promise<void>;
}

interface NodeInfo {
  id: string;
  available?: boolean;
  services?: { name: string }[];
}

const runs = (node: NodeInfo, service: string) => node.services?.some((s) => s.name === service) ?? false;

/**
 * Takes over the persistent MQTT session of a replica that crashed, until it is back.
 *
 * Mosquitto keeps handing an absent member of a shared subscription its share of the messages
 * (1/N of the telemetry with N replicas): they queue in the dead replica's session until it comes
 * back under the same client id, and are dropped when the session expires. So when a replica of
 * this service drops out of the Moleculer cluster unexpectedly (no heartbeat for
 * `heartbeatTimeout`), the surviving replica with the lowest node id connects with the dead
 * replica's client id: the broker hands it the session, with what was queued and the share from
 * then on, and each message is acknowledged only after it was handled, as on the replica's own
 * session. Nothing is subscribed: a session that no longer exists is not recreated.
 *
 * When the replica returns under its id, the broker gives the session back to it and closes the
 * adopter's connection; the adopter never reconnects on its own, so it lets go (a `$node.connected`
 * of that node makes it let go too). A replica wrongly thought dead (NATS cut off, MQTT fine)
 * takes its session back on its next reconnect (a second) the same way. Messages in flight at a
 * hand-over are redelivered to the new holder (at least once; the historian stores a sample once).
 * If the broker itself goes away, the adoption ends; this replica looks for orphaned sessions
 * again when its own subscriber has reconnected.
 */
export function mqttSessionAdoptionMixin(config: PlantwireConfig, options: (service: Record<string, unknown>) => SessionAdoptionOptions): Partial<ServiceSchema> {
  return {
    events: {
      "$node.disconnected"(ctx: Context<{ node: NodeInfo; unexpected: boolean }>) {
        if (ctx.params.unexpected && runs(ctx.params.node, this.name)) this.adoptOrphanedSessions();
      },
      "$node.connected"(ctx: Context<{ node: NodeInfo }>) {
        this.releaseAdoptedSession(ctx.params.node.id, "its replica is back");
      },
    },

    methods: {
      /** If this is the lowest available replica: adopts the session of every absent replica not held yet. */
      adoptOrphanedSessions(): void {
        if (this.adoptionStopping) return;
        const nodes = this.broker.registry.getNodeList({ onlyAvailable: false, withServices: true }) as unknown as NodeInfo[];
        const alive = [this.broker.nodeID, ...nodes.filter((n) => n.available && runs(n, this.name)).map((n) => n.id)].sort();
        if (alive[0] !== this.broker.nodeID) return;
        const held = this.adoptedSessions as Map<string, MqttClient>;
        for (const node of nodes) if (!node.available && runs(node, this.name) && node.id !== this.broker.nodeID && !held.has(node.id)) this.adoptSession(node.id);
      },

      adoptSession(nodeID: string): void {
        const { clientIdOf, subscriptions, ownClient, onMessage } = options(this);
        const clientId = clientIdOf(nodeID);
        const own: IClientOptions = ownClient()?.options ?? {};
        const client = mqtt.connect(config.mqttUrl, {
          clientId,
          protocolVersion: 5,
          clean: false,
          properties: { sessionExpiryInterval: config.mqttSessionExpiryS },
          username: own.username,
          password: own.password,
          ca: own.ca,
          cert: own.cert,
          key: own.key,
          rejectUnauthorized: true,
          // Never on its own: a reconnect could take the session from its returning owner.
          reconnectPeriod: 0,
          connectTimeout: 5_000,
          resubscribe: false,
        });
        const held = this.adoptedSessions as Map<string, MqttClient>;
        held.set(nodeID, client);
        let redelivering = false;
        client.handleMessage = (packet, done) => {
          onMessage(packet.topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)).then(
            () => done(),
            (err: Error) => {
              // Not acknowledged: the session redelivers it on the next connection.
              if (held.get(nodeID) !== client || this.adoptionStopping) return;
              this.logger.error("adopted mqtt session: message handling failed; reconnecting for redelivery", { clientId, topic: packet.topic, error: err.message });
              redelivering = true;
              client.end(true, () => {
                redelivering = false;
                if (held.get(nodeID) === client) client.reconnect();
              });
            },
          );
        };
        client.on("connect", (connack) => {
          if (connack.sessionPresent) {
            this.logger.warn("adopted the mqtt session of a replica that left unexpectedly", { node: nodeID, clientId });
            // Mosquitto 2.0.11 restores a saved session without its $share subscriptions after a
            // restart (docs/reliability.md, "Chaos"): subscribing again is harmless otherwise.
            client.subscribe(Object.fromEntries(subscriptions.map((topic) => [topic, { qos: 1 as const }])), (err) => {
              if (err) this.logger.warn("adopted mqtt session: subscribing again failed", { clientId, error: err.message });
            });
            return;
          }
          // It had expired or been removed: nothing to take over; do not leave an empty session behind.
          this.releaseAdoptedSession(nodeID, "no session to adopt", 0);
        });
        client.on("close", () => {
          if (redelivering || held.get(nodeID) !== client) return;
          // Taken back by its replica (Mosquitto 2.0 closes the connection without a DISCONNECT
          // "session taken over"), or the broker went away: let go. When this replica's own
          // subscriber reconnects after a broker outage, orphaned sessions are looked for again.
          held.delete(nodeID);
          client.end(true);
          this.logger.warn("let go of an adopted mqtt session: its connection closed", { node: nodeID, clientId });
        });
        client.on("error", (err) => this.logger.warn("adopted mqtt session: client error", { clientId, error: err.message }));
        const subscriber = ownClient();
        if (subscriber && this.adoptionWatches !== subscriber) {
          this.adoptionWatches = subscriber;
          subscriber.on("connect", () => this.adoptOrphanedSessions());
        }
      },

      /** Lets go of an adopted session (kept in the broker for its owner unless `expiry` 0). */
      releaseAdoptedSession(nodeID: string, reason: string, expiry?: number): void {
        const held = this.adoptedSessions as Map<string, MqttClient>;
        const client = held.get(nodeID);
        if (!client) return;
        held.delete(nodeID);
        this.logger.warn("released an adopted mqtt session", { node: nodeID, reason });
        client.end(false, expiry === undefined ? {} : { properties: { sessionExpiryInterval: expiry } });
      },
    },

    created() {
      this.adoptedSessions = new Map<string, MqttClient>();
      this.adoptionStopping = false;
    },

    async stopped() {
      this.adoptionStopping = true;
      const held = this.adoptedSessions as Map<string, MqttClient>;
      // A normal DISCONNECT: the broker keeps each session (and queues for it) for its owner.
      const clients = [...held.values()];
      held.clear();
      await Promise.all(clients.map((client) => client.endAsync()));
    },
  };
}
