import { strict as assert } from "node:assert";
import { bucketStart, historyPoints, latestValues, windowStartsInRange } from "../../src/historian/buckets.ts";
import { buildChunk, chunkId, chunkKeys, chunkSamples, columnValues, readWindowChunks } from "../../src/historian/chunks.ts";
import { mapWithConcurrency } from "../../src/shared/concurrency.ts";
import type { TelemetryRecord } from "../../src/shared/types.ts";

const HOUR = 3_600_000;
const t0 = 1_750_000_000_000 - (1_750_000_000_000 % HOUR);

function record(device: string, ts: number, seq: number, temp: number): TelemetryRecord {
  return { site: "s", area: "a", line: "l", device, ts, seq, receivedAt: ts, values: { temp: { v: temp, q: "good" } } };
}

describe("historian chunks", () => {
  it("builds one insert-only chunk document per plan, samples in time order, stored by column", () => {
    const odd: TelemetryRecord = { ...record("a", t0 + 2, 2, 2), values: { temp: { v: 2, q: "bad" }, door: { v: true, q: "uncertain" } } };
    const chunk = buildChunk({ device: "a", start: t0, n: 2, records: [record("a", t0 + 3, 3, 3), record("a", t0 + 1, 1, 1), odd] }, HOUR, 42);
    assert.equal(chunk._id, `a:${t0}:2`);
    assert.deepEqual([chunk.device, chunk.site, chunk.area, chunk.line, chunk.start, chunk.end, chunk.chunk], ["a", "s", "a", "l", t0, t0 + HOUR, 2]);
    assert.deepEqual([chunk.ts, chunk.seq], [[t0 + 1, t0 + 2, t0 + 3], [1, 2, 3]]);
    // A column of numbers only is packed; one with gaps or other values stays an array.
    assert.deepEqual(chunk.tags.map((c) => ({ ...c, v: columnValues(c) })), [
      { name: "temp", v: [1, 2, 3], bad: [1] },
      { name: "door", v: [null, true, null], uncertain: [1] },
    ]);
    assert.deepEqual(chunk.tags.map((c) => Array.isArray(c.v)), [false, true]);
    assert.deepEqual([chunk.first, chunk.last, chunk.count, chunk.writtenAt], [t0 + 1, t0 + 3, 3, 42]);
    assert.deepEqual(chunkKeys([chunk]), [[`${t0 + 1}_1`, `${t0 + 2}_2`, `${t0 + 3}_3`]]);
    // Read back: the same samples as written, absent values absent.
    assert.deepEqual(chunkSamples(chunk), [
      { ts: t0 + 1, seq: 1, values: { temp: { v: 1, q: "good" } } },
      { ts: t0 + 2, seq: 2, values: { temp: { v: 2, q: "bad" }, door: { v: true, q: "uncertain" } } },
      { ts: t0 + 3, seq: 3, values: { temp: { v: 3, q: "good" } } },
    ]);
    assert.deepEqual(chunkSamples(chunk, "door").map((s) => s.values), [{}, { door: { v: true, q: "uncertain" } }, {}]);
    assert.equal(bucketStart(t0 + HOUR - 1, HOUR), t0);
  });

  it("reads a window's chunks by _id, 0, 1, … until the first missing one", async () => {
    const stored = new Map([chunkId("a", t0, 0), chunkId("a", t0, 1), chunkId("a", t0, 3)].map((id) => [id, { id }]));
    const asked: string[] = [];
    const chunks = await readWindowChunks("a", t0, async (id) => (asked.push(id), stored.get(id) ?? null));
    assert.deepEqual(chunks.map((c) => c.id), [`a:${t0}:0`, `a:${t0}:1`]);
    assert.deepEqual(asked, [`a:${t0}:0`, `a:${t0}:1`, `a:${t0}:2`]);
  });

  it("returns one tag's points in time order within the range, each sample once, up to the limit", () => {
    const a = buildChunk({ device: "a", start: t0, n: 0, records: [record("a", t0 + 3000, 3, 3), record("a", t0 + 1000, 1, 1)] }, HOUR, 0);
    const b = buildChunk({ device: "a", start: t0 + HOUR, n: 0, records: [record("a", t0 + HOUR + 10, 4, 4)] }, HOUR, 0);
    const buffered = [record("a", t0 + 2000, 2, 2), record("a", t0 + 3000, 3, 3)];
    const samples = [...chunkSamples(a), ...chunkSamples(b), ...buffered];
    assert.deepEqual(historyPoints(samples, "temp", t0, t0 + 2 * HOUR, 100).map((p) => p.v), [1, 2, 3, 4]);
    assert.deepEqual(historyPoints(samples, "temp", t0 + 1500, t0 + 3000, 100).map((p) => p.v), [2, 3]);
    assert.deepEqual(historyPoints(samples, "temp", t0, t0 + 2 * HOUR, 2).map((p) => p.v), [1, 2]);
    assert.deepEqual(historyPoints(samples, "pressure", t0, t0 + 2 * HOUR, 100), []);
  });

  it("orders samples of the same timestamp by sequence number", () => {
    const points = historyPoints([record("a", t0, 7, 7), record("a", t0, 5, 5), record("a", t0 - 1, 9, 9)], "temp", t0 - 10, t0 + 10, 10);
    assert.deepEqual(points.map((p) => p.seq), [9, 5, 7]);
  });

  it("keeps the newest value per device and tag for the latest-value cache", () => {
    const latest = latestValues([record("a", t0 + 2000, 2, 20), record("a", t0 + 1000, 1, 10), record("b", t0, 1, 5)]);
    assert.deepEqual(latest.get("a"), { temp: { v: 20, q: "good", ts: t0 + 2000 } });
    assert.deepEqual(latest.get("b"), { temp: { v: 5, q: "good", ts: t0 } });
  });
});

describe("window starts for a query range", () => {
  it("covers every window the range touches, edges included", () => {
    assert.deepEqual(windowStartsInRange(t0 + 10, t0 + 2 * HOUR, HOUR), [t0, t0 + HOUR, t0 + 2 * HOUR]);
    assert.deepEqual(windowStartsInRange(t0 + 10, t0 + 20, HOUR), [t0]);
  });
});

describe("mapWithConcurrency", () => {
  it("keeps order and never exceeds the limit", async () => {
    let inFlight = 0;
    let peak = 0;
    const result = await mapWithConcurrency([5, 1, 4, 2, 3], 2, async (n) => {
      peak = Math.max(peak, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, n));
      inFlight--;
      return n * 10;
    });
    assert.deepEqual(result, [50, 10, 40, 20, 30]);
    assert.equal(peak, 2);
  });
});
