// Runs the PLC simulator's process models in-process on simulated time (no servers), injects
// faults with known windows, feeds every scan through the same alarm condition sources the
// anomaly-detector service runs, and scores the alarms operators would see against the ground
// truth. Used by bench/anomaly/simulator.ts and by the regression test.
import { AnomalyConditionSource, type AnomalyConditionOptions } from "../../src/alarms/anomaly-condition.ts";
import { ConditionEvaluator, type ConditionSource } from "../../src/alarms/condition-evaluator.ts";
import { normalizeTelemetry } from "../../src/ingest/telemetry.ts";
import { isProcessFaultType, MACHINE_TYPES, type MachineType } from "../../src/plc/model.ts";
import { tagSpecs } from "../../src/plc/models/index.ts";
import { plantLayout } from "../../src/plc/plant-layout.ts";
import { PlcActor } from "../../src/plc/plc-actor.ts";
import { Random } from "../../src/plc/random.ts";
import { createModel } from "../../src/plc/models/index.ts";
import type { FaultSpec, FaultType, GroundTruthRecord } from "../../src/shared/types.ts";

/** Simulated epoch: any fixed instant works, the models only see differences. */
export const SIM_T0 = Date.UTC(2026, 0, 5, 6, 0, 0);
/** An alarm raised this long after a fault window ended still counts as detecting it (process faults take time to die out). */
export const DETECTION_TOLERANCE_MS = 120_000;

/** A stop of a healthy machine, restarted `durationMs` later (run-state changes must not alarm). */
export interface SimStop {
  device: string;
  at: number;
  durationMs: number;
}

export interface SimScenario {
  /** Machines, as the plant layout numbers them. */
  plcCount: number;
  seed: number;
  scanMs: number;
  durationMs: number;
  /** Only these devices are simulated (default: all). */
  devices?: readonly string[];
  faults: readonly FaultSpec[];
  stops: readonly SimStop[];
}

/** An alarm onset as an operator sees it: the condition became active and is not suppressed. */
export interface SimAlarm {
  source: string;
  alarmId: string;
  device: string;
  ts: number;
  message: string;
}

export interface SimRun {
  alarms: SimAlarm[];
  truth: GroundTruthRecord[];
  /** Device time simulated, ms. */
  deviceMs: number;
  scans: number;
}

export type SourceFactory = () => ConditionSource;

/** The sources compared: the learned anomaly condition and the registry's limit conditions. */
export function anomalySource(options: AnomalyConditionOptions): SourceFactory {
  return () => new AnomalyConditionSource(options);
}
export const limitSource: SourceFactory = () => new ConditionEvaluator();

/** Runs one scenario through every source; each source gets its own state. */
export function simulate(scenario: SimScenario, sources: Record<string, SourceFactory>): SimRun {
  const layout = plantLayout(scenario.plcCount, scenario.seed, "plant1").filter((d) => !scenario.devices || scenario.devices.includes(d.device));
  const actors = layout.map((d) => new PlcActor(d));
  const tags = new Map(actors.map((a) => [a.device, a.tags()]));
  const truth: GroundTruthRecord[] = [];
  for (const fault of scenario.faults) {
    const actor = actors.find((a) => a.device === fault.device);
    if (actor) truth.push(actor.injectFault(fault, SIM_T0));
  }
  const instances = Object.entries(sources).map(([name, make]) => ({ name, source: make(), visible: new Map<string, boolean>() }));
  const commands = scenario.stops
    .flatMap((s) => [
      { device: s.device, at: SIM_T0 + s.at, action: "stop" as const },
      { device: s.device, at: SIM_T0 + s.at + s.durationMs, action: "start" as const },
    ])
    .sort((a, b) => a.at - b.at);
  const alarms: SimAlarm[] = [];
  let scans = 0;
  let next = 0;
  for (let t = SIM_T0; t < SIM_T0 + scenario.durationMs; t += scenario.scanMs) {
    while (next < commands.length && (commands[next] as { at: number }).at <= t) {
      const c = commands[next++] as (typeof commands)[number];
      actors.find((a) => a.device === c.device)?.handleCommand({ id: `sim-${next}`, action: c.action, ts: t }, t);
    }
    for (const actor of actors) {
      const payload = actor.scan(t);
      const deviceTags = tags.get(actor.device) ?? [];
      const parsed = normalizeTelemetry(payload as unknown as Record<string, unknown>, actor.address, deviceTags, t);
      if (!parsed.ok) throw new Error(`simulated telemetry rejected: ${parsed.reason}`);
      scans++;
      for (const { name, source, visible } of instances) {
        for (const tr of source.evaluate(parsed.value, deviceTags, t)) {
          const shown = tr.state === "active" && !tr.suppressed;
          if (shown && !visible.get(tr.alarmId)) alarms.push({ source: name, alarmId: tr.alarmId, device: tr.device, ts: tr.ts, message: tr.message ?? "" });
          visible.set(tr.alarmId, shown);
        }
      }
    }
  }
  return { alarms, truth, deviceMs: actors.length * scenario.durationMs, scans };
}

/** The fault types a machine type can have: every sensor fault, and the process faults its model knows. */
export function supportsFault(machineType: MachineType, type: FaultType): boolean {
  if (!isProcessFaultType(type)) return true;
  return createModel(machineType, new Random(1), true).processFaultTags[type] !== undefined;
}

