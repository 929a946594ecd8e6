import { createHash, randomUUID } from "node:crypto";
import { Errors, type Context, type ServiceSchema, type ServiceSettingSchema } from "moleculer";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { cleanSessionOptions } from "../mixins/mqtt.mixin.ts";
import { deviceUsername } from "../src/mqtt-auth/accounts.ts";
import { healthMixin } from "../mixins/health.mixin.ts";
import { parseCommand } from "../src/plc/command.ts";
import { FAULT_TYPES, FaultSpecError } from "../src/plc/faults.ts";
import type { MachineType } from "../src/plc/model.ts";
import { plantLayout, shardOf } from "../src/plc/plant-layout.ts";
import { PlcActor } from "../src/plc/plc-actor.ts";
import { StoreAndForward, type StoreAndForwardStats, type TelemetryLink } from "../src/plc/store-and-forward.ts";
import type { PlantwireConfig } from "../src/shared/config.ts";
import type { HealthCheck } from "../src/shared/health.ts";
import { deviceTopic } from "../src/shared/topics.ts";
import type { CommandAck, CommandPayload, DeviceAddress, FaultSpec, GroundTruthRecord, RunState } from "../src/shared/types.ts";

/**
 * A PLC's ground-truth channel: under its own topic prefix, so its MQTT account may publish there
 * (src/mqtt-auth/accounts.ts), but outside the telemetry and state filters the pipeline subscribes to.
 */
export function groundTruthTopic(topicRoot: string, address: DeviceAddress): string {
  return `${topicRoot}/${address.site}/${address.area}/${address.line}/${address.device}/groundtruth`;
}

/**
 * MQTT client id of a PLC. `plc-<device>` plus a short hash of the topic root and site, so two plants
 * (a developer's and a test run's) on one broker never take over each other's sessions.
 */
export function plcClientId(topicRoot: string, address: DeviceAddress): string {
  const plant = createHash("sha256").update(`${topicRoot}/${address.site}`).digest("hex").slice(0, 8);
  return `plc-${address.device}-${plant}`;
}

export interface PlcListing {
  device: string;
  address: DeviceAddress;
  machineType: MachineType;
  runState: RunState;
  /** seq of the last telemetry message (null before the first). */
  seq: number | null;
  connected: boolean;
  /** Telemetry store-and-forward: buffered, in flight, delivered, dropped (buffer full), retried, resent (resend window). */
  telemetry: StoreAndForwardStats;
  tripReason: string | null;
  activeFaults: GroundTruthRecord[];
}

interface PlcSimulatorSettings extends ServiceSettingSchema {
  topicRoot: string;
  scanMs: number;
  plcCount: number;
  shard: string;
}

/** Per-PLC link to the broker. */
interface PlcLink {
  actor: PlcActor;
  client: MqttClient;
  telemetry: StoreAndForward;
}

interface PlcSimulatorVars {
  links: Map<string, PlcLink>;
  scanTimer: NodeJS.Timeout | undefined;
  nextScanAt: number;
}

interface PlcSimulatorMethods {
  linkOf(device: string): PlcLink;
  connectPlc(actor: PlcActor): PlcLink;
  onCommandMessage(link: PlcLink, payload: Buffer, retained: boolean): void;
  applyCommand(link: PlcLink, command: CommandPayload): CommandAck;
  publishAck(link: PlcLink, ack: CommandAck): void;
  publishGroundTruth(link: PlcLink, records: GroundTruthRecord[]): void;
  scheduleScan(): void;
  scanAll(): void;
  disconnectPlc(link: PlcLink): Promise<void>;
  healthCheckMqtt(): Promise<HealthCheck>;
}


/** How long `started` waits for the PLCs to connect before scanning anyway (telemetry is buffered). */
const CONNECT_WAIT_MS = 5_000;
const STOP_PUBLISH_WAIT_MS = 3_000;
/** Telemetry messages a PLC hands to its MQTT client at once; more wait in its store-and-forward buffer. */
const TELEMETRY_IN_FLIGHT = 20;
/** Pause before a PLC resends telemetry the broker had no subscriber for. */
const TELEMETRY_RETRY_MS = 1_000;
/** MQTT 5 PUBACK reason code "No matching subscribers". */
const NO_MATCHING_SUBSCRIBERS = 16;
/**
 * A telemetry publish whose PUBACK has not come by then counts as failed and is sent again (the
 * historian stores a (ts, seq) once). mqtt.js does not always call back for a QoS 1 publish written
 * to a socket that just died: without this, each such publish kept an in-flight slot forever, and
 * once all were taken the PLC stopped sending (seen in the chaos suite's Mosquitto SIGKILL).
 */
