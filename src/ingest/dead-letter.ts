import type { DeadLetterRecord } from "../shared/types.ts";

/**
 * Payload bytes a dead letter keeps. Kafka refuses records over 1 MB (message.max.bytes), and a
 * refused dead letter would be redelivered forever: hostile input must not block the subscription.
 */
export const DEAD_LETTER_PAYLOAD_MAX = 64 * 1024;

function utf8(bytes: Buffer): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Builds the dead-letter record for an input that cannot be processed; binary payloads go as base64.
 * A payload over DEAD_LETTER_PAYLOAD_MAX keeps its start (cut on a UTF-8 character boundary) and
 * its original size in `truncatedFrom`.
 */
export function deadLetter(source: string, reason: string, payload: Buffer, now: number): DeadLetterRecord {
  let end = Math.min(payload.length, DEAD_LETTER_PAYLOAD_MAX);
  // Step back over UTF-8 continuation bytes so a cut text stays text.
  while (end < payload.length && end > 0 && (payload[end] & 0xc0) === 0x80) end--;
  const kept = payload.subarray(0, end);
  const text = utf8(kept);
  const record: DeadLetterRecord =
    text === undefined ? { source, reason, payload: kept.toString("base64"), encoding: "base64", at: now } : { source, reason, payload: text, encoding: "utf8", at: now };
  if (end < payload.length) record.truncatedFrom = payload.length;
  return record;
}
