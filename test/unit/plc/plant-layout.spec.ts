import { strict as assert } from "node:assert";
import { MACHINE_TYPES } from "../../../src/plc/model.ts";
import { isOwnedBy, plantLayout, shardOf } from "../../../src/plc/plant-layout.ts";
import { isValidLevel } from "../../../src/shared/topics.ts";

describe("plc plant layout", () => {
  it("spreads 20 PLCs round-robin over the machine types, numbered per type, in plausible areas and lines", () => {
    const plcs = plantLayout(20, 1, "plant1");
    assert.equal(plcs.length, 20);
    assert.deepEqual(plcs.slice(0, 6).map((p) => p.device), ["press-01", "oven-01", "pump-01", "conveyor-01", "compressor-01", "press-02"]);
    for (const type of MACHINE_TYPES) assert.equal(plcs.filter((p) => p.machineType === type).length, 4);
    assert.deepEqual(plcs.find((p) => p.device === "oven-03"), { ...plcs.find((p) => p.device === "oven-03"), site: "plant1", area: "paint-shop", line: "line2", index: 11 });
    assert.deepEqual(new Set(plcs.map((p) => p.area)), new Set(["press-shop", "paint-shop", "utilities", "assembly"]));
    assert.equal(new Set(plcs.map((p) => p.device)).size, 20, "unique ids");
    for (const plc of plcs) for (const level of [plc.site, plc.area, plc.line, plc.device]) assert.ok(isValidLevel(level), level);
    assert.equal(plantLayout(120, 1, "plant1")[115].device, "press-24");
    assert.ok(plantLayout(600, 1, "plant1").every((p) => isValidLevel(p.device) && isValidLevel(p.line)));
    assert.deepEqual(plantLayout(0, 1, "plant1"), []);
  });

  it("is deterministic; the seed changes each PLC's own seed, not the plant's shape", () => {
    assert.deepEqual(plantLayout(20, 7, "plant1"), plantLayout(20, 7, "plant1"));
    const a = plantLayout(20, 7, "plant1");
    const b = plantLayout(20, 8, "plant1");
    assert.deepEqual(a.map(({ seed: _s, ...rest }) => rest), b.map(({ seed: _s, ...rest }) => rest));
    assert.ok(a.every((p, i) => p.seed !== b[i].seed));
    assert.equal(new Set(a.map((p) => p.seed)).size, 20);
  });

  it("shards: every PLC is owned by exactly one replica, for any replica count", () => {
    const plcs = plantLayout(23, 1, "plant1");
    for (let n = 1; n <= 7; n++) {
      const shards = Array.from({ length: n }, (_, i) => shardOf(plcs, i, n));
      const owned = shards.flat().map((p) => p.device).sort();
      assert.deepEqual(owned, plcs.map((p) => p.device).sort(), `n=${n}: a partition`);
      for (const plc of plcs) assert.equal(shards.filter((s) => s.includes(plc)).length, 1);
      for (let i = 0; i < n; i++) assert.ok(shards[i].every((p) => isOwnedBy(p, i, n) && p.index % n === i));
      const sizes = shards.map((s) => s.length);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, "balanced");
    }
  });
});