const PUBACK_TIMEOUT_MS = 5_000;

/**
 * QoS 1 publishing through mqtt.js that tells "no matching subscribers" from a delivery: mqtt.js
 * reports both as success, so the PUBACK's reason code is read as the packet arrives (before the
 * publish callback runs) and looked up by message id.
 */
function mqttTelemetryLink(client: MqttClient): TelemetryLink {
  const unrouted = new Set<number>();
  client.on("packetreceive", (packet) => {
    if (packet.cmd === "puback" && packet.reasonCode === NO_MATCHING_SUBSCRIBERS && packet.messageId !== undefined) unrouted.add(packet.messageId);
  });
  return {
    get connected() {
      return client.connected;
    },
    publish: (topic, payload) =>
      withTimeout(
        new Promise((resolve, reject) => {
          client.publish(topic, payload, { qos: 1 }, (err, packet) => {
            if (err) return reject(err);
            const id = packet?.messageId;
            resolve(id !== undefined && unrouted.delete(id) ? "no-subscribers" : "delivered");
          });
        }),
        PUBACK_TIMEOUT_MS,
        "telemetry PUBACK",
      ),
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export default function createPlcSimulatorService(config: PlantwireConfig): ServiceSchema<PlcSimulatorSettings, PlcSimulatorMethods, PlcSimulatorVars> {
  const root = config.topicRoot;
  const { count, scanMs, seed, site, shardIndex, shardCount } = config.plc;

  return {
    name: "plc-simulator",
    mixins: [healthMixin()],

    settings: {
      topicRoot: root,
      scanMs,
      plcCount: count,
      shard: `${shardIndex}/${shardCount}`,
    },

    actions: {
      list: {
        params: {},
        handler(): PlcListing[] {
          const now = Date.now();
          return [...this.links.values()].map(({ actor, client, telemetry }) => ({
            device: actor.device,
            address: actor.address,
            machineType: actor.machineType,
            runState: actor.runState,
            seq: actor.lastSeq,
            connected: client.connected,
            telemetry: telemetry.stats,
            tripReason: actor.tripReason,
            activeFaults: actor.activeFaults(now),
          }));
        },
      },

      injectFault: {
        params: {
          device: { type: "string", empty: false },
          type: { type: "enum", values: [...FAULT_TYPES] },
          tag: { type: "string", empty: false, optional: true },
          start: { type: "number", integer: true, positive: true, optional: true },
          durationMs: { type: "number", positive: true },
          severity: { type: "number", min: 0, max: 1 },
        },
        handler(ctx: Context<FaultSpec>): GroundTruthRecord {
          const link = this.linkOf(ctx.params.device);
          let record: GroundTruthRecord;
          try {
            record = link.actor.injectFault(ctx.params, Date.now());
          } catch (err) {
            if (err instanceof FaultSpecError) throw new Errors.MoleculerClientError(err.message, 422, "FAULT_REJECTED", { device: ctx.params.device });
            throw err;
          }
          this.logger.info("fault injected", record);
          this.publishGroundTruth(link, [record]);
          return record;
        },
      },

      clearFaults: {
        params: { device: { type: "string", empty: false } },
        handler(ctx: Context<{ device: string }>): GroundTruthRecord[] {
          const link = this.linkOf(ctx.params.device);
          const records = link.actor.clearFaults(Date.now());
          if (records.length > 0) this.logger.info("faults cleared", { device: ctx.params.device, faults: records.map((r) => r.faultId) });
          this.publishGroundTruth(link, records);
          return records;
        },
      },

      groundTruth: {
        params: { device: { type: "string", empty: false, optional: true } },
        handler(ctx: Context<{ device?: string }>): GroundTruthRecord[] {
          const links = ctx.params.device ? [this.linkOf(ctx.params.device)] : [...this.links.values()];
          return links.flatMap(({ actor }) => actor.groundTruth()).sort((a, b) => a.start - b.start);
        },
      },

      command: {
        params: {
          device: { type: "string", empty: false },
          action: { type: "enum", values: ["start", "stop", "reset", "setpoint"] },
          tag: { type: "string", empty: false, optional: true },
          value: { type: "number", optional: true },
        },
        handler(ctx: Context<{ device: string; action: CommandPayload["action"]; tag?: string; value?: number }>): CommandAck {
          const { device, action, tag, value } = ctx.params;
          const link = this.linkOf(device);
          const command: CommandPayload = { id: randomUUID(), action, ts: Date.now() };
          if (tag !== undefined) command.tag = tag;
          if (value !== undefined) command.value = value;
          return this.applyCommand(link, command);
        },
      },
    },

    methods: {
      linkOf(device: string): PlcLink {
        const link = this.links.get(device);
        if (!link) {
          throw new Errors.MoleculerClientError(`PLC "${device}" is not simulated by this replica (shard ${shardIndex}/${shardCount})`, 404, "PLC_NOT_FOUND", { device });
        }
        return link;
      },

      connectPlc(actor: PlcActor): PlcLink {
        const stateTopic = deviceTopic(root, actor.address, "state");
        const cmdTopic = deviceTopic(root, actor.address, "cmd");
        const options: IClientOptions = {
          // A fresh session each time: commands sent while the PLC was away must not run late.
          ...cleanSessionOptions(config, plcClientId(root, actor.address), deviceUsername(root, actor.address)),
          // Subscribed again on every connect below (a clean session starts without subscriptions).
          resubscribe: false,
          // Telemetry waits in the PLC's own bounded store-and-forward buffer while disconnected;
          // what the client holds (acks, ground truth, in-flight telemetry) it resends in order itself.
          queueQoSZero: true,
          will: { topic: stateTopic, payload: Buffer.from(JSON.stringify(actor.death(Date.now()))), qos: 1, retain: true },
        };
        const client = mqtt.connect(config.mqttUrl, options);
        const telemetry = new StoreAndForward(mqttTelemetryLink(client), {
          capacity: config.plc.bufferMax,
          maxInFlight: TELEMETRY_IN_FLIGHT,
          retryMs: TELEMETRY_RETRY_MS,
          resendWindowMs: config.plc.resendWindowMs,
        });
        const link: PlcLink = { actor, client, telemetry };
        const device = actor.device;
        client.on("connect", () => {
          this.logger.info("plc connected", { device, clientId: options.clientId });
          client.publish(stateTopic, JSON.stringify(actor.birth(Date.now())), { qos: 1, retain: true }, (err) => {
            if (err) this.logger.warn("plc birth not published", { device, error: err.message });
          });
          // mqtt.js emits connect after resending its own store; the resend window and buffered
          // telemetry follow the birth.
          telemetry.reconnected();
          client.subscribe(cmdTopic, { qos: 1 }, (err) => {
            if (err) this.logger.error("plc cmd subscription failed", { device, topic: cmdTopic, error: err.message });
          });
        });
        client.on("message", (topic, payload, packet) => {
          if (topic === cmdTopic) this.onCommandMessage(link, payload, packet.retain);
        });
        client.on("offline", () => this.logger.warn("plc offline: buffering telemetry", { device }));
        client.on("error", (err) => this.logger.warn("plc mqtt error", { device, error: err.message }));
        return link;
      },

      onCommandMessage(link: PlcLink, payload: Buffer, retained: boolean): void {
        const device = link.actor.device;
        if (retained) {
          // A retained command would rerun on every reconnect: never act on one.
          this.logger.warn("retained command ignored", { device });
          return;
        }
        const parsed = parseCommand(payload.toString("utf8"), Date.now());
        if (!parsed.ok) {
          if (parsed.id === undefined) {
            this.logger.warn("command without a usable id dropped", { device, reason: parsed.reason });
            return;
          }
          this.logger.warn("command rejected", { device, id: parsed.id, reason: parsed.reason });
          this.publishAck(link, { id: parsed.id, status: "rejected", reason: parsed.reason, ts: Date.now() });
          return;
        }
        this.applyCommand(link, parsed.command);
      },

      applyCommand(link: PlcLink, command: CommandPayload): CommandAck {
        const { actor } = link;
        const before = actor.runState;
        const ack = actor.handleCommand(command, Date.now());
        const context = { device: actor.device, id: command.id, action: command.action, ...(command.tag !== undefined && { tag: command.tag, value: command.value }) };
        if (ack.status === "accepted") this.logger.info("command accepted", { ...context, from: before, to: actor.runState });
        else this.logger.warn("command rejected", { ...context, reason: ack.reason });
        this.publishAck(link, ack);
        return ack;
      },

      publishAck(link: PlcLink, ack: CommandAck): void {
        link.client.publish(deviceTopic(root, link.actor.address, "cmd/ack"), JSON.stringify(ack), { qos: 1 }, (err) => {
          if (err) this.logger.warn("command ack not published", { device: link.actor.device, id: ack.id, error: err.message });
        });
      },

      publishGroundTruth(link: PlcLink, records: GroundTruthRecord[]): void {
        // With the PLC's own client, so it is queued while the PLC is offline; not retained: a stream
        // of records keyed by faultId (a cleared fault is published again with its corrected end).
        for (const record of records) {
          link.client.publish(groundTruthTopic(root, link.actor.address), JSON.stringify(record), { qos: 1 }, (err) => {
            if (err) this.logger.warn("ground truth not published", { device: record.device, faultId: record.faultId, error: err.message });
          });
        }
      },

      /** One timer for all PLCs, aligned to multiples of scanMs; a late tick skips ahead rather than bursting. */
      scheduleScan(): void {
        const now = Date.now();
        this.nextScanAt += scanMs;
        if (this.nextScanAt <= now) this.nextScanAt = now + scanMs - ((now - this.nextScanAt) % scanMs);
        this.scanTimer = setTimeout(() => {
          this.scanAll();
          this.scheduleScan();
        }, this.nextScanAt - now);
      },

      scanAll(): void {
        const now = Date.now();
        for (const { actor, telemetry } of this.links.values()) {
          try {
            const before = actor.runState;
            const sample = actor.scan(now);
            if (actor.runState !== before) {
              const context = { device: actor.device, from: before, to: actor.runState };
              if (actor.runState === "faulted") this.logger.warn("plc tripped", { ...context, reason: actor.tripReason });
              else this.logger.info("plc run state changed", context);
            }
            telemetry.enqueue(deviceTopic(root, actor.address, "telemetry"), JSON.stringify(sample));
          } catch (err) {
            this.logger.error("plc scan failed", { device: actor.device, error: (err as Error).message });
          }
        }
      },

      async disconnectPlc(link: PlcLink): Promise<void> {
        const { actor, client } = link;
        const device = actor.device;
        const unsent = link.telemetry.close();
        if (unsent > 0) this.logger.warn("plc stopped with telemetry still buffered", { device, unsent });
        try {
          if (client.connected) {
            // An orderly DISCONNECT suppresses the Last Will: publish the offline state ourselves.
            await withTimeout(client.publishAsync(deviceTopic(root, actor.address, "state"), JSON.stringify(actor.death(Date.now())), { qos: 1, retain: true }), STOP_PUBLISH_WAIT_MS, "offline state");
            await withTimeout(client.endAsync(false), STOP_PUBLISH_WAIT_MS, "disconnect");
          } else {
            await client.endAsync(true);
          }
        } catch (err) {
          this.logger.warn("plc did not disconnect cleanly", { device, error: (err as Error).message });
          await client.endAsync(true);
        }
      },

      async healthCheckMqtt(): Promise<HealthCheck> {
        const total = this.links.size;
        const connected = [...this.links.values()].filter((l) => l.client.connected).length;
        return { ok: connected === total, detail: `${connected} of ${total} PLCs connected to the MQTT broker` };
      },
    },

    created() {
      this.links = new Map();
      this.scanTimer = undefined;
      this.nextScanAt = 0;
    },

    async started() {
      const owned = shardOf(plantLayout(count, seed, site), shardIndex, shardCount);
      for (const definition of owned) this.links.set(definition.device, this.connectPlc(new PlcActor(definition)));
      const pending = [...this.links.values()].filter((l) => !l.client.connected);
      try {
        await withTimeout(Promise.all(pending.map((l) => new Promise<void>((resolve) => l.client.once("connect", () => resolve())))), CONNECT_WAIT_MS, "MQTT connect");
      } catch {
        // Not fatal: the clients keep reconnecting and buffer telemetry; health reports it meanwhile.
        const missing = pending.filter((l) => !l.client.connected).map((l) => l.actor.device);
        this.logger.warn("PLCs not connected yet; scanning anyway", { missing, mqttUrl: config.mqttUrl });
      }
      this.nextScanAt = Date.now();
      this.scanAll();
      this.scheduleScan();
      this.logger.info("plc simulator started", { plcs: owned.map((d) => d.device), shard: `${shardIndex}/${shardCount}`, scanMs, seed });
    },

    async stopped() {
      clearTimeout(this.scanTimer);
      this.scanTimer = undefined;
      await Promise.all([...this.links.values()].map((link) => this.disconnectPlc(link)));
      this.links.clear();
    },
  };
}
