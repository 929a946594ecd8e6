// Detector cost per sample at plant scale: D devices × T tags, one detector instance per device
// fed a T-value vector per scan. The stream is synthetic (a few shared latent factors plus noise,
// so that the tags of a device are correlated as real ones are) and pre-generated, so the timed
// loop holds only the detector updates.
import { createDetector } from "../../src/anomaly/factory.ts";
import type { DetectorSpec } from "../../src/anomaly/factory.ts";
import { mulberry32 } from "../../src/anomaly/random.ts";
import type { StreamingDetector } from "../../src/anomaly/types.ts";

export interface ThroughputResult {
  name: string;
  devices: number;
  tags: number;
  measuredScans: number;
  /** Mean wall time of one device update (T values), µs. */
  usPerDeviceSample: number;
  /** The same per tag value, µs. */
  usPerTagValue: number;
  /** Tag values per second one core sustains. */
  tagValuesPerSecond: number;
  /** Size of one device's checkpoint (JSON of snapshot()), bytes. */
  checkpointBytes: number;
}

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
}

/** `patterns` distinct device streams of `scans` × `tags` values; device d replays pattern d % patterns. */
export function syntheticStreams(patterns: number, scans: number, tags: number, seed = 7): number[][][] {
  const rand = mulberry32(seed);
  return Array.from({ length: patterns }, () => {
    const loadings = Array.from({ length: tags }, () => [gaussian(rand), gaussian(rand), gaussian(rand)]);
    const offsets = Array.from({ length: tags }, () => 50 + 50 * rand());
    const factors = [0, 0, 0];
    const rows: number[][] = [];
    for (let s = 0; s < scans; s++) {
      for (let f = 0; f < 3; f++) factors[f] = 0.95 * (factors[f] as number) + 0.3 * gaussian(rand);
      rows.push(loadings.map((l, i) => (offsets[i] as number) + l[0]! * factors[0]! + l[1]! * factors[1]! + l[2]! * factors[2]! + 0.3 * gaussian(rand)));
    }
    return rows;
  });
}

export function measureThroughput(name: string, spec: DetectorSpec, devices: number, tags: number, warmScans: number, measuredScans: number, streams: number[][][]): ThroughputResult {
  const names = Array.from({ length: tags }, (_, i) => `tag${i}`);
  const detectors: StreamingDetector[] = Array.from({ length: devices }, () => createDetector(spec, { tags: names }));
  const t0 = Date.UTC(2024, 0, 1);
  const feed = (from: number, to: number): void => {
    for (let s = from; s < to; s++) {
      const t = t0 + s * 1000;
      for (let d = 0; d < devices; d++) {
        const stream = streams[d % streams.length] as number[][];
        (detectors[d] as StreamingDetector).update(stream[(s + d) % stream.length] as number[], t);
      }
    }
  };
  feed(0, warmScans);
  const started = process.hrtime.bigint();
  feed(warmScans, warmScans + measuredScans);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const updates = devices * measuredScans;
  const usPerDeviceSample = (seconds * 1e6) / updates;
  return {
    name,
    devices,
    tags,
    measuredScans,
    usPerDeviceSample,
    usPerTagValue: usPerDeviceSample / tags,
    tagValuesPerSecond: (updates * tags) / seconds,
    checkpointBytes: Buffer.byteLength(JSON.stringify((detectors[0] as StreamingDetector).snapshot())),
  };
}
