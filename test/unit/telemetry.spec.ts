import { strict as assert } from "node:assert";
import { deadLetter } from "../../src/ingest/dead-letter.ts";
import { normalizeState, normalizeTelemetry, parseJsonObject, TELEMETRY_LIMITS } from "../../src/ingest/telemetry.ts";
import type { TagDefinition } from "../../src/shared/types.ts";

const address = { site: "plant1", area: "press-shop", line: "line1", device: "press-01" };
const tags: TagDefinition[] = [{ name: "temp", unit: "°C", type: "number", min: 0, max: 200, lo: 10, hi: 90 }];
const now = 1_750_000_000_000;

function reasonOf(result: { ok: boolean; reason?: string }): string {
  assert.equal(result.ok, false);
  return result.reason ?? "";
}

describe("telemetry contract", () => {
  it("normalizes plain and {v, q} values into samples with quality", () => {
    const result = normalizeTelemetry({ ts: now, seq: 7, values: { temp: 21.5, running: true, mode: "auto", pressure: { v: 3.2, q: "uncertain" } } }, address, tags, now);
    assert.ok(result.ok);
    assert.deepEqual(result.value, {
      ...address,
      ts: now,
      seq: 7,
      receivedAt: now,
      values: { temp: { v: 21.5, q: "good" }, running: { v: true, q: "good" }, mode: { v: "auto", q: "good" }, pressure: { v: 3.2, q: "uncertain" } },
    });
  });

  it("marks numbers outside the engineering range as uncertain", () => {
    const result = normalizeTelemetry({ ts: now, seq: 1, values: { temp: 250 } }, address, tags, now);
    assert.ok(result.ok);
    assert.equal(result.value.values.temp.q, "uncertain");
  });

  it("rejects each contract violation with a reason naming the problem", () => {
    assert.match(reasonOf(normalizeTelemetry({ seq: 1, values: { a: 1 } }, address, tags, now)), /ts must be/);
    assert.match(reasonOf(normalizeTelemetry({ ts: now, seq: -1, values: { a: 1 } }, address, tags, now)), /seq must be/);
    assert.match(reasonOf(normalizeTelemetry({ ts: now, seq: 1.5, values: { a: 1 } }, address, tags, now)), /seq must be/);
    assert.match(reasonOf(normalizeTelemetry({ ts: now, seq: 1, values: [] }, address, tags, now)), /values must be/);
    assert.match(reasonOf(normalizeTelemetry({ ts: now, seq: 1, values: {} }, address, tags, now)), /values is empty/);
    assert.match(reasonOf(normalizeTelemetry({ ts: now, seq: 1, values: { "bad tag": 1 } }, address, tags, now)), /tag name/);
    assert.match(reasonOf(normalizeTelemetry({ ts: now, seq: 1, values: { a: null } }, address, tags, now)), /values\.a must be/);
    assert.match(reasonOf(normalizeTelemetry({ ts: now, seq: 1, values: { a: { v: 1, q: "great" } } }, address, tags, now)), /values\.a\.q/);
    assert.match(reasonOf(normalizeTelemetry({ ts: now, seq: 1, values: { a: "x".repeat(1000) } }, address, tags, now)), /longer than/);
    assert.match(reasonOf(normalizeTelemetry({ ts: now + TELEMETRY_LIMITS.maxFutureSkewMs + 1, seq: 1, values: { a: 1 } }, address, tags, now)), /clock skew/);
    assert.match(reasonOf(normalizeTelemetry({ ts: now - TELEMETRY_LIMITS.maxAgeMs - 1, seq: 1, values: { a: 1 } }, address, tags, now)), /older than/);
    const many = Object.fromEntries(Array.from({ length: TELEMETRY_LIMITS.maxTags + 1 }, (_, i) => [`t${i}`, i]));
    assert.match(reasonOf(normalizeTelemetry({ ts: now, seq: 1, values: many }, address, tags, now)), /more than/);
  });

  it("parses only UTF-8 JSON objects within the size limit", () => {
    assert.match(reasonOf(parseJsonObject(Buffer.from("{not json"), 1000)), /not UTF-8 JSON/);
    assert.match(reasonOf(parseJsonObject(Buffer.from("[1,2]"), 1000)), /not a JSON object/);
    assert.match(reasonOf(parseJsonObject(Buffer.from([0xff, 0xfe, 0x00]), 1000)), /not UTF-8 JSON/);
    assert.match(reasonOf(parseJsonObject(Buffer.alloc(2000, 32), 1000)), /exceeds the limit of 1000/);
    assert.deepEqual(parseJsonObject(Buffer.from('{"a":1}'), 1000), { ok: true, value: { a: 1 } });
  });

  it("rejects non-finite numbers that JSON cannot carry but a decoded object might", () => {
    assert.match(reasonOf(normalizeTelemetry({ ts: now, seq: 1, values: { a: Infinity } }, address, tags, now)), /finite/);
    assert.match(reasonOf(normalizeTelemetry({ ts: now, seq: 1, values: { a: NaN } }, address, tags, now)), /finite/);
  });

  it("validates birth messages and their tag definitions", () => {
    const birth = normalizeState({ state: "online", ts: now, machineType: "oven", tags: [{ name: "temp", unit: "°C", type: "number", min: 0, max: 300, hi: 250 }] });
    assert.ok(birth.ok);
    assert.deepEqual(birth.value.tags, [{ name: "temp", unit: "°C", type: "number", min: 0, max: 300, hi: 250 }]);
    assert.deepEqual(normalizeState({ state: "offline", ts: now }), { ok: true, value: { state: "offline", ts: now, machineType: undefined } });
    assert.match(reasonOf(normalizeState({ state: "sleeping", ts: now })), /state must be/);
    assert.match(reasonOf(normalizeState({ state: "online", ts: now, tags: [{ name: "t", type: "number", hi: "high" }] })), /tags\[0\]\.hi/);
    assert.match(reasonOf(normalizeState({ state: "online", ts: now, tags: [{ name: "t", type: "float" }] })), /tags\[0\]\.type/);
  });

  it("dead letters keep text payloads as UTF-8 and binary ones as base64", () => {
    assert.deepEqual(deadLetter("t", "r", Buffer.from("{oops"), 5), { source: "t", reason: "r", payload: "{oops", encoding: "utf8", at: 5 });
    const binary = deadLetter("t", "r", Buffer.from([0xff, 0x00, 0x80]), 5);
    assert.equal(binary.encoding, "base64");
    assert.deepEqual(Buffer.from(binary.payload, "base64"), Buffer.from([0xff, 0x00, 0x80]));
  });
});
