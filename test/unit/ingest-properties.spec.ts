// Property-based tests of the ingest validators: whatever arrives, they answer a record that keeps
// the documented invariants or a rejection with a reason, and never throw (docs/reliability.md).
import { strict as assert } from "node:assert";
import fc from "fast-check";
import { DEAD_LETTER_PAYLOAD_MAX, deadLetter } from "../../src/ingest/dead-letter.ts";
import { normalizeState, normalizeTelemetry, parseJsonObject, TELEMETRY_LIMITS, type Parsed } from "../../src/ingest/telemetry.ts";
import { parseDeviceTopic } from "../../src/shared/topics.ts";
import type { Quality, TagDefinition, TelemetryRecord } from "../../src/shared/types.ts";

const ROOT = "scada/v1";
const NOW = 1_750_000_000_000;
const MAX_BYTES = 65_536;
const QUALITIES = ["good", "uncertain", "bad"];
const TAG_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const tags: TagDefinition[] = [{ name: "temp", unit: "°C", type: "number", min: 0, max: 200 }];
const runs = { numRuns: 1000 };

function assertRejection(result: Parsed<unknown>): void {
  if (!result.ok) assert.ok(typeof result.reason === "string" && result.reason.length > 0, "a rejection has a reason");
}

/** Every invariant docs/reliability.md promises of an accepted telemetry record. */
function assertRecordInvariants(record: TelemetryRecord, inputTagCount: number): void {
  assert.ok(Number.isSafeInteger(record.ts) && record.ts > 0);
  assert.ok(record.ts <= NOW + TELEMETRY_LIMITS.maxFutureSkewMs && record.ts >= NOW - TELEMETRY_LIMITS.maxAgeMs, "ts within the skew bounds");
  assert.ok(Number.isSafeInteger(record.seq) && record.seq >= 0);
  assert.equal(record.receivedAt, NOW);
  const names = Object.keys(record.values);
  // No tag silently lost (a "__proto__" key once vanished here).
  assert.equal(names.length, inputTagCount);
  assert.ok(names.length >= 1 && names.length <= TELEMETRY_LIMITS.maxTags);
  for (const name of names) {
    assert.match(name, TAG_NAME);
    const { v, q } = record.values[name];
    assert.ok(QUALITIES.includes(q), `known quality, got ${q}`);
    if (typeof v === "number") assert.ok(Number.isFinite(v), "finite numbers only");
    else if (typeof v === "string") assert.ok(v.length <= TELEMETRY_LIMITS.maxStringLength);
    else assert.equal(typeof v, "boolean");
  }
  // What goes to Kafka as JSON comes back the same: no NaN, no -0, no undefined, no prototype keys.
  assert.deepEqual(JSON.parse(JSON.stringify(record)), record);
}

const address = { site: "plant1", area: "press-shop", line: "line1", device: "press-01" };

/**
 * JSON objects that look like telemetry: each field mostly valid, sometimes hostile, so that
 * most cases get past the first check and reach the deeper ones.
 */
const hostileNumber = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(NaN, Infinity, -Infinity, -0, 1e308, Number.MAX_SAFE_INTEGER + 2, 2 ** 64));
const validNumber = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(-0, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2));
const tagValue = fc.oneof(
  { arbitrary: fc.oneof(validNumber, fc.boolean(), fc.string({ maxLength: 40 })), weight: 6 },
  { arbitrary: fc.record({ v: fc.oneof(validNumber, hostileNumber, fc.string()), q: fc.oneof(fc.constantFrom(...QUALITIES), fc.string()) }, { requiredKeys: [] }), weight: 2 },
  { arbitrary: fc.oneof(hostileNumber, fc.string({ minLength: 250, maxLength: 300 }), fc.constant(null), fc.jsonValue({ maxDepth: 3 })), weight: 1 },
);
const tagName = fc.oneof(
  { arbitrary: fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/), weight: 6 },
  { arbitrary: fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty", "temp"), weight: 2 },
  { arbitrary: fc.oneof(fc.string(), fc.stringMatching(/^[A-Za-z0-9_.-]{65,70}$/)), weight: 1 },
);
const telemetryLike = fc.record(
  {
    ts: fc.oneof({ arbitrary: fc.integer({ min: NOW - TELEMETRY_LIMITS.maxAgeMs - 10, max: NOW + TELEMETRY_LIMITS.maxFutureSkewMs + 10 }), weight: 6 }, { arbitrary: fc.oneof(hostileNumber, fc.string()), weight: 1 }),
    seq: fc.oneof({ arbitrary: fc.nat(), weight: 6 }, { arbitrary: fc.oneof(hostileNumber, fc.string()), weight: 1 }),
    values: fc.oneof({ arbitrary: fc.dictionary(tagName, tagValue, { minKeys: 1, maxKeys: 8 }), weight: 6 }, { arbitrary: fc.jsonValue({ maxDepth: 2 }), weight: 1 }),
  },
  { requiredKeys: [] },
);

