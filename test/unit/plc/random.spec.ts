import { strict as assert } from "node:assert";
import { deriveSeed, Random } from "../../../src/plc/random.ts";
import { mean, stdDev } from "./sim.ts";

describe("plc random numbers", () => {
  it("repeat exactly under the same seed and differ under another", () => {
    const draw = (seed: number) => {
      const rng = new Random(seed);
      return Array.from({ length: 100 }, () => rng.next());
    };
    assert.deepEqual(draw(42), draw(42));
    assert.notDeepEqual(draw(42), draw(43));
  });

  it("give uniform numbers in [0, 1) and Gaussian numbers with the asked mean and deviation", () => {
    const rng = new Random(7);
    const u = Array.from({ length: 20_000 }, () => rng.next());
    assert.ok(u.every((x) => x >= 0 && x < 1));
    assert.ok(Math.abs(mean(u) - 0.5) < 0.01);
    const g = Array.from({ length: 20_000 }, () => rng.gaussian(10, 2));
    assert.ok(Math.abs(mean(g) - 10) < 0.05, `mean ${mean(g)}`);
    assert.ok(Math.abs(stdDev(g) - 2) < 0.05, `sd ${stdDev(g)}`);
  });

  it("give Poisson counts with the asked mean, small and large", () => {
    const rng = new Random(3);
    for (const m of [0.3, 4, 80]) {
      const k = Array.from({ length: 10_000 }, () => rng.poisson(m));
      assert.ok(k.every((x) => Number.isInteger(x) && x >= 0));
      assert.ok(Math.abs(mean(k) - m) < 0.05 * m + 0.02, `mean ${mean(k)} for ${m}`);
    }
  });

  it("derive distinct, stable child seeds from a seed and a label", () => {
    assert.equal(deriveSeed(1, "press-01"), deriveSeed(1, "press-01"));
    const seeds = new Set(["press-01", "press-02", "oven-01", "sensors", "process"].flatMap((label) => [deriveSeed(1, label), deriveSeed(2, label)]));
    assert.equal(seeds.size, 10);
  });
});
