import { Binary } from "mongodb";

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Numbers packed as one BSON Binary of little-endian float64s. FerretDB 1.24 (SQLite) stores a
 * document as JSON and decodes every field of it on each read, so a column of numbers costs one
 * value per element; packed, it is one string. Measured (docs/benchmarks.md, layout probe): a 1 m
 * rollup document (20 tags × 60 minutes × 9 columns) reads in ~16 ms instead of ~230 ms, a raw
 * window in ~6 ms instead of ~24 ms. Float64 keeps every number exactly (integers up to 2^53,
 * -0, NaN, ±Infinity).
 */
export function packNumbers(values: readonly number[]): Binary {
  if (!LITTLE_ENDIAN) throw new Error("packed columns are little-endian float64: this platform is big-endian");
  return new Binary(new Uint8Array(Float64Array.from(values).buffer));
}

export function unpackNumbers(packed: Binary): number[] {
  // Copied into a buffer of its own: a Binary read from BSON is a view into the reply (a Node
  // Buffer, whose slice() is a view too), not aligned to 8 bytes.
  return Array.from(new Float64Array(new Uint8Array(packed.value()).buffer));
}

/** Several index-aligned columns of equal length, packed one after the other. */
export function packColumns(columns: readonly (readonly number[])[]): Binary {
  return packNumbers(columns.flat());
}

/** The `count` equal-length columns of packColumns again. */
export function unpackColumns(packed: Binary, count: number): number[][] {
  const values = unpackNumbers(packed);
  const length = values.length / count;
  if (!Number.isInteger(length)) throw new Error(`packed columns: ${values.length} values do not split into ${count} columns`);
  return Array.from({ length: count }, (_, c) => values.slice(c * length, (c + 1) * length));
}
