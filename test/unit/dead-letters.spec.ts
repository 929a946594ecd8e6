import { strict as assert } from "node:assert";
import { deadLetterDocument, deadLetterFilter, deadLetterId, DEAD_LETTER_ID } from "../../src/dead-letters/records.ts";
import { attemptUpdate, claimConflict, CLAIM_STALE_MS, countOutcomes, precheck, replayResult, type ReplayClaim } from "../../src/dead-letters/replay.ts";
import { ValidationError } from "../../src/shared/errors.ts";
import type { DeadLetterRecord } from "../../src/shared/types.ts";

const ROOT = "scada/v1";
const AT = Date.UTC(2025, 0, 1);
const COORDS = { topic: "t1.scada.deadletter.v1", partition: 2, offset: "41" };

function record(fields: Partial<DeadLetterRecord> = {}): Buffer {
  const r: DeadLetterRecord = { source: `${ROOT}/plant1/paint/line1/oven-01/telemetry`, code: "unknown-device", reason: 'unknown device "oven-01": no birth message registered it', payload: '{"ts":1}', encoding: "utf8", at: AT, ...fields };
  return Buffer.from(JSON.stringify(r));
}

describe("dead letters: stored documents", () => {
  it("are named by their Kafka coordinates, in a form REST paths accept", () => {
    const id = deadLetterId(COORDS);
    assert.equal(id, "t1.scada.deadletter.v1:2:41");
    assert.match(id, DEAD_LETTER_ID);
    for (const bad of ["", "x", "a:b:c", "t:1:2:3", "t/x:1:2", '{"$ne":1}:1:2']) assert.doesNotMatch(bad, DEAD_LETTER_ID, bad);
  });

  it("keep reason, code, source, device, payload and time; start new and unreplayed", () => {
    const doc = deadLetterDocument(record(), COORDS, ROOT, AT + 5);
    assert.deepEqual(doc, {
      _id: "t1.scada.deadletter.v1:2:41",
      code: "unknown-device",
      reason: 'unknown device "oven-01": no birth message registered it',
      source: `${ROOT}/plant1/paint/line1/oven-01/telemetry`,
      origin: "mqtt",
      device: "oven-01",
      payload: '{"ts":1}',
      encoding: "utf8",
      payloadBytes: 8,
      truncatedFrom: null,
      at: AT,
      storedAt: AT + 5,
      status: "new",
      attempts: 0,
      lastAttemptAt: null,
      lastCode: null,
      lastReason: null,
      replayedAt: null,
      replayedBy: null,
    });
  });

  it("tell the historian's unreadable Kafka records from MQTT input", () => {
    const doc = deadLetterDocument(record({ source: "t1.scada.telemetry.v1/0@17", code: undefined, encoding: "base64", payload: Buffer.from("garbage").toString("base64") }), COORDS, ROOT, AT);
    assert.deepEqual([doc.origin, doc.code, doc.device, doc.payloadBytes], ["kafka", "invalid-record", null, 7]);
  });

  it("give records without a code (older producers) the code other; a topic outside the namespace has no device", () => {
    const doc = deadLetterDocument(record({ code: undefined, source: "elsewhere/x" }), COORDS, ROOT, AT);
    assert.deepEqual([doc.origin, doc.code, doc.device], ["mqtt", "other", null]);
  });

  it("store a value that is not a dead-letter record as an unreplayable invalid-record, never drop it", () => {
    for (const value of [Buffer.from("not json"), Buffer.from('{"source":1}'), record({ code: "made-up" as "invalid-record" }), null]) {
      const doc = deadLetterDocument(value, COORDS, ROOT, AT);
      assert.equal(doc.code, "invalid-record");
      assert.equal(doc.origin, "kafka");
      assert.match(doc.reason, /^not a dead-letter record/);
      assert.equal(doc.payload, value?.toString("base64") ?? "");
      assert.equal(precheck(doc), "not-replayable");
    }
  });

  it("remember a payload the producer truncated, which cannot be replayed", () => {
    const doc = deadLetterDocument(record({ truncatedFrom: 200_000 }), COORDS, ROOT, AT);
    assert.equal(doc.truncatedFrom, 200_000);
    assert.equal(precheck(doc), "not-replayable");
  });
});

