// Supervisory commands as the control service keeps them: validation against the device registry,
// the stored command and its life cycle (pending → acknowledged / rejected / timed_out), ack
// matching, and the audit records and Kafka events each step produces. No Moleculer, MQTT or
// MongoDB here: the service does the I/O, these functions decide.

import type { AuditInput } from "../audit/chain.ts";
import type { CommandAck, CommandPayload, DeviceAddress, DeviceDocument, TagDefinition } from "../shared/types.ts";

export type CommandAction = CommandPayload["action"];
export const COMMAND_ACTIONS: readonly CommandAction[] = ["start", "stop", "reset", "setpoint"];

export type CommandStatus = "pending" | "acknowledged" | "rejected" | "timed_out";

/** What a client asks for (`POST /api/devices/{id}/commands`). */
export interface CommandRequest {
  action: CommandAction;
  tag?: string;
  value?: number;
}

/** The PLC's answer to a command that had already timed out: kept, since the PLC did act on it. */
export interface LateAck {
  status: CommandAck["status"];
  reason: string | null;
  ts: number;
  receivedAt: number;
}

/** A command in the `commands` collection, keyed by its id. */
export interface CommandDocument extends DeviceAddress {
  _id: string;
  action: CommandAction;
  tag?: string;
  value?: number;
  status: CommandStatus;
  /** The PLC's reason for a rejection, or why the command timed out. */
  reason: string | null;
  /** Who sent it. */
  user: string;
  requestedAt: number;
  /** After this time (epoch ms) a pending command is timed out. */
  deadline: number;
  /** When it left pending (the ack's arrival or the timeout), null while pending. */
  completedAt: number | null;
  /** The PLC's own timestamp of its ack, null without one. */
  ackTs: number | null;
  lateAck?: LateAck;
}

/** A command as the REST API shows it. */
export type CommandView = Omit<CommandDocument, "_id"> & { id: string };

export type CommandEventType = "command.sent" | "command.acknowledged" | "command.rejected" | "command.timedOut";

/** A command lifecycle event on `scada.events.v1`, keyed by device id. */
export interface CommandEvent extends DeviceAddress {
  type: CommandEventType;
  id: string;
  action: CommandAction;
  tag?: string;
  value?: number;
  user: string;
  status: CommandStatus;
  reason: string | null;
  ts: number;
}

export type CommandAuditAction = CommandEventType | "command.lateAck";

/**
 * A command step for the audit trail (src/audit/): the entry, and the key under which it is
 * written once, so handling a redelivered ack again adds nothing to the chain.
 */
export interface CommandAuditRecord {
  key: string;
  input: AuditInput;
}

export type Validated<T> = { ok: true; value: T } | { ok: false; field: string; message: string };

/**
 * Whether a registry tag is a setpoint a command may write. The birth's tag list has no kind, so
 * this relies on the naming every machine model follows (`temp_sp`, `valve_sp`, ...; see
 * docs/plc-simulator.md): a numeric tag whose name ends in `_sp`.
 */
export function isSetpointTag(tag: TagDefinition): boolean {
  return tag.type === "number" && tag.name.endsWith("_sp");
}

/**
 * Checks a request against the device's tags: a setpoint needs a setpoint tag of this device and
 * a finite number inside the tag's engineering range; the other actions take neither.
 * The PLC checks again (and knows its run state): this catches what the registry already tells.
 */