/** Analog tags of a machine type: what sensor faults can act on. */
export function analogTags(machineType: MachineType): string[] {
  return tagSpecs(machineType)
    .filter((t) => t.kind === "analog")
    .map((t) => t.name);
}

export interface ScheduleOptions {
  plcCount: number;
  seed: number;
  type: FaultType | null;
  /** Faults to inject (ignored for a healthy schedule). */
  faults: number;
  /** Healthy learning time before the first fault. */
  learnMs: number;
  /** Healthy time between a fault's end and the next fault on the device. */
  gapMs: [number, number];
  durationMs: [number, number];
  severity: [number, number];
  /** Chance that a stop/start of the machine falls into a gap. */
  stopChance: number;
  /** Healthy schedules: how long to run. */
  healthyMs?: number;
}

/** Random fault windows and machine stops, one device after another, faults on devices that support the type. */
export function schedule(options: ScheduleOptions): SimScenario {
  const rng = new Random(options.seed);
  const layout = plantLayout(options.plcCount, options.seed, "plant1");
  const eligible = options.type === null ? layout : layout.filter((d) => supportsFault(d.machineType, options.type as FaultType));
  if (eligible.length === 0) throw new Error(`no machine supports ${options.type}`);
  const cursor = new Map(eligible.map((d) => [d.device, options.learnMs]));
  const faults: FaultSpec[] = [];
  const stops: SimStop[] = [];
  const gap = (): number => rng.uniform(options.gapMs[0], options.gapMs[1]);
  const addGap = (device: string): void => {
    let at = cursor.get(device) ?? 0;
    const length = gap();
    if (rng.next() < options.stopChance) {
      // The stop sits in the middle of the gap, with healthy running on both sides.
      const stopMs = Math.round(rng.uniform(5, 15) * 60_000);
      stops.push({ device, at: Math.round(at + length / 3), durationMs: stopMs });
      at += stopMs;
    }
    cursor.set(device, Math.round(at + length));
  };
  if (options.type === null) {
    for (const d of eligible) while ((cursor.get(d.device) ?? 0) < (options.healthyMs ?? 0)) addGap(d.device);
    return { plcCount: options.plcCount, seed: options.seed, scanMs: 1000, durationMs: options.healthyMs ?? 0, devices: eligible.map((d) => d.device), faults, stops };
  }
  for (let i = 0; i < options.faults; i++) {
    const d = eligible[i % eligible.length] as (typeof eligible)[number];
    const start = cursor.get(d.device) ?? 0;
    const durationMs = Math.round(rng.uniform(options.durationMs[0], options.durationMs[1]));
    const tags = analogTags(d.machineType);
    const tag = isProcessFaultType(options.type) ? undefined : tags[Math.floor(rng.next() * tags.length)];
    faults.push({ device: d.device, type: options.type, ...(tag ? { tag } : {}), start: SIM_T0 + start, durationMs, severity: Math.round(rng.uniform(options.severity[0], options.severity[1]) * 100) / 100 });
    cursor.set(d.device, start + durationMs + DETECTION_TOLERANCE_MS);
    addGap(d.device);
  }
  const durationMs = Math.max(...cursor.values());
  return { plcCount: options.plcCount, seed: options.seed, scanMs: 1000, durationMs, devices: eligible.map((d) => d.device), faults, stops };
}

export interface SourceScore {
  faults: number;
  detected: number;
  alarms: number;
  truePositives: number;
  falsePositives: number;
  /** Detection delays of the detected faults (first alarm onset − fault start), ms. */
  delays: number[];
  /** Device time outside every fault window (plus tolerance), hours. */
  healthyHours: number;
  /** Which faults were detected, by faultId. */
  detectedIds: Set<string>;
}

/**
 * An alarm onset is a true positive when it falls in [start, end + tolerance] of a fault on its
 * device (the fault counts as detected by its first such onset); any other onset is a false positive.
 */
export function scoreRun(run: SimRun, source: string, toleranceMs = DETECTION_TOLERANCE_MS): SourceScore {
  const byDevice = new Map<string, GroundTruthRecord[]>();
  for (const f of run.truth) byDevice.set(f.device, [...(byDevice.get(f.device) ?? []), f]);
  const firstOnset = new Map<string, number>();
  let tp = 0;
  let fp = 0;
  for (const alarm of run.alarms) {
    if (alarm.source !== source) continue;
    const fault = (byDevice.get(alarm.device) ?? []).find((f) => alarm.ts >= f.start && alarm.ts <= f.end + toleranceMs);
    if (!fault) {
      fp++;
      continue;
    }
    tp++;
    if (!firstOnset.has(fault.faultId)) firstOnset.set(fault.faultId, alarm.ts);
  }
  const windowMs = run.truth.reduce((sum, f) => sum + (f.end - f.start) + toleranceMs, 0);
  return {
    faults: run.truth.length,
    detected: firstOnset.size,
    alarms: tp + fp,
    truePositives: tp,
    falsePositives: fp,
    delays: run.truth.filter((f) => firstOnset.has(f.faultId)).map((f) => (firstOnset.get(f.faultId) as number) - f.start),
    healthyHours: (run.deviceMs - windowMs) / 3_600_000,
    detectedIds: new Set(firstOnset.keys()),
  };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export { MACHINE_TYPES };
