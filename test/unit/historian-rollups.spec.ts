import { strict as assert } from "node:assert";
import fc from "fast-check";
import { Binary } from "mongodb";
import { buildChunk } from "../../src/historian/chunks.ts";
import { alignSeries, changePoints, chooseTier, exportCsv, retentionCutoffs, rollupPoints, sampleChanges, type TierLimits } from "../../src/historian/history-query.ts";
import { RollupTierBuffer } from "../../src/historian/rollup-buffer.ts";
import {
  addSample,
  buildRollupDoc,
  chunkContribution,
  emptyPeriodData,
  fromDocument,
  insertChange,
  mergePeriodData,
  TIERS,
  type ChangePoint,
  type PeriodData,
} from "../../src/historian/rollups.ts";
import type { TagValue, TelemetryRecord } from "../../src/shared/types.ts";

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const t0 = 1_750_000_000_000 - (1_750_000_000_000 % DAY);

function record(ts: number, seq: number, values: Record<string, TagValue>, bad: string[] = []): TelemetryRecord {
  return {
    site: "s",
    area: "a",
    line: "l",
    device: "d",
    ts,
    seq,
    receivedAt: ts,
    values: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, { v, q: bad.includes(k) ? ("bad" as const) : ("good" as const) }])),
  };
}

/** Aggregates computed the obvious way, for comparison. */
function expected(samples: { ts: number; v: number }[]) {
  const sorted = [...samples].sort((a, b) => a.ts - b.ts);
  const values = sorted.map((s) => s.v);
  return {
    count: values.length,
    sum: values.reduce((a, b) => a + b, 0),
    min: Math.min(...values),
    max: Math.max(...values),
    firstTs: sorted[0].ts,
    first: sorted[0].v,
    lastTs: sorted[sorted.length - 1].ts,
    last: sorted[sorted.length - 1].v,
  };
}

describe("historian rollups: aggregation", () => {
  it("aggregates a raw chunk per minute (min, max, sum, count, first/last) and leaves bad values out", () => {
    const records = [
      record(t0 + 1_000, 1, { temp: 10, run: true }),
      record(t0 + 30_000, 2, { temp: 30, run: true }),
      record(t0 + 59_000, 3, { temp: 20, run: false }),
      record(t0 + 61_000, 4, { temp: 99 }, ["temp"]),
      record(t0 + 62_000, 5, { temp: 5 }),
    ];
    const chunk = buildChunk({ device: "d", start: t0, n: 0, records }, 2 * MIN, 0);
    const data = chunkContribution(chunk, t0, HOUR, MIN);
    assert.deepEqual(data.num.get("temp")?.get(t0), { count: 3, sum: 60, min: 10, max: 30, firstTs: t0 + 1_000, first: 10, lastTs: t0 + 59_000, last: 20 });
    assert.deepEqual(data.num.get("temp")?.get(t0 + MIN), { count: 1, sum: 5, min: 5, max: 5, firstTs: t0 + 62_000, first: 5, lastTs: t0 + 62_000, last: 5 });
    assert.deepEqual(data.chg.get("run"), [
      { ts: t0 + 1_000, v: true },
      { ts: t0 + 59_000, v: false },
    ]);
    assert.equal(data.num.has("run"), false, "booleans are not aggregated");
  });

  it("only counts a chunk's samples within the period asked for", () => {
    const chunk = buildChunk({ device: "d", start: t0 + HOUR - MIN, n: 0, records: [record(t0 + HOUR - 1, 1, { temp: 1 }), record(t0 + HOUR, 2, { temp: 2 })] }, 2 * MIN, 0);
    assert.equal(chunkContribution(chunk, t0, HOUR, MIN).num.get("temp")?.get(t0 + HOUR - MIN)?.count, 1);
    assert.equal(chunkContribution(chunk, t0 + HOUR, HOUR, MIN).num.get("temp")?.get(t0 + HOUR)?.sum, 2);
  });

  it("merging contributions in any order and grouping equals aggregating all samples at once (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ ts: fc.integer({ min: 0, max: 3 * HOUR - 1 }), v: fc.integer({ min: -1000, max: 1000 }) }), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: 1, max: 5 }),
        (samples, parts) => {
          // Split into parts (as chunks would be), aggregate each at 1 m, merge into 1 h.
          const split: PeriodData[] = Array.from({ length: parts }, () => emptyPeriodData());
          samples.forEach((s, i) => addSample(split[i % parts], MIN, "x", t0 + s.ts, s.v));
          const merged = emptyPeriodData();
          for (const part of split.reverse()) mergePeriodData(merged, part, HOUR);
          for (let h = 0; h < 3; h++) {
            const inHour = samples.filter((s) => Math.floor(s.ts / HOUR) === h).map((s) => ({ ts: t0 + s.ts, v: s.v }));
            const got = merged.num.get("x")?.get(t0 + h * HOUR);
            if (inHour.length === 0) assert.equal(got, undefined);
            else {
              const want = expected(inHour);
              assert.deepEqual([got?.count, got?.sum, got?.min, got?.max, got?.firstTs, got?.lastTs], [want.count, want.sum, want.min, want.max, want.firstTs, want.lastTs]);
              // With equal timestamps first/last may come from either sample; the values must match one of them.
              assert.ok(inHour.some((s) => s.ts === got?.firstTs && s.v === got.first));
              assert.ok(inHour.some((s) => s.ts === got?.lastTs && s.v === got.last));
            }
          }
        },
      ),
    );
  });

  it("stores a period by column and reads it back unchanged", () => {
    const data = emptyPeriodData();
    addSample(data, MIN, "temp", t0 + 5, 1.5);
    addSample(data, MIN, "temp", t0 + MIN + 5, 2.5);
    addSample(data, MIN, "state", t0 + 7, "idle");
    const doc = buildRollupDoc("d", TIERS["1m"], t0, 2, ["d:1:0"], data, 42);
    assert.equal(doc._id, `d:${t0}:2`);
    assert.deepEqual([doc.start, doc.end, doc.n, doc.sources], [t0, t0 + HOUR, 2, ["d:1:0"]]);
    assert.ok(doc.tags[0].columns instanceof Binary, "a numeric tag's columns are packed");
    assert.deepEqual(doc.changes, [{ name: "state", ts: [t0 + 7], v: ["idle"] }]);
    assert.deepEqual(fromDocument(doc), data);
    assert.deepEqual([...fromDocument(doc, "state").num.keys(), ...fromDocument(doc, "state").chg.keys()], ["state"]);
    assert.deepEqual([...fromDocument(doc, "temp").num.get("temp")?.keys() ?? []], [t0, t0 + MIN]);
  });
});

