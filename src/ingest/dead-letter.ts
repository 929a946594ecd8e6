import type { DeadLetterRecord } from "../shared/types.ts";

/** Builds the dead-letter record for an input that cannot be processed; binary payloads go as base64. */
export function deadLetter(source: string, reason: string, payload: Buffer, now: number): DeadLetterRecord {
  let text: string | undefined;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(payload);
  } catch {
    text = undefined;
  }
  return text === undefined
    ? { source, reason, payload: payload.toString("base64"), encoding: "base64", at: now }
    : { source, reason, payload: text, encoding: "utf8", at: now };
}
