import { strict as assert } from "node:assert";
import { bucketIdsInRange, bucketStart, bucketUpserts, historyPoints, latestValues } from "../../src/historian/buckets.ts";
import { mapWithConcurrency } from "../../src/shared/concurrency.ts";
import type { TelemetryRecord } from "../../src/shared/types.ts";

const HOUR = 3_600_000;
const t0 = 1_750_000_000_000 - (1_750_000_000_000 % HOUR);

function record(device: string, ts: number, seq: number, temp: number): TelemetryRecord {
  return { site: "s", area: "a", line: "l", device, ts, seq, receivedAt: ts, values: { temp: { v: temp, q: "good" } } };
}

/** Applies upserts the way MongoDB would, to check what the stored buckets end up holding. */
function applyUpserts(store: Map<string, { samples: Record<string, unknown>; first: number; last: number }>, records: TelemetryRecord[]): void {
  for (const { filter, update } of bucketUpserts(records, HOUR)) {
    const doc = store.get(filter._id) ?? { ...update.$setOnInsert, samples: {}, first: Infinity, last: -Infinity };
    for (const [path, sample] of Object.entries(update.$set)) doc.samples[path.slice("samples.".length)] = sample;
    doc.first = Math.min(doc.first, update.$min.first);
    doc.last = Math.max(doc.last, update.$max.last);
    store.set(filter._id, doc);
  }
}

describe("historian buckets", () => {
  it("groups a batch into one upsert per device and hour", () => {
    const upserts = bucketUpserts([record("a", t0 + 1, 1, 1), record("a", t0 + 2, 2, 2), record("a", t0 + HOUR, 3, 3), record("b", t0 + 5, 1, 1)], HOUR);
    assert.deepEqual(upserts.map((u) => u.filter._id).sort(), [`a:${t0}`, `a:${t0 + HOUR}`, `b:${t0}`]);
    const first = upserts.find((u) => u.filter._id === `a:${t0}`);
    assert.deepEqual(Object.keys(first?.update.$set ?? {}), [`samples.${t0 + 1}_1`, `samples.${t0 + 2}_2`]);
    assert.deepEqual([first?.update.$min.first, first?.update.$max.last], [t0 + 1, t0 + 2]);
    assert.equal(bucketStart(t0 + HOUR - 1, HOUR), t0);
  });

  it("stores a replayed batch exactly once", () => {
    const store = new Map();
    const batch = [record("a", t0 + 1000, 1, 10), record("a", t0 + 2000, 2, 11)];
    applyUpserts(store, batch);
    applyUpserts(store, batch);
    applyUpserts(store, [batch[1]]);
    const points = historyPoints([...store.values()], "temp", t0, t0 + HOUR, 100);
    assert.deepEqual(points.map((p) => p.seq), [1, 2]);
  });

  it("returns one tag's points in time order within the range, up to the limit", () => {
    const store = new Map();
    applyUpserts(store, [record("a", t0 + 3000, 3, 3), record("a", t0 + 1000, 1, 1), record("a", t0 + HOUR + 10, 4, 4), record("a", t0 + 2000, 2, 2)]);
    const buckets = [...store.values()];
    assert.deepEqual(historyPoints(buckets, "temp", t0, t0 + 2 * HOUR, 100).map((p) => p.v), [1, 2, 3, 4]);
    assert.deepEqual(historyPoints(buckets, "temp", t0 + 1500, t0 + 3000, 100).map((p) => p.v), [2, 3]);
    assert.deepEqual(historyPoints(buckets, "temp", t0, t0 + 2 * HOUR, 2).map((p) => p.v), [1, 2]);
    assert.deepEqual(historyPoints(buckets, "pressure", t0, t0 + 2 * HOUR, 100), []);
  });

  it("keeps the newest value per device and tag for the latest-value cache", () => {
    const latest = latestValues([record("a", t0 + 2000, 2, 20), record("a", t0 + 1000, 1, 10), record("b", t0, 1, 5)]);
    assert.deepEqual(latest.get("a"), { temp: { v: 20, q: "good", ts: t0 + 2000 } });
    assert.deepEqual(latest.get("b"), { temp: { v: 5, q: "good", ts: t0 } });
  });
});

describe("bucket ids for a query range", () => {
  it("covers every bucket the range touches, edges included", () => {
    assert.deepEqual(bucketIdsInRange("a", t0 + 10, t0 + 2 * HOUR, HOUR), [`a:${t0}`, `a:${t0 + HOUR}`, `a:${t0 + 2 * HOUR}`]);
    assert.deepEqual(bucketIdsInRange("a", t0 + 10, t0 + 20, HOUR), [`a:${t0}`]);
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