describe("historian rollups: change-only storage", () => {
  it("keeps a value only when it differs from the one before it, in time order, whatever the arrival order", () => {
    const points: ChangePoint[] = [];
    for (const [ts, v] of [
      [1, "a"],
      [2, "a"],
      [4, "b"],
      [5, "b"],
      [7, "a"],
    ] as [number, string][]) {
      insertChange(points, ts, v);
    }
    assert.deepEqual(points, [
      { ts: 1, v: "a" },
      { ts: 4, v: "b" },
      { ts: 7, v: "a" },
    ]);
    // A late sample at 3 with "b": the change to b happened earlier, at 3.
    insertChange(points, 3, "b");
    assert.deepEqual(points.map((p) => p.ts), [1, 3, 7]);
    // A late sample at 0 with "a": the first point moves back.
    insertChange(points, 0, "a");
    assert.deepEqual(points.map((p) => p.ts), [0, 3, 7]);
  });

  it("change points from any split of a sample stream equal those of the whole stream (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 100 }), fc.integer({ min: 1, max: 4 }), (values, parts) => {
        const whole: ChangePoint[] = [];
        values.forEach((v, i) => insertChange(whole, i, v));
        const split: PeriodData[] = Array.from({ length: parts }, () => emptyPeriodData());
        // Contiguous runs, as periods split a stream.
        values.forEach((v, i) => addSample(split[Math.floor((i * parts) / values.length)], MIN, "b", i, v));
        assert.deepEqual(changePoints(split, "b", 0, values.length, 1_000).points, whole);
      }),
    );
  });

  it("reduces raw samples to changes, at most `points` of them", () => {
    const samples = [true, true, false, false, true].map((v, i) => ({ ts: i, seq: i, v, q: "good" as const }));
    assert.deepEqual(sampleChanges(samples, 10), { points: [{ ts: 0, v: true }, { ts: 2, v: false }, { ts: 4, v: true }], truncated: false });
    assert.deepEqual(sampleChanges(samples, 2).truncated, true);
  });
});

