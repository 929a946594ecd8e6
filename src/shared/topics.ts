import type { DeviceAddress, DeviceDocument } from "./types.ts";

export const KAFKA_TOPICS = {
  telemetry: "scada.telemetry.v1",
  alarms: "scada.alarms.v1",
  events: "scada.events.v1",
  deadletter: "scada.deadletter.v1",
} as const;

export type KafkaTopicKind = keyof typeof KAFKA_TOPICS;

/** The Kafka topic of a kind under a prefix (KAFKA_TOPIC_PREFIX). */
export function kafkaTopic(prefix: string, kind: KafkaTopicKind): string {
  return prefix + KAFKA_TOPICS[kind];
}

export type MessageKind = "telemetry" | "state" | "cmd" | "cmd/ack";

export interface ParsedTopic extends DeviceAddress {
  kind: MessageKind;
}

const LEVEL = /^[A-Za-z0-9_.-]{1,64}$/;

export function isValidLevel(level: string): boolean {
  return LEVEL.test(level);
}

/** A registry document's address: the registry keeps the device id as `_id` only. */
export function addressOf(device: Pick<DeviceDocument, "_id" | "site" | "area" | "line">): DeviceAddress {
  return { site: device.site, area: device.area, line: device.line, device: device._id };
}

export function deviceTopic(root: string, address: DeviceAddress, kind: MessageKind): string {
  return `${root}/${address.site}/${address.area}/${address.line}/${address.device}/${kind}`;
}

/** Subscription filter for every device's messages of one kind under the root. */
export function kindFilter(root: string, kind: MessageKind): string {
  return `${root}/+/+/+/+/${kind}`;
}

/** Parses `{root}/{site}/{area}/{line}/{device}/{kind}`; null when it is not one. */
export function parseDeviceTopic(root: string, topic: string): ParsedTopic | null {
  if (!topic.startsWith(root + "/")) return null;
  const levels = topic.slice(root.length + 1).split("/");
  let kind: MessageKind;
  if (levels.length === 5 && (levels[4] === "telemetry" || levels[4] === "state" || levels[4] === "cmd")) {
    kind = levels[4];
  } else if (levels.length === 6 && levels[4] === "cmd" && levels[5] === "ack") {
    kind = "cmd/ack";
  } else {
    return null;
  }
  const [site, area, line, device] = levels;
  if (![site, area, line, device].every(isValidLevel)) return null;
  return { site, area, line, device, kind };
}