describe("dead letters: list and replay filters", () => {
  it("hold only literal values", () => {
    assert.deepEqual(deadLetterFilter({}), {});
    assert.deepEqual(deadLetterFilter({ reason: "unknown-device", device: "oven-01", status: "new", from: "1000", to: 2000 }), {
      code: "unknown-device",
      device: "oven-01",
      status: "new",
      at: { $gte: 1000, $lte: 2000 },
    });
    assert.deepEqual(deadLetterFilter({ from: "2025-01-01T00:00:00Z" }), { at: { $gte: AT } });
    assert.deepEqual(deadLetterFilter({ reason: "other" }), { code: "other" });
  });

  it("refuse anything else, naming the field", () => {
    const cases: [Parameters<typeof deadLetterFilter>[0], string][] = [
      [{ reason: "bad json" }, "reason"],
      [{ device: { $ne: "x" } as unknown as string }, "device"],
      [{ device: "$where" }, "device"],
      [{ status: "replaying" }, "status"],
      [{ from: "yesterday" }, "from"],
      [{ to: "soon" }, "to"],
      [{ from: 2000, to: 1000 }, "to"],
    ];
    for (const [params, field] of cases) {
      assert.throws(() => deadLetterFilter(params), (err: unknown) => err instanceof ValidationError && err.field === field, JSON.stringify(params));
    }
  });
});

describe("dead letters: replay decisions", () => {
  const claim = (state: ReplayClaim["state"], at: number): ReplayClaim => ({ _id: "x", state, at, by: "anonymous" });

  it("replay only MQTT input that was not replayed yet; a rejected one may be tried again", () => {
    assert.equal(precheck({ origin: "mqtt", status: "new", truncatedFrom: null }), null);
    assert.equal(precheck({ origin: "mqtt", status: "rejected", truncatedFrom: null }), null);
    assert.equal(precheck({ origin: "mqtt", status: "replayed", truncatedFrom: null }), "already-replayed");
    assert.equal(precheck({ origin: "kafka", status: "new", truncatedFrom: null }), "not-replayable");
  });

  it("a claim held by another replay: already replayed, still running, stale, or released meanwhile", () => {
    const now = AT + 1_000_000;
    assert.equal(claimConflict(claim("replayed", 0), now), "already-replayed");
    assert.equal(claimConflict(claim("replaying", now - 1_000), now), "in-progress");
    assert.equal(claimConflict(claim("replaying", now - CLAIM_STALE_MS - 1), now), "stale");
    assert.equal(claimConflict(null, now), "retry");
  });

  it("a forwarded replay marks the dead letter replayed by whom; a rejected one keeps the new reason", () => {
    assert.deepEqual(replayResult("x", { ok: true }), { id: "x", outcome: "replayed" });
    assert.deepEqual(attemptUpdate({ ok: true }, AT, "ana"), { status: "replayed", lastAttemptAt: AT, lastCode: null, lastReason: null, replayedAt: AT, replayedBy: "ana" });
    const rejected = { ok: false as const, code: "invalid-telemetry" as const, reason: "seq must be a non-negative integer" };
    assert.deepEqual(replayResult("x", rejected), { id: "x", outcome: "rejected", code: "invalid-telemetry", reason: "seq must be a non-negative integer" });
    assert.deepEqual(attemptUpdate(rejected, AT, "ana"), { status: "rejected", lastAttemptAt: AT, lastCode: "invalid-telemetry", lastReason: "seq must be a non-negative integer" });
  });

  it("counts outcomes, every outcome present", () => {
    assert.deepEqual(countOutcomes([{ id: "a", outcome: "replayed" }, { id: "b", outcome: "replayed" }, { id: "c", outcome: "already-replayed" }]), {
      replayed: 2,
      rejected: 0,
      "not-replayable": 0,
      "already-replayed": 1,
      "in-progress": 0,
      failed: 0,
    });
  });
});
