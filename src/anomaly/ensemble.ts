// Runs several detectors on the same samples and combines their scores: "max" reports whatever
// any member sees (explained by that member), "mean" needs agreement. Cost: the sum of members.
import { plain } from "./sample.ts";
import type { DetectorResult, DetectorSnapshot, Sample, StreamingDetector } from "./types.ts";

export interface EnsembleOptions {
  combine?: "max" | "mean";
}

export class EnsembleDetector implements StreamingDetector {
  readonly kind = "ensemble";
  readonly members: StreamingDetector[];
  readonly options: EnsembleOptions;
  private readonly combine: "max" | "mean";

  constructor(members: StreamingDetector[], options: EnsembleOptions = {}) {
    if (members.length === 0) throw new RangeError("ensemble: needs at least one member");
    this.members = members;
    this.options = options;
    this.combine = options.combine ?? "max";
  }

  update(x: Sample, t?: number): DetectorResult {
    let best: DetectorResult | undefined;
    let sum = 0;
    const stats: Record<string, number> = {};
    let warmingUp = false;
    for (const member of this.members) {
      const r = member.update(x, t);
      stats[member.kind] = r.score;
      sum += r.score;
      warmingUp ||= r.explanation.warmingUp;
      if (best === undefined || r.score > best.score) best = r;
    }
    const top = best as DetectorResult;
    const score = this.combine === "max" ? top.score : sum / this.members.length;
    return { score, explanation: { detector: this.kind, warmingUp, tags: top.explanation.tags, stats: { ...stats, ...prefixed(top.explanation.detector, top.explanation.stats) } } };
  }

  snapshot(): DetectorSnapshot {
    return { kind: this.kind, version: 1, options: plain(this.options) as Record<string, unknown>, state: this.members.map((m) => m.snapshot()) };
  }
}

function prefixed(prefix: string, stats: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(stats)) out[`${prefix}.${key}`] = value;
  return out;
}
