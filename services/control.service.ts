import { randomUUID } from "node:crypto";
import { Errors, type Context, type ServiceSchema, type ServiceSettingSchema } from "moleculer";
import type { Message } from "kafkajs";
import type { Collection, Db } from "mongodb";
import mqtt, { type MqttClient } from "mqtt";
import { cleanSessionOptions } from "../mixins/mqtt.mixin.ts";
import { serviceUsername } from "../src/mqtt-auth/accounts.ts";
import { auditMixin } from "../mixins/audit.mixin.ts";
import { healthMixin } from "../mixins/health.mixin.ts";
import { kafkaMixin } from "../mixins/kafka.mixin.ts";
import { mongoMixin } from "../mixins/mongo.mixin.ts";
import {
  ackOutcome,
  auditRecord,
  COMMAND_ACTIONS,
  commandEvent,
  commandPayload,
  commandView,
  eventOf,
  lateAckRecord,
  newCommand,
  parseAck,
  requesterOf,
  timeoutUpdate,
  validateCommand,
  withUpdate,
  type CommandAuditAction,
  type CommandAuditRecord,
  type CommandDocument,
  type CommandRequest,
  type CommandView,
} from "../src/control/commands.ts";
import { listAuditEntries, verifyStoredChain } from "../src/audit/audit-store.ts";
import type { AuditEntry, AuditInput, ChainVerdict } from "../src/audit/chain.ts";
import type { PlantwireConfig } from "../src/shared/config.ts";
import { ValidationError } from "../src/shared/errors.ts";
import type { HealthCheck } from "../src/shared/health.ts";
import { parseTimeParam } from "../src/shared/time.ts";
import type { KafkaTopicKind } from "../src/shared/topics.ts";
import { deviceTopic, kindFilter, parseDeviceTopic } from "../src/shared/topics.ts";
import type { CommandAck, DeviceDocument } from "../src/shared/types.ts";

export interface SendCommandParams extends CommandRequest {
  /** The device id (the path's `{id}`). */
  id: string;
}

export interface ListCommandsParams {
  device?: string;
  limit?: number;
}

export interface ListAuditParams {
  from?: string | number;
  to?: string | number;
  subject?: string;
  limit?: number;
}

export interface ControlStats {
  sent: number;
  acknowledged: number;
  rejected: number;
  timedOut: number;
  /** Acks this replica matched to a command (the replicas split them through the shared subscription). */
  acksHandled: number;
}

interface ControlMeta {
  user?: unknown;
  $statusCode?: number;
  $responseHeaders?: Record<string, string>;
}

interface ControlSettings extends ServiceSettingSchema {
  rest: string;
  commandTimeoutMs: number;
}

interface ControlVars {
  db: Db;
  mqttClient: MqttClient | undefined;
  mqttStopping: boolean;
  commands: Collection<CommandDocument>;
  timers: Map<string, NodeJS.Timeout>;
  inFlightEvents: Set<Promise<void>>;
  /** The last event handed to Kafka: the next one is sent after it. */
  lastEvent: Promise<void>;
  stats: ControlStats;
}

interface ControlMethods {
  connectMqtt(): Promise<MqttClient>;
  healthCheckMqtt(): Promise<HealthCheck>;
  registeredDevice(ctx: Context, id: string): Promise<DeviceDocument>;
  publishCommand(command: CommandDocument): Promise<void>;
  handleAck(topic: string, payload: Buffer): Promise<void>;
  applyAck(command: CommandDocument, device: string, ack: CommandAck, retry: boolean): Promise<void>;
  armTimeout(command: CommandDocument): void;
  expireIfDue(command: CommandDocument): Promise<CommandDocument>;
  record(command: CommandDocument, event: CommandAuditAction, at: number): Promise<void>;
  insertAudit(record: CommandAuditRecord): Promise<void>;
  emitEvent(command: CommandDocument, at: number): Promise<void>;
  adoptPendingCommands(): Promise<void>;
  // From the mixins.
  kafkaProduce(kind: KafkaTopicKind, messages: Message[]): Promise<void>;
  appendAudit(input: AuditInput, key?: string): Promise<AuditEntry | null>;
}

const DEVICE_ID = { type: "string", pattern: /^[A-Za-z0-9_.-]{1,64}$/ } as const;
const COMMAND_ID = { type: "string", pattern: /^[A-Za-z0-9_.-]{1,128}$/ } as const;
/** How long a POST waits for the broker's PUBACK before answering 202 anyway (the command stays pending). */
const PUBLISH_WAIT_MS = 3_000;
/** How long `stopped` waits for Kafka events still on their way. */
const STOP_EVENT_WAIT_MS = 5_000;
/** A second try for an ack whose handling failed (MongoDB briefly away) before it is given up. */
const ACK_RETRY_MS = 500;

