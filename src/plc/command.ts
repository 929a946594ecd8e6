// Commands as they arrive on a PLC's `cmd` topic: untrusted JSON, checked before the actor sees it.

import type { CommandPayload } from "../shared/types.ts";

export const COMMAND_ACTIONS: readonly CommandPayload["action"][] = ["start", "stop", "reset", "setpoint"];
const MAX_ID_LENGTH = 128;

export type ParsedCommand = { ok: true; command: CommandPayload } | { ok: false; id: string | undefined; reason: string };

/**
 * Parses a `cmd` payload. A command without a usable id cannot be acknowledged (nothing to match
 * the ack to), so `id` is undefined then; any other problem comes back with the id for a rejection.
 * A missing `ts` is filled with the receive time.
 */
export function parseCommand(payload: string, nowMs: number): ParsedCommand {
  let raw: unknown;
  try {
    raw = JSON.parse(payload);
  } catch {
    return { ok: false, id: undefined, reason: "payload is not JSON" };
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return { ok: false, id: undefined, reason: "payload is not a JSON object" };
  const obj = raw as Record<string, unknown>;
  const id = typeof obj.id === "string" && obj.id.length > 0 && obj.id.length <= MAX_ID_LENGTH ? obj.id : undefined;
  if (id === undefined) return { ok: false, id: undefined, reason: `id must be a string of 1 to ${MAX_ID_LENGTH} characters` };
  const reject = (reason: string): ParsedCommand => ({ ok: false, id, reason });
  if (typeof obj.action !== "string" || !(COMMAND_ACTIONS as readonly string[]).includes(obj.action)) {
    return reject(`action must be one of ${COMMAND_ACTIONS.join(", ")}`);
  }
  if (obj.tag !== undefined && typeof obj.tag !== "string") return reject("tag must be a string");
  if (obj.value !== undefined && (typeof obj.value !== "number" || !Number.isFinite(obj.value))) return reject("value must be a finite number");
  if (obj.ts !== undefined && (typeof obj.ts !== "number" || !Number.isFinite(obj.ts))) return reject("ts must be epoch milliseconds");
  const command: CommandPayload = { id, action: obj.action as CommandPayload["action"], ts: (obj.ts as number | undefined) ?? nowMs };
  if (obj.tag !== undefined) command.tag = obj.tag as string;
  if (obj.value !== undefined) command.value = obj.value as number;
  return { ok: true, command };
}
