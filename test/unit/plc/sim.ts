// Helpers for the PLC simulator's unit tests: build actors and drive them through simulated time.
import type { MachineType } from "../../../src/plc/model.ts";
import { plantLayout } from "../../../src/plc/plant-layout.ts";
import { PlcActor, type PlcActorOptions } from "../../../src/plc/plc-actor.ts";
import type { CommandAck, CommandPayload, TagDefinition, TelemetryPayload } from "../../../src/shared/types.ts";

export const T0 = Date.UTC(2025, 0, 1);

/** The first PLC of a machine type in a five-PLC plant with the given seed. */
export function actorOf(machineType: MachineType, seed = 1, options: PlcActorOptions = {}): PlcActor {
  const definition = plantLayout(5, seed, "plant1").find((d) => d.machineType === machineType);
  if (!definition) throw new Error(`no ${machineType} in the layout`);
  return new PlcActor(definition, options);
}

/** A simulation clock shared by one test: scans an actor forward in fixed steps. */
export class SimClock {
  now: number;
  constructor(start = T0) {
    this.now = start;
  }

  /** Scans every `stepMs` for `seconds` seconds; returns the telemetry. */
  run(actor: PlcActor, seconds: number, stepMs = 1000): TelemetryPayload[] {
    const out: TelemetryPayload[] = [];
    const end = this.now + seconds * 1000;
    while (this.now + stepMs <= end) {
      this.now += stepMs;
      out.push(actor.scan(this.now));
    }
    return out;
  }

  /** Scans until `predicate` holds (or fails after `maxSeconds`); returns the telemetry. */
  runUntil(actor: PlcActor, predicate: (t: TelemetryPayload) => boolean, maxSeconds: number, stepMs = 1000): TelemetryPayload[] {
    const out: TelemetryPayload[] = [];
    const end = this.now + maxSeconds * 1000;
    while (this.now < end) {
      this.now += stepMs;
      const t = actor.scan(this.now);
      out.push(t);
      if (predicate(t)) return out;
    }
    throw new Error(`condition not reached within ${maxSeconds} s`);
  }
}

let commandCounter = 0;

export function command(actor: PlcActor, action: CommandPayload["action"], tag?: string, value?: number, nowMs = T0): CommandAck {
  const cmd: CommandPayload = { id: `c${++commandCounter}`, action, ts: nowMs };
  if (tag !== undefined) cmd.tag = tag;
  if (value !== undefined) cmd.value = value;
  return actor.handleCommand(cmd, nowMs);
}

export function num(t: TelemetryPayload, tag: string): number {
  const v = t.values[tag];
  if (typeof v !== "number") throw new Error(`${tag} is not a number: ${JSON.stringify(v)}`);
  return v;
}

export function series(samples: TelemetryPayload[], tag: string): number[] {
  return samples.map((t) => num(t, tag));
}

export function tagOf(actor: PlcActor, name: string): TagDefinition {
  const tag = actor.tags().find((t) => t.name === name);
  if (!tag) throw new Error(`${actor.device} has no tag ${name}`);
  return tag;
}

export function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

export function stdDev(xs: number[]): number {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length);
}

/** Least-squares line through (x, y): slope, intercept and R². */
export function linearFit(x: number[], y: number[]): { slope: number; intercept: number; r2: number } {
  const mx = mean(x);
  const my = mean(y);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < x.length; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  const slope = sxy / sxx;
  return { slope, intercept: my - slope * mx, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) };
}