describe("historian rollups: the tier buffer", () => {
  const spec = TIERS["1m"];
  const grace = 5_000;
  const data = (v: number) => {
    const d = emptyPeriodData();
    addSample(d, MIN, "x", t0 + 1, v);
    return d;
  };

  it("refuses sources for a period that was not loaded", () => {
    const buffer = new RollupTierBuffer(spec, grace);
    assert.throws(() => buffer.add({ device: "d", start: t0 }, "c0", data(1), 0), /not loaded/);
  });

  it("counts a source once, whether it was stored already, added again, or found by a load", () => {
    const buffer = new RollupTierBuffer(spec, grace);
    const ref = { device: "d", start: t0 };
    // Stored document 0 lists c0; c1 is stored but in no document: the load finds it.
    buffer.learn(ref, [["c0"]], [{ id: "c0", data: data(100) }, { id: "c1", data: data(1) }]);
    assert.equal(buffer.add(ref, "c0", data(100), 0), false, "covered by document 0");
    assert.equal(buffer.add(ref, "c1", data(1), 0), false, "already pending");
    assert.equal(buffer.add(ref, "c2", data(2), 0), true);
    const [plan] = buffer.take(t0 + HOUR + grace, () => false);
    assert.deepEqual([plan.n, plan.sources.sort()], [1, ["c1", "c2"]]);
    assert.equal(plan.data.num.get("x")?.get(t0)?.sum, 3);
  });

  it("writes a period once it is over and nothing it waits for is pending, then late sources as the next document", () => {
    const buffer = new RollupTierBuffer(spec, grace);
    const ref = { device: "d", start: t0 };
    buffer.learn(ref, [], []);
    buffer.add(ref, "c0", data(1), t0 + 10 * MIN);
    assert.deepEqual(buffer.take(t0 + 30 * MIN, () => false), [], "the hour is not over");
    assert.deepEqual(buffer.take(t0 + HOUR + grace, () => true), [], "blocked (raw records of the hour not stored yet)");
    // The device's stream reaches the next hour: the hour is over, whatever the clock says.
    const next = { device: "d", start: t0 + HOUR };
    buffer.learn(next, [], []);
    buffer.add(next, "c60", data(5), t0 + 10 * MIN);
    const plans = buffer.take(t0 + 10 * MIN, () => false);
    assert.deepEqual(plans.map((p) => [p.start, p.n, p.sources]), [[t0, 0, ["c0"]]]);
    buffer.written(plans[0]);
    assert.equal(buffer.hasPending("d", t0, t0 + HOUR - 1), false);
    assert.equal(buffer.add(ref, "c0", data(1), 0), false, "written sources stay counted");
    assert.equal(buffer.add(ref, "c0-late", data(7), 0), true);
    assert.deepEqual(buffer.take(t0 + 10 * MIN, () => false).map((p) => [p.start, p.n, p.sources]), [[t0, 1, ["c0-late"]]]);
    // Queries see pending and recently written sources.
    assert.deepEqual(buffer.snapshot("d", t0, t0 + HOUR - 1, true).map((c) => c.id).sort(), ["c0", "c0-late"]);
    assert.deepEqual(buffer.snapshot("d", t0, t0 + HOUR - 1, false).map((c) => c.id), ["c0-late"]);
  });

  it("after a collision the period must be loaded again; after losing the device it is forgotten", () => {
    const buffer = new RollupTierBuffer(spec, grace);
    const ref = { device: "d", start: t0 };
    buffer.learn(ref, [], []);
    buffer.invalidate(ref);
    assert.deepEqual(buffer.toLoad([ref, ref]), [ref]);
    buffer.learn(ref, [], [{ id: "c0", data: data(1) }]);
    buffer.retainDevices(() => false);
    assert.equal(buffer.pendingSources, 0);
    assert.equal(buffer.knowsDevice("d"), false);
  });
});