export function validateCommand(request: CommandRequest, device: Pick<DeviceDocument, "_id" | "tags">): Validated<CommandRequest> {
  const { action, tag, value } = request;
  if (!COMMAND_ACTIONS.includes(action)) return { ok: false, field: "action", message: `action must be one of ${COMMAND_ACTIONS.join(", ")}` };
  if (action !== "setpoint") {
    if (tag !== undefined) return { ok: false, field: "tag", message: `tag is only used with the setpoint action, not with ${action}` };
    if (value !== undefined) return { ok: false, field: "value", message: `value is only used with the setpoint action, not with ${action}` };
    return { ok: true, value: { action } };
  }
  const setpoints = device.tags.filter(isSetpointTag);
  const names = setpoints.map((t) => t.name).join(", ") || "none";
  if (tag === undefined) return { ok: false, field: "tag", message: `tag is required for setpoint (setpoints of ${device._id}: ${names})` };
  const spec = setpoints.find((t) => t.name === tag);
  if (!spec) return { ok: false, field: "tag", message: `tag "${tag}" is not a setpoint of ${device._id} (setpoints: ${names})` };
  if (value === undefined) return { ok: false, field: "value", message: `value is required for setpoint ${tag}` };
  if (typeof value !== "number" || !Number.isFinite(value)) return { ok: false, field: "value", message: "value must be a finite number" };
  if ((spec.min !== undefined && value < spec.min) || (spec.max !== undefined && value > spec.max)) {
    const unit = spec.unit ? ` ${spec.unit}` : "";
    return { ok: false, field: "value", message: `value ${value}${unit} is outside the range of ${tag}: ${spec.min ?? "-∞"}..${spec.max ?? "∞"}${unit}` };
  }
  return { ok: true, value: { action, tag, value } };
}

/** A new pending command for a validated request. */
export function newCommand(id: string, device: DeviceDocument, request: CommandRequest, user: string, nowMs: number, timeoutMs: number): CommandDocument {
  return {
    _id: id,
    site: device.site,
    area: device.area,
    line: device.line,
    device: device._id,
    action: request.action,
    ...(request.tag !== undefined && { tag: request.tag }),
    ...(request.value !== undefined && { value: request.value }),
    status: "pending",
    reason: null,
    user,
    requestedAt: nowMs,
    deadline: nowMs + timeoutMs,
    completedAt: null,
    ackTs: null,
  };
}

/** What goes on the device's `cmd` topic. */
export function commandPayload(command: CommandDocument): CommandPayload {
  const payload: CommandPayload = { id: command._id, action: command.action, ts: command.requestedAt };
  if (command.tag !== undefined) payload.tag = command.tag;
  if (command.value !== undefined) payload.value = command.value;
  return payload;
}