function invalidParameter(field: string, message: string): Errors.MoleculerClientError {
  // Shaped like the validator's errors, so the gateway answers 400 naming the field.
  return new Errors.MoleculerClientError(message, 400, "VALIDATION_ERROR", [{ type: "command", field, message }]);
}

function timeParam(value: string | number | undefined, field: string): number | undefined {
  try {
    return value === undefined ? undefined : parseTimeParam(value, field, 0);
  } catch (err) {
    if (err instanceof ValidationError) throw invalidParameter(field, err.message);
    throw err;
  }
}

function settleWithin(promise: Promise<unknown>, ms: number): Promise<"done" | "late"> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.then(() => "done" as const),
    new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Supervisory commands: validates a command against the device registry, stores it, publishes it
 * on the PLC's `cmd` topic and completes it from the PLC's `cmd/ack` (or times it out). Every
 * command and outcome is in MongoDB (`commands`, `audit`) and on Kafka (`scada.events.v1`).
 */
export default function createControlService(config: PlantwireConfig): ServiceSchema<ControlSettings, ControlMethods, ControlVars> {
  const root = config.topicRoot;
  const timeoutMs = config.commandTimeoutMs;

  return {
    name: "control",
    mixins: [kafkaMixin(config), mongoMixin(config), auditMixin(), healthMixin()],

    settings: {
      rest: "/",
      commandTimeoutMs: timeoutMs,
    },

    actions: {
      send: {
        rest: "POST /devices/:id/commands",
        role: "operator",
        openapi: { summary: "Send a command (start, stop, reset, setpoint) to a PLC: 202 with the pending command", status: 202 },
        // Never retried by the caller: a retry would send the command to the PLC twice.
        retryPolicy: { enabled: false },
        params: {
          id: DEVICE_ID,
          action: { type: "enum", values: [...COMMAND_ACTIONS] },
          tag: { type: "string", pattern: /^[A-Za-z0-9_.-]{1,64}$/, optional: true },
          value: { type: "number", optional: true },
        },
        async handler(ctx: Context<SendCommandParams, ControlMeta>): Promise<CommandView> {
          const { id, action, tag, value } = ctx.params;
          const device = await this.registeredDevice(ctx, id);
          const checked = validateCommand({ action, tag, value }, device);
          if (!checked.ok) throw invalidParameter(checked.field, checked.message);
          if (!this.mqttClient?.connected) throw new Errors.MoleculerError("the MQTT broker is not reachable: command not sent", 503, "MQTT_UNAVAILABLE");
          const command = newCommand(randomUUID(), device, checked.value, requesterOf(ctx.meta.user), Date.now(), timeoutMs);
          // Stored before it is published, so an ack can never arrive for an unknown command.
          await this.commands.insertOne(command);
          this.armTimeout(command);
          await this.record(command, "command.sent", command.requestedAt);
          this.stats.sent++;
          await this.publishCommand(command);
          ctx.meta.$statusCode = 202;
          ctx.meta.$responseHeaders = { Location: `/api/commands/${command._id}` };
          return commandView(command);
        },
      },

      get: {
        rest: "GET /commands/:id",
        role: "viewer",
        openapi: { summary: "One command with its status: pending, acknowledged, rejected or timed_out" },
        params: { id: COMMAND_ID },
        async handler(ctx: Context<{ id: string }>): Promise<CommandView> {
          const command = await this.commands.findOne({ _id: ctx.params.id });
          if (!command) throw new Errors.MoleculerClientError(`command "${ctx.params.id}" does not exist`, 404, "COMMAND_NOT_FOUND", { id: ctx.params.id });
          return commandView(await this.expireIfDue(command));
        },
      },

      list: {
        rest: "GET /commands",
        role: "viewer",
        openapi: { summary: "Recent commands, newest first, with who sent them and their outcome" },
        params: {
          device: { ...DEVICE_ID, optional: true },
          limit: { type: "number", integer: true, min: 1, max: 500, optional: true, convert: true },
        },
        async handler(ctx: Context<ListCommandsParams>): Promise<{ commands: CommandView[] }> {
          const { device, limit = 50 } = ctx.params;
          // A full scan on FerretDB (only _id lookups use its index): fine for a recent listing.
          const found = await this.commands.find(device ? { device } : {}).sort({ requestedAt: -1 }).limit(limit).toArray();
          const commands = await Promise.all(found.map((c) => this.expireIfDue(c)));
          return { commands: commands.map(commandView) };
        },
      },

      // The audit trail's REST side lives here: control already owns auditing (ARCHITECTURE.md), and
      // a service of its own would be one more deployment unit for two read-only routes.
      audit: {
        rest: "GET /audit",
        role: "engineer",
        openapi: {
          summary: "Audit trail entries (who did what, when), newest first, filtered by time and subject",
          description: "`from`/`to` (epoch ms or ISO-8601) bound the entries' `at`; `subject` is `command`, `device`, `alarm`, ...; `limit` 1..1000, default 100. Each entry: `seq`, `at`, `action`, `subject`, `subjectId`, `user`, `details`, `prevHash`, `hash` (docs/security.md).",
        },
        params: {
          from: { type: "multi", rules: [{ type: "number", integer: true }, { type: "string", max: 40 }], optional: true },
          to: { type: "multi", rules: [{ type: "number", integer: true }, { type: "string", max: 40 }], optional: true },
          subject: { type: "string", pattern: /^[a-z][a-z0-9-]{0,31}$/, optional: true },
          limit: { type: "number", integer: true, min: 1, max: 1000, optional: true, convert: true },
        },
        async handler(ctx: Context<ListAuditParams>): Promise<{ entries: Omit<AuditEntry, "_id">[] }> {
          const { subject, limit = 100 } = ctx.params;
          const from = timeParam(ctx.params.from, "from");
          const to = timeParam(ctx.params.to, "to");
          if (from !== undefined && to !== undefined && to < from) throw invalidParameter("to", "to must not be before from");
          // A full scan on FerretDB (only _id lookups use its index): fine for an audit listing.
          return { entries: await listAuditEntries(this.db, { from, to, subject, limit }) };
        },
      },

      verifyAudit: {
        rest: "GET /audit/verify",
        role: "engineer",
        openapi: { summary: "Check the audit trail's hash chain: ok, or the first broken link (edited, deleted, inserted or reordered entry)" },
        // Reads the whole chain.
        timeout: 120_000,
        handler(): Promise<ChainVerdict> {
          return verifyStoredChain(this.db);
        },
      },

      stats: {
        handler(): ControlStats {
          return { ...this.stats };
        },
      },
    },

    methods: {
      /**
       * The MQTT client that publishes commands and takes acks. Unlike the preprocessor's
       * (mqttSubscriberMixin), its session is clean: in a shared subscription the broker keeps
       * queueing its share of messages for a disconnected persistent session, and a replica that
       * is gone (a replaced pod gets a new NODE_ID, so nobody resumes its session) would swallow
       * part of the acks until the session expired. An ack is only useful within the timeout
       * anyway; one lost with a dying replica leaves its command to time out, which is the honest
       * outcome. A short keepalive lets the broker notice a dead replica within seconds.
       */
      async connectMqtt(): Promise<MqttClient> {
        const clientId = `${config.namespace}-control-${config.nodeId ?? this.broker.nodeID}`;
        const subscription = `$share/${config.namespace}-control/${kindFilter(root, "cmd/ack")}`;
        const client = mqtt.connect(config.mqttUrl, {
          ...cleanSessionOptions(config, clientId, serviceUsername(config.namespace, "control")),
          // A clean session starts without subscriptions: mqtt.js subscribes again on every connect.
          resubscribe: true,
        });
        // PUBACK only once the ack is recorded in MongoDB (the command's state and its audit).
        client.handleMessage = (packet, done) => {
          const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
          const attempt = () => this.handleAck(packet.topic, payload);
          attempt()
            .catch(async (err: Error) => {
              if (this.mqttStopping) throw err;
              this.logger.warn("command ack not recorded; trying again", { topic: packet.topic, error: err.message });
              await new Promise((resolve) => setTimeout(resolve, ACK_RETRY_MS));
              return attempt();
            })
            .catch((err: Error) => {
              if (this.mqttStopping) this.logger.info("command ack dropped at shutdown; its command will time out", { topic: packet.topic });
              else this.logger.error("command ack given up; its command will time out", { topic: packet.topic, error: err.message });
            })
            .finally(() => done());
        };
        client.on("error", (err) => this.logger.warn("mqtt client error", { clientId, error: err.message }));
        client.on("offline", () => this.logger.warn("mqtt client offline", { clientId }));
        await new Promise<void>((resolve, reject) => {
          client.once("connect", () => resolve());
          client.once("error", reject);
        });
        await client.subscribeAsync(subscription, { qos: 1 });
        this.logger.info("mqtt subscribed", { clientId, subscription });
        return client;
      },

      async healthCheckMqtt(): Promise<HealthCheck> {
        return this.mqttClient?.connected ? { ok: true } : { ok: false, detail: "not connected to the MQTT broker" };
      },

      async registeredDevice(ctx: Context, id: string): Promise<DeviceDocument> {
        try {
          return await ctx.call<DeviceDocument, { id: string }>("devices.get", { id });
        } catch (err) {
          const { code, type } = err as { code?: number; type?: string };
          if (type === "DEVICE_NOT_FOUND") throw err;
          // The registry is not there (not found / not available / timed out): not the client's fault.
          if (code === 404 || code === 503 || code === 504) throw new Errors.MoleculerError(`the device registry is not available: ${(err as Error).message}`, 503, "REGISTRY_UNAVAILABLE");
          throw err;
        }
      },

      async publishCommand(command: CommandDocument): Promise<void> {
        const client = this.mqttClient as MqttClient;
        const topic = deviceTopic(root, command, "cmd");
        // The broker drops the command if it cannot deliver it before the timeout (a PLC with a
        // persistent session that is offline): it must not run after it was reported timed out.
        const published = client.publishAsync(topic, JSON.stringify(commandPayload(command)), {
          qos: 1,
          properties: { messageExpiryInterval: Math.ceil(timeoutMs / 1000) },
        });
        published.catch((err: Error) => this.logger.warn("command not published; it will time out", { id: command._id, device: command.device, error: err.message }));
        // Without a PUBACK soon, answer anyway: the command is pending and resolves (ack or timeout).
        if ((await settleWithin(published.catch(() => undefined), PUBLISH_WAIT_MS)) === "late") {
          this.logger.warn("no PUBACK for a command yet; answering while it is pending", { id: command._id, device: command.device });
        }
      },

      async handleAck(topic: string, payload: Buffer): Promise<void> {
        const address = parseDeviceTopic(root, topic);
        if (!address || address.kind !== "cmd/ack") {
          this.logger.warn("ack on an unexpected topic ignored", { topic });
          return;
        }
        const parsed = parseAck(payload.toString("utf8"));
        if (!parsed.ok) {
          this.logger.warn("unreadable command ack ignored", { topic, reason: parsed.message });
          return;
        }
        const command = await this.commands.findOne({ _id: parsed.value.id });
        if (!command) {
          // e.g. an ack to plc-simulator.command, which does not go through control.
          this.logger.debug("ack for a command control did not send", { topic, id: parsed.value.id });
          return;
        }
        await this.applyAck(command, address.device, parsed.value, true);
      },

      async applyAck(command: CommandDocument, device: string, ack: CommandAck, retry: boolean): Promise<void> {
        const now = Date.now();
        const outcome = ackOutcome(command, device, ack, now);
        switch (outcome.kind) {
          case "complete": {
            const result = await this.commands.updateOne({ _id: command._id, status: "pending" }, { $set: outcome.update });
            if (result.modifiedCount === 0) {
              // Another writer (a timeout) got there first: judge the ack against what is stored now.
              const stored = await this.commands.findOne({ _id: command._id });
              if (stored && retry) await this.applyAck(stored, device, ack, false);
              return;
            }
            clearTimeout(this.timers.get(command._id));
            this.timers.delete(command._id);
            const done = withUpdate(command, outcome.update);
            this.stats.acksHandled++;
            if (done.status === "acknowledged") this.stats.acknowledged++;
            else this.stats.rejected++;
            await this.record(done, eventOf(done), now);
            return;
          }
          case "duplicate":
            // A redelivered ack (the previous delivery may have stopped before the audit or the
            // event): write them again; the audit id makes that harmless, event consumers dedupe.
            if (command.lateAck) await this.insertAudit(lateAckRecord(command, command.lateAck));
            else await this.record(command, eventOf(command), command.completedAt ?? now);
            return;
          case "late": {
            const result = await this.commands.updateOne({ _id: command._id, status: "timed_out", lateAck: { $exists: false } }, { $set: { lateAck: outcome.lateAck } });
            this.logger.warn("PLC acknowledged a command after its timeout", { id: command._id, device, status: ack.status, reason: outcome.lateAck.reason });
            if (result.modifiedCount > 0) await this.insertAudit(lateAckRecord(command, outcome.lateAck));
            return;
          }
          case "ignored":
            this.logger.warn("command ack ignored", { id: ack.id, device, reason: outcome.reason });
            return;
        }
      },

      /**
       * Times the command out at its deadline. The timer lives only in this replica: if it dies,
       * the command stays pending in MongoDB until a later GET or listing resolves it (it is
       * overdue), or until a control replica starts and adopts the pending commands.
       */
      armTimeout(command: CommandDocument): void {
        const timer = setTimeout(() => {
          this.timers.delete(command._id);
          this.commands
            .findOne({ _id: command._id })
            .then((stored) => (stored ? this.expireIfDue(stored) : undefined))
            .catch((err: Error) => this.logger.error("command timeout not recorded", { id: command._id, error: err.message }));
        }, Math.max(0, command.deadline - Date.now()));
        this.timers.set(command._id, timer);
      },

      async expireIfDue(command: CommandDocument): Promise<CommandDocument> {
        const now = Date.now();
        const update = timeoutUpdate(command, now, timeoutMs);
        if (!update) return command;
        const result = await this.commands.updateOne({ _id: command._id, status: "pending" }, { $set: update });
        if (result.modifiedCount === 0) return (await this.commands.findOne({ _id: command._id })) ?? command;
        const expired = withUpdate(command, update);
        this.stats.timedOut++;
        this.logger.warn("command timed out", { id: command._id, device: command.device, action: command.action });
        await this.record(expired, "command.timedOut", now);
        return expired;
      },

      /**
       * Writes the audit record of a step and hands its event to Kafka without waiting for it: the
       * command path must not depend on the event log (MongoDB holds the record), and acks are
       * handled one after the other, so a Kafka outage would otherwise hold back every later ack
       * until its command timed out. The producer retries until Kafka is back, in order.
       */
      async record(command: CommandDocument, event: CommandAuditAction, at: number): Promise<void> {
        await this.insertAudit(auditRecord(command, event, at));
        this.emitEvent(command, at).catch((err: Error) => this.logger.error("command event not published", { id: command._id, event, error: err.message }));
      },

      /** Audit keys are deterministic: writing a record again (a redelivery) adds nothing to the chain. */
      async insertAudit(record: CommandAuditRecord): Promise<void> {
        await this.appendAudit(record.input, record.key);
      },

      emitEvent(command: CommandDocument, at: number): Promise<void> {
        // One after the other: kafkajs does not keep the order of concurrent send() calls (each may
        // wait for metadata first), and an ack can arrive before its command's "sent" left.
        const value = JSON.stringify(commandEvent(command, at));
        const sending = this.lastEvent.catch(() => undefined).then(() => this.kafkaProduce("events", [{ key: command.device, value }]));
        this.lastEvent = sending;
        const tracked = sending.finally(() => this.inFlightEvents.delete(tracked));
        this.inFlightEvents.add(tracked);
        return tracked;
      },

      /** Times out what is overdue and arms timers for the rest: commands whose sender died. */
      async adoptPendingCommands(): Promise<void> {
        const pending = await this.commands.find({ status: "pending" }).toArray();
        for (const command of pending) {
          if (command.deadline <= Date.now()) await this.expireIfDue(command);
          else if (!this.timers.has(command._id)) this.armTimeout(command);
        }
        if (pending.length > 0) this.logger.info("adopted pending commands", { count: pending.length });
      },
    },

    created() {
      this.mqttClient = undefined;
      this.mqttStopping = false;
      this.timers = new Map();
      this.inFlightEvents = new Set();
      this.lastEvent = Promise.resolve();
      this.stats = { sent: 0, acknowledged: 0, rejected: 0, timedOut: 0, acksHandled: 0 };
    },

    async started() {
      this.commands = this.db.collection<CommandDocument>("commands");
      await this.commands.createIndex({ device: 1, requestedAt: -1 });
      await this.commands.createIndex({ status: 1 });
      this.mqttClient = await this.connectMqtt();
      // In the background: a full scan on FerretDB must not hold up the start.
      this.adoptPendingCommands().catch((err: Error) => this.logger.warn("pending commands not adopted", { error: err.message }));
    },

    async stopped() {
      for (const timer of this.timers.values()) clearTimeout(timer);
      this.timers.clear();
      this.mqttStopping = true;
      await this.mqttClient?.endAsync();
      await settleWithin(Promise.allSettled([...this.inFlightEvents]), STOP_EVENT_WAIT_MS);
    },
  };
}
