// Small synthetic streams made by the tests themselves: seeded noise plus one injected anomaly.

import { mulberry32 } from "../../../src/anomaly/random.ts";

/** mulberry32: deterministic, so a failing test fails the same way every time. */
export const seeded = mulberry32;

export function gaussianNoise(n: number, seed: number, mean = 10, sd = 1): number[] {
  const rand = seeded(seed);
  return Array.from({ length: n }, () => mean + sd * Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand()));
}

export type AnomalyKind = "spike" | "burst" | "shift" | "drift" | "noise-burst" | "stuck";

/** Unit-variance noise around 10 with one anomaly starting at `at`. */
export function withAnomaly(kind: AnomalyKind, n: number, at: number, seed = 1): number[] {
  const x = gaussianNoise(n, seed);
  for (let i = at; i < n; i++) {
    const k = i - at;
    if (kind === "spike" && k === 0) x[i] = (x[i] as number) + 15;
    if (kind === "burst" && k < 6) x[i] = (x[i] as number) + 15;
    if (kind === "shift") x[i] = (x[i] as number) + 6;
    if (kind === "drift") x[i] = (x[i] as number) + 0.2 * k;
    if (kind === "noise-burst" && k < 60) x[i] = 10 + 5 * ((x[i] as number) - 10);
    if (kind === "stuck") x[i] = x[at] as number;
  }
  return x;
}

/** Three correlated tags (two follow the first); `breakAt` on, tag 2 stops following (a broken relation). */
export function correlatedDevice(n: number, seed: number, breakAt = Infinity): number[][] {
  const base = gaussianNoise(n, seed, 0, 1);
  const noise = gaussianNoise(3 * n, seed + 1, 0, 0.1);
  return base.map((b, i) => {
    const tag2 = i >= breakAt ? -2 * b : 2 * b;
    return [50 + b + (noise[3 * i] as number), 20 + 0.5 * b + (noise[3 * i + 1] as number), 80 + tag2 + (noise[3 * i + 2] as number)];
  });
}

export function maxOf(values: readonly number[], from = 0, to = values.length): number {
  let m = -Infinity;
  for (let i = from; i < to; i++) m = Math.max(m, values[i] as number);
  return m;
}
