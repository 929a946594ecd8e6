import { strict as assert } from "node:assert";
import fc from "fast-check";
import { Binary, BSON } from "mongodb";
import { packColumns, packNumbers, unpackColumns, unpackNumbers } from "../../src/historian/packed.ts";

/** What MongoDB hands back: the Binary after a BSON round trip. */
function throughBson(packed: Binary): Binary {
  return BSON.deserialize(BSON.serialize({ packed })).packed as Binary;
}

describe("historian packed number columns", () => {
  it("round-trips any float64 exactly, through BSON too (NaN, -0, ±Infinity, large and tiny values)", () => {
    fc.assert(
      fc.property(fc.array(fc.double()), (values) => {
        assert.deepEqual(unpackNumbers(packNumbers(values)), values);
        assert.deepEqual(unpackNumbers(throughBson(packNumbers(values))), values);
      }),
    );
    const edge = [NaN, -0, 0, Infinity, -Infinity, Number.MAX_VALUE, Number.MIN_VALUE, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1_750_000_000_123];
    const back = unpackNumbers(throughBson(packNumbers(edge)));
    assert.ok(Object.is(back[0], NaN) && Object.is(back[1], -0) && Object.is(back[2], 0), "NaN and the sign of zero are kept");
    assert.deepEqual(back, edge);
  });

  it("packs nothing as an empty Binary and reads it back as no values", () => {
    assert.equal(packNumbers([]).length(), 0);
    assert.deepEqual(unpackNumbers(throughBson(packNumbers([]))), []);
    assert.deepEqual(unpackColumns(packColumns([[], [], []]), 3), [[], [], []]);
  });

  it("packs equal-length columns one after the other and splits them again", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 60 }), (count, length) => {
        const columns = Array.from({ length: count }, (_, c) => Array.from({ length }, (_, i) => c * 1e12 + i / 3));
        assert.deepEqual(unpackColumns(throughBson(packColumns(columns)), count), columns);
      }),
    );
    assert.throws(() => unpackColumns(packNumbers([1, 2, 3]), 2), /do not split into 2 columns/);
  });
});