describe("ingest validators (property-based)", function () {
  this.timeout(60_000);

  it("parseJsonObject never throws on arbitrary bytes: a plain object or a reason", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.integer({ min: 1, max: 1024 }), (bytes, max) => {
        const result = parseJsonObject(Buffer.from(bytes), max);
        assertRejection(result);
        if (result.ok) assert.ok(typeof result.value === "object" && result.value !== null && !Array.isArray(result.value));
        if (bytes.length > max) assert.equal(result.ok, false);
      }),
      runs,
    );
  });

  it("parseJsonObject accepts exactly the JSON objects among arbitrary JSON texts", () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 6 }), (text) => {
        const result = parseJsonObject(Buffer.from(text), MAX_BYTES);
        assertRejection(result);
        const data: unknown = JSON.parse(text);
        assert.equal(result.ok, typeof data === "object" && data !== null && !Array.isArray(data));
      }),
      runs,
    );
  });

  it("normalizeTelemetry never throws: a record keeping every invariant or a reason", () => {
    fc.assert(
      fc.property(fc.oneof(telemetryLike, fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 }))), (data) => {
        const result = normalizeTelemetry(data, address, tags, NOW);
        assertRejection(result);
        if (result.ok) assertRecordInvariants(result.value, Object.keys(data.values as object).length);
      }),
      // Found by this property: seq -0 stored as -0, read back from Kafka as 0.
      { ...runs, examples: [[{ ts: NOW - 1_000, seq: -0, values: { a: 0 } }]] },
    );
  });

  it("the whole path from bytes and topic never throws and keeps the invariants", () => {
    const topic = fc.oneof(
      fc.constant(`${ROOT}/plant1/press-shop/line1/press-01/telemetry`),
      fc.array(fc.oneof(fc.stringMatching(/^[A-Za-z0-9_.-]{1,8}$/), fc.string({ maxLength: 70 })), { maxLength: 8 }).map((levels) => [ROOT, ...levels].join("/")),
      fc.string(),
    );
    const payload = fc.oneof(
      telemetryLike.map((d) => Buffer.from(JSON.stringify(d) ?? "")),
      fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.from(b)),
      fc.constantFrom('{"ts": NaN}', '{"seq": Infinity}', '{"ts":1e400}', "[".repeat(50_000) + "]".repeat(50_000), '{"values":{"a":1e400}}').map((s) => Buffer.from(s)),
    );
    fc.assert(
      fc.property(topic, payload, (t, bytes) => {
        const parsedTopic = parseDeviceTopic(ROOT, t);
        if (!parsedTopic) return;
        for (const level of [parsedTopic.site, parsedTopic.area, parsedTopic.line, parsedTopic.device]) assert.match(level, TAG_NAME);
        const json = parseJsonObject(bytes, MAX_BYTES);
        assertRejection(json);
        if (!json.ok) return;
        const result = normalizeTelemetry(json.value, parsedTopic, tags, NOW);
        assertRejection(result);
        if (result.ok) assertRecordInvariants(result.value, Object.keys(json.value.values as object).length);
      }),
      runs,
    );
  });

  it("valid payloads generated from the contract round-trip through bytes into the record", () => {
    const sample = fc.oneof(
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.boolean(),
      fc.string({ maxLength: TELEMETRY_LIMITS.maxStringLength }),
      fc.record({ v: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.string({ maxLength: 20 })), q: fc.constantFrom<Quality>("good", "uncertain", "bad") }),
    );
    const payload = fc.record({
      ts: fc.integer({ min: NOW - TELEMETRY_LIMITS.maxAgeMs, max: NOW + TELEMETRY_LIMITS.maxFutureSkewMs }),
      seq: fc.nat(),
      values: fc.dictionary(fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/).filter((n) => n !== "__proto__"), sample, { minKeys: 1, maxKeys: 20 }),
    });
    fc.assert(
      fc.property(payload, (p) => {
        const json = parseJsonObject(Buffer.from(JSON.stringify(p)), MAX_BYTES);
        assert.ok(json.ok);
        const result = normalizeTelemetry(json.value, address, tags, NOW);
        assert.ok(result.ok, result.ok ? "" : result.reason);
        assertRecordInvariants(result.value, Object.keys(p.values).length);
        assert.equal(result.value.ts, p.ts);
        assert.equal(result.value.seq, p.seq);
        for (const [name, raw] of Object.entries(p.values)) {
          const plain = typeof raw === "object" ? raw : { v: raw, q: "good" };
          const v = Object.is(plain.v, -0) ? 0 : plain.v;
          const outOfRange = name === "temp" && typeof v === "number" && (v < 0 || v > 200);
          assert.deepEqual(result.value.values[name], { v, q: plain.q === "good" && outOfRange ? "uncertain" : plain.q });
        }
      }),
      runs,
    );
  });

  it("normalizeState never throws: a valid birth/death or a reason", () => {
    const stateLike = fc.record(
      {
        state: fc.oneof(fc.constantFrom("online", "offline"), fc.string()),
        ts: fc.oneof(fc.integer({ min: 1 }), hostileNumber),
        machineType: fc.oneof(fc.string({ maxLength: 80 }), fc.integer()),
        tags: fc.oneof(fc.array(fc.record({ name: tagName, type: fc.constantFrom("number", "boolean", "string", "float"), unit: fc.oneof(fc.string({ maxLength: 40 }), fc.integer()), min: hostileNumber, hi: fc.oneof(hostileNumber, fc.string()) }, { requiredKeys: ["name"] }), { maxLength: 5 }), fc.jsonValue({ maxDepth: 2 })),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(stateLike, (data) => {
        const result = normalizeState(data);
        assertRejection(result);
        if (!result.ok) return;
        assert.ok(result.value.state === "online" || result.value.state === "offline");
        assert.ok(Number.isInteger(result.value.ts) && result.value.ts > 0);
        for (const tag of result.value.tags ?? []) {
          assert.match(tag.name, TAG_NAME);
          assert.notEqual(tag.name, "__proto__");
          assert.ok(tag.unit.length <= 32);
          for (const key of ["min", "max", "lo", "hi"] as const) if (tag[key] !== undefined) assert.ok(Number.isFinite(tag[key]));
        }
      }),
      runs,
    );
  });

  it("a dead letter is bounded in size, keeps the payload's start and says how big it was", () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)), fc.string({ maxLength: 200 }).map((s) => Buffer.from(s))), fc.nat({ max: 3 * DEAD_LETTER_PAYLOAD_MAX }), (head, padding) => {
        const payload = Buffer.concat([head, Buffer.alloc(padding, 0x61)]);
        const record = deadLetter("t", "r", payload, NOW);
        const kept = record.encoding === "base64" ? Buffer.from(record.payload, "base64") : Buffer.from(record.payload, "utf8");
        assert.ok(kept.length <= DEAD_LETTER_PAYLOAD_MAX);
        assert.deepEqual(kept, payload.subarray(0, kept.length));
        if (payload.length > DEAD_LETTER_PAYLOAD_MAX) assert.equal(record.truncatedFrom, payload.length);
        else assert.equal(record.truncatedFrom, undefined);
      }),
      { numRuns: 200 },
    );
  });
});