describe("historian history queries", () => {
  const limits: TierLimits = { rawMaxSpanMs: 25 * HOUR, retentionMs: { raw: 7 * DAY, "1m": 90 * DAY, "1h": 1825 * DAY } };
  const now = t0 + 400 * DAY;

  it("picks the finest tier whose interval count fits in points, raw only within its span and retention", () => {
    assert.equal(chooseTier(now - 10 * MIN, now, 1000, now, limits), "raw");
    assert.equal(chooseTier(now - HOUR, now, 1000, now, limits), "1m", "3600 s of samples do not fit in 1000 points");
    assert.equal(chooseTier(now - HOUR, now, 10_000, now, limits), "raw");
    assert.equal(chooseTier(now - DAY, now, 100_000, now, limits), "raw");
    assert.equal(chooseTier(now - 2 * DAY, now, 100_000, now, limits), "1m", "beyond raw's maximum span");
    assert.equal(chooseTier(now - DAY, now, 1000, now, limits), "1h", "1441 minutes do not fit in 1000 points");
    assert.equal(chooseTier(now - DAY, now, 2000, now, limits), "1m");
    assert.equal(chooseTier(now - 30 * DAY, now, 1000, now, limits), "1h");
    assert.equal(chooseTier(now - 8 * DAY - HOUR, now - 8 * DAY, 10_000, now, limits), "1m", "raw is gone after 7 days");
    assert.equal(chooseTier(now - 100 * DAY - HOUR, now - 100 * DAY, 10_000, now, limits), "1h", "1 m is gone after 90 days");
    assert.equal(chooseTier(now - 5 * 365 * DAY, now, 10, now, limits), "1h", "when nothing fits, the coarsest");
  });

  it("answers rollup intervals with min/max/avg/count/first/last, merged into wider intervals when points are fewer", () => {
    const a = emptyPeriodData();
    const b = emptyPeriodData();
    for (let m = 0; m < 10; m++) addSample(m % 2 ? a : b, MIN, "x", t0 + m * MIN + 1, m);
    const fine = rollupPoints([a, b], "x", "1m", t0, t0 + 10 * MIN - 1, 100);
    assert.equal(fine.intervalMs, MIN);
    assert.deepEqual(fine.points.map((p) => p.avg), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const coarse = rollupPoints([a, b], "x", "1m", t0, t0 + 10 * MIN - 1, 3);
    assert.equal(coarse.intervalMs, 4 * MIN);
    assert.deepEqual(
      coarse.points.map((p) => [p.ts, p.count, p.min, p.max, p.avg, p.first, p.last]),
      [
        [t0, 4, 0, 3, 1.5, 0, 3],
        [t0 + 4 * MIN, 4, 4, 7, 5.5, 4, 7],
        [t0 + 8 * MIN, 2, 8, 9, 8.5, 8, 9],
      ],
    );
    assert.deepEqual(rollupPoints([a, b], "x", "1m", t0 + 3 * MIN, t0 + 4 * MIN, 100).points.map((p) => p.ts), [t0 + 3 * MIN, t0 + 4 * MIN], "intervals overlapping the range");
  });

  it("aligns tags by timestamp for export, holding state values, and writes CSV with a header", () => {
    const rows = alignSeries([
      { tag: "temp", series: { source: "raw", kind: "samples", points: [{ ts: 1, seq: 1, v: 10, q: "good" }, { ts: 3, seq: 2, v: 11, q: "good" }] } },
      { tag: "flow", series: { source: "raw", kind: "samples", points: [{ ts: 2, seq: 1, v: 5, q: "good" }] } },
      { tag: "mode", series: { source: "raw", kind: "changes", truncated: false, points: [{ ts: 2, v: "auto, fast" }] } },
    ]);
    assert.deepEqual(rows, [
      { ts: 1, values: { temp: 10, flow: null, mode: null } },
      { ts: 2, values: { temp: null, flow: 5, mode: "auto, fast" } },
      { ts: 3, values: { temp: 11, flow: null, mode: "auto, fast" } },
    ]);
    assert.equal(
      exportCsv(["temp", "flow", "mode"], rows),
      'ts,time,temp,flow,mode\n1,1970-01-01T00:00:00.001Z,10,,\n2,1970-01-01T00:00:00.002Z,,5,"auto, fast"\n3,1970-01-01T00:00:00.003Z,11,,"auto, fast"\n',
    );
  });

  it("retention cutoffs per tier", () => {
    assert.deepEqual(retentionCutoffs(now, limits.retentionMs), { raw: now - 7 * DAY, "1m": now - 90 * DAY, "1h": now - 1825 * DAY });
  });
});
