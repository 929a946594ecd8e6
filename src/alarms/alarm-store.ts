import type { AnyBulkWriteOperation } from "mongodb";
import type { AlarmDocument, AlarmTransition } from "../shared/types.ts";

/** Idempotent write of one transition: replaying a partition leaves the same documents. */
export function alarmWrite(t: AlarmTransition): AnyBulkWriteOperation<AlarmDocument> {
  const identity = { device: t.device, tag: t.tag, kind: t.kind, limit: t.limit };
  if (t.state === "active") {
    return {
      updateOne: {
        filter: { _id: t.alarmId },
        update: { $setOnInsert: { ...identity, state: "active", value: t.value, activatedAt: t.ts, clearedAt: null, updatedAt: t.ts } },
        upsert: true,
      },
    };
  }
  return {
    updateOne: {
      filter: { _id: t.alarmId },
      update: { $set: { state: "cleared", clearedAt: t.ts, updatedAt: t.ts }, $setOnInsert: { ...identity, value: t.value, activatedAt: t.ts } },
      upsert: true,
    },
  };
}

