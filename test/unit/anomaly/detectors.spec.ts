import { strict as assert } from "node:assert";
import { DETECTOR_KINDS, createDetector, restoreDetector } from "../../../src/anomaly/factory.ts";
import type { DetectorKind, DetectorSpec } from "../../../src/anomaly/factory.ts";
import { symmetricEigen } from "../../../src/anomaly/jacobi.ts";
import { squash, unsquash } from "../../../src/anomaly/robust-level.ts";
import type { StreamingDetector } from "../../../src/anomaly/types.ts";
import { correlatedDevice, gaussianNoise, maxOf, withAnomaly } from "./synthetic.ts";
import type { AnomalyKind } from "./synthetic.ts";

const N = 700;
const AT = 400;
const SECOND = 1000;

/** seasonal-z needs a cycle it can learn within the test: 60 samples, 6 slots of 10, warm after 10 per slot. */
function specFor(kind: DetectorKind): DetectorSpec {
  return kind === "seasonal-z" ? { kind, options: { period: 60 * SECOND, slots: 6, warmup: 10 } } : ({ kind } as DetectorSpec);
}

function run(detector: StreamingDetector, xs: readonly (number | number[])[]): number[] {
  return xs.map((x, i) => detector.update(x, i * SECOND).score);
}

/** A daily-cycle stand-in for seasonal-z: a sine of 60 samples on top of the noise. */
function seasonal(xs: number[], kind: DetectorKind): number[] {
  return kind === "seasonal-z" ? xs.map((v, i) => v + 5 * Math.sin((2 * Math.PI * i) / 60)) : xs;
}

// What each detector is for. A change detector clips single samples (one glitch is not a change),
// so it is shown a 6-sample burst instead of a 1-sample spike; the volatility detector watches the
// spread, not the level, so it is shown a noise burst and a stuck sensor instead of a shift/drift.
const EXPECTED: Record<DetectorKind, AnomalyKind[]> = {
  "robust-z": ["spike", "shift", "drift", "noise-burst"],
  "seasonal-z": ["spike", "shift", "drift"],
  volatility: ["spike", "noise-burst", "stuck"],
  cusum: ["burst", "shift", "drift"],
  "page-hinkley": ["burst", "shift", "drift"],
  pca: ["spike", "shift", "drift", "noise-burst"],
  ensemble: ["spike", "shift", "drift", "noise-burst"],
};