/** Parses a `cmd/ack` payload (untrusted JSON from the broker). */
export function parseAck(payload: string): Validated<CommandAck> {
  let raw: unknown;
  try {
    raw = JSON.parse(payload);
  } catch {
    return { ok: false, field: "payload", message: "ack is not JSON" };
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return { ok: false, field: "payload", message: "ack is not a JSON object" };
  const obj = raw as Record<string, unknown>;
  if (typeof obj.id !== "string" || obj.id.length === 0 || obj.id.length > 128) return { ok: false, field: "id", message: "ack id must be a string of 1 to 128 characters" };
  if (obj.status !== "accepted" && obj.status !== "rejected") return { ok: false, field: "status", message: 'ack status must be "accepted" or "rejected"' };
  if (obj.reason !== undefined && typeof obj.reason !== "string") return { ok: false, field: "reason", message: "ack reason must be a string" };
  if (typeof obj.ts !== "number" || !Number.isFinite(obj.ts)) return { ok: false, field: "ts", message: "ack ts must be epoch milliseconds" };
  const ack: CommandAck = { id: obj.id, status: obj.status, ts: obj.ts };
  if (obj.reason !== undefined) ack.reason = obj.reason as string;
  return { ok: true, value: ack };
}

/** The fields a transition sets on the stored command (one update per transition). */
export type CommandUpdate = Pick<CommandDocument, "status" | "reason" | "completedAt" | "ackTs">;

/**
 * What an ack means for the command it names:
 * - complete: the pending command is acknowledged or rejected now;
 * - duplicate: this very ack completed it already (a redelivery): nothing to change;
 * - late: the command timed out before the ack came: the state stays, the ack is recorded;
 * - ignored: the ack does not belong to this command (another device) or contradicts its outcome.
 */
export type AckOutcome =
  | { kind: "complete"; update: CommandUpdate }
  | { kind: "duplicate" }
  | { kind: "late"; lateAck: LateAck }
  | { kind: "ignored"; reason: string };

export function ackOutcome(command: CommandDocument, device: string, ack: CommandAck, nowMs: number): AckOutcome {
  if (command._id !== ack.id) return { kind: "ignored", reason: `ack ${ack.id} does not name command ${command._id}` };
  // The ack must come from the device the command went to: an id alone must not complete it.
  if (command.device !== device) return { kind: "ignored", reason: `command ${command._id} was sent to ${command.device}, not ${device}` };
  const status: CommandStatus = ack.status === "accepted" ? "acknowledged" : "rejected";
  const reason = ack.status === "rejected" ? (ack.reason ?? "rejected by the PLC without a reason") : null;
  switch (command.status) {
    case "pending":
      return { kind: "complete", update: { status, reason, completedAt: nowMs, ackTs: ack.ts } };
    case "timed_out":
      if (command.lateAck) return { kind: "duplicate" };
      return { kind: "late", lateAck: { status: ack.status, reason, ts: ack.ts, receivedAt: nowMs } };
    default:
      if (command.status === status && command.ackTs === ack.ts) return { kind: "duplicate" };
      return { kind: "ignored", reason: `command ${command._id} is already ${command.status}` };
  }
}

/** The update that times out a pending command, or null when it is not pending or not yet due. */
export function timeoutUpdate(command: CommandDocument, nowMs: number, timeoutMs: number): CommandUpdate | null {
  if (command.status !== "pending" || nowMs < command.deadline) return null;
  return { status: "timed_out", reason: `no acknowledgement from ${command.device} within ${timeoutMs} ms`, completedAt: nowMs, ackTs: null };
}

export function withUpdate(command: CommandDocument, update: CommandUpdate): CommandDocument {
  return { ...command, ...update };
}

const EVENT_OF: Record<CommandStatus, CommandEventType> = {
  pending: "command.sent",
  acknowledged: "command.acknowledged",
  rejected: "command.rejected",
  timed_out: "command.timedOut",
};

/** The event a command's current status stands for. */
export function eventOf(command: CommandDocument): CommandEventType {
  return EVENT_OF[command.status];
}

export function commandEvent(command: CommandDocument, ts: number): CommandEvent {
  const { _id, site, area, line, device, action, tag, value, user, status, reason } = command;
  const event: CommandEvent = { type: eventOf(command), id: _id, site, area, line, device, action, user, status, reason, ts };
  if (tag !== undefined) event.tag = tag;
  if (value !== undefined) event.value = value;
  return event;
}

export function auditRecord(command: CommandDocument, event: CommandAuditAction, at: number, reason: string | null = command.reason): CommandAuditRecord {
  const { _id, device, action, tag, value, user, status } = command;
  return {
    key: `command:${_id}:${event}`,
    // The user is who sent the command, also on the steps the PLC or a timer caused.
    input: { action: event, subject: "command", subjectId: _id, user, at, details: { device, action, tag, value, status, reason } },
  };
}

/** The audit record of an ack that came after the command's timeout. */
export function lateAckRecord(command: CommandDocument, lateAck: LateAck): CommandAuditRecord {
  const reason = `${lateAck.status} by the PLC after the timeout${lateAck.reason ? `: ${lateAck.reason}` : ""}`;
  return auditRecord(command, "command.lateAck", lateAck.receivedAt, reason);
}

/**
 * Who sent a command: the authenticated user the gateway puts in `ctx.meta.user` (a name, or an
 * object with an id or name), else "anonymous" (authentication comes with a later issue).
 */
export function requesterOf(user: unknown): string {
  if (typeof user === "string" && user !== "") return user;
  if (typeof user === "object" && user !== null) {
    const { id, username, name } = user as Record<string, unknown>;
    for (const candidate of [id, username, name]) if ((typeof candidate === "string" && candidate !== "") || typeof candidate === "number") return String(candidate);
  }
  return "anonymous";
}

export function commandView(command: CommandDocument): CommandView {
  const { _id, ...rest } = command;
  return { id: _id, ...rest };
}