describe("anomaly detectors", () => {
  for (const kind of DETECTOR_KINDS) {
    describe(kind, () => {
      for (const anomaly of EXPECTED[kind]) {
        it(`scores a clear ${anomaly} at least 0.5 and far above steady noise`, () => {
          const scores = run(createDetector(specFor(kind)), seasonal(withAnomaly(anomaly, N, AT), kind));
          const during = maxOf(scores, AT, AT + 100);
          const before = maxOf(scores, 150, AT);
          assert.ok(during >= 0.5, `max score during the ${anomaly}: ${during.toFixed(3)}`);
          assert.ok(during > before + 0.15, `during ${during.toFixed(3)} vs before ${before.toFixed(3)}`);
        });
      }

      it("keeps steady noise below 0.5", () => {
        for (const seed of [11, 12, 13]) {
          const scores = run(createDetector(specFor(kind)), seasonal(gaussianNoise(N, seed), kind));
          assert.ok(maxOf(scores, 150) < 0.5, `seed ${seed}: max ${maxOf(scores, 150).toFixed(3)}`);
        }
      });

      it("scores 0 while warming up, even on an outlier", () => {
        const detector = createDetector(specFor(kind));
        const xs = gaussianNoise(40, 3);
        xs[30] = 1e6;
        for (const [i, x] of xs.entries()) {
          const r = detector.update(x, i * SECOND);
          assert.equal(r.score, 0);
          assert.equal(r.explanation.warmingUp, true);
        }
      });

      it("survives a constant signal (MAD = 0) and still reacts when it moves", () => {
        const detector = createDetector(specFor(kind));
        const flat = new Array<number>(AT).fill(42);
        for (const s of run(detector, flat)) assert.equal(s, 0);
        const moved = [43, 43, 43, 43, 43, 43, 43, 43].map((v, i) => detector.update(v, (AT + i) * SECOND).score);
        for (const s of moved) assert.ok(Number.isFinite(s) && s >= 0 && s <= 1, `score ${s}`);
        if (kind !== "volatility") assert.ok(maxOf(moved) > 0.5, `reaction ${maxOf(moved).toFixed(3)}`);
      });

      it("ignores NaN, Infinity and missing values: no crash, no evidence, nothing learnt", () => {
        const xs = seasonal(withAnomaly("shift", 500, 450, 4), kind);
        const clean = createDetector(specFor(kind));
        const dirty = createDetector(specFor(kind));
        const bad = [NaN, Infinity, -Infinity, undefined as unknown as number];
        xs.forEach((x, i) => {
          const gap = dirty.update(bad[i % 4] as number, i * SECOND);
          assert.equal(gap.score, 0, "a missing value carries no evidence");
          assert.equal(dirty.update(x, i * SECOND).score, clean.update(x, i * SECOND).score);
        });
      });

      it("restores from a JSON checkpoint and continues identically", () => {
        const xs = seasonal(withAnomaly("shift", 500, 450, 5), kind);
        const a = createDetector(specFor(kind));
        run(a, xs.slice(0, 300));
        const b = restoreDetector(JSON.parse(JSON.stringify(a.snapshot())));
        const rest = xs.slice(300).map((x, i) => [a.update(x, (300 + i) * SECOND).score, b.update(x, (300 + i) * SECOND).score]);
        for (const [sa, sb] of rest) assert.equal(sb, sa);
      });
    });
  }

  it("handle device vectors: a spike on one tag is explained by that tag, with its robust z", () => {
    const names = ["temp", "pressure", "flow"];
    const rows = correlatedDevice(500, 21);
    (rows[450] as number[])[1] = 40; // pressure jumps from about 20 to 40
    for (const kind of ["robust-z", "pca"] as const) {
      const detector = createDetector(kind, { tags: names });
      const results = rows.map((r) => detector.update(r));
      const hit = results[450];
      assert.ok(hit && hit.score > 0.5, `${kind}: ${hit?.score}`);
      assert.equal(hit.explanation.tags[0]?.tag, "pressure");
      assert.ok((hit.explanation.tags[0]?.z ?? 0) > 10, `${kind}: z ${hit.explanation.tags[0]?.z}`);
      assert.equal(hit.explanation.tags[0]?.value, 40);
    }
  });

  it("pca sees a broken relation between tags that each stay in their normal range", () => {
    const names = ["a", "b", "c"];
    const rows = correlatedDevice(600, 31, 450);
    const pca = run(createDetector({ kind: "pca" }, { tags: names }), rows);
    const robust = run(createDetector({ kind: "robust-z" }, { tags: names }), rows);
    assert.ok(maxOf(pca, 450, 470) > 0.5, `pca ${maxOf(pca, 450, 470).toFixed(3)}`);
    assert.ok(maxOf(pca, 150, 450) < 0.5, `pca before ${maxOf(pca, 150, 450).toFixed(3)}`);
    assert.ok(maxOf(robust, 450, 470) < maxOf(pca, 450, 470), "the per-tag baseline sees less of it");
  });

  it("event mode reports the onset of a long excursion once, not on every sample", () => {
    const xs = withAnomaly("shift", 3000, 2500, 8);
    const scores = run(createDetector({ kind: "robust-z", rarity: { memory: 2000 }, onset: { hold: 288 } }), xs);
    const alarms = scores.map((s, i) => (s >= 0.5 ? i : -1)).filter((i) => i >= 0);
    assert.ok(alarms.length >= 1 && alarms.length <= 3, `alarms at ${alarms.join(",")}`);
    assert.ok((alarms[0] as number) >= 2500 && (alarms[0] as number) < 2510);
  });

  it("squash and unsquash are inverse, with 0.5 at zHalf", () => {
    assert.equal(squash(6, 6), 0.5);
    assert.equal(squash(0, 6), 0);
    assert.equal(squash(NaN, 6), 0);
    assert.ok(Math.abs(unsquash(squash(9, 6), 6) - 9) < 1e-9);
  });

  it("symmetricEigen reconstructs a symmetric matrix", () => {
    const a = [4, 1, 2, 1, 3, 0.5, 2, 0.5, 5];
    const { values, vectors } = symmetricEigen(a, 3);
    assert.ok((values[0] as number) >= (values[1] as number) && (values[1] as number) >= (values[2] as number));
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < 3; c++) {
        let v = 0;
        for (let k = 0; k < 3; k++) v += (vectors[r * 3 + k] as number) * (values[k] as number) * (vectors[c * 3 + k] as number);
        assert.ok(Math.abs(v - (a[r * 3 + c] as number)) < 1e-9);
      }
    }
  });
});
