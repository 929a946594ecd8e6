// One simulated PLC: scan cycle over a process model, sensor layer, run state, commands, faults.

import type {
  CommandAck,
  CommandPayload,
  DeviceAddress,
  FaultSpec,
  GroundTruthRecord,
  RunState,
  StatePayload,
  TagDefinition,
  TagValue,
  TelemetryPayload,
} from "../shared/types.ts";
import { FaultSet } from "./faults.ts";
import type { MachineType, ProcessModel } from "./model.ts";
import { createModel } from "./models/index.ts";
import type { PlcDefinition } from "./plant-layout.ts";
import { deriveSeed, Random } from "./random.ts";
import { commandTransition, driveMode, processTransition } from "./run-state.ts";
import { measure, NO_EFFECT } from "./sensor.ts";
import { STATE_TAG, toTagDefinition, type TagSpec } from "./tags.ts";

/** Longest physics step: a late or long scan is integrated in steps of at most this (seconds). */
export const MAX_STEP_S = 1;

export interface PlcActorOptions {
  /** Start at the running operating point, in state `starting` (default), or cold and stopped. */
  warm?: boolean;
}

export class PlcActor {
  readonly definition: PlcDefinition;
  readonly address: DeviceAddress;
  readonly #model: ProcessModel;
  readonly #noise: Random;
  readonly #faults: FaultSet;
  readonly #tags: readonly TagSpec[];
  #state: RunState;
  #tripReason: string | null = null;
  #nextSeq = 0;
  #lastScanMs: number | undefined;
  #lastValues: Record<string, TagValue> = {};

  constructor(definition: PlcDefinition, options: PlcActorOptions = {}) {
    const warm = options.warm ?? true;
    this.definition = definition;
    const { site, area, line, device } = definition;
    this.address = { site, area, line, device };
    this.#model = createModel(definition.machineType, new Random(deriveSeed(definition.seed, "process")), warm);
    this.#noise = new Random(deriveSeed(definition.seed, "sensors"));
    this.#faults = new FaultSet(device, this.#model, deriveSeed(definition.seed, "faults"));
    this.#tags = [...this.#model.tags, STATE_TAG];
    this.#state = warm ? "starting" : "stopped";
  }

  get device(): string {
    return this.definition.device;
  }

  get machineType(): MachineType {
    return this.definition.machineType;
  }

  get runState(): RunState {
    return this.#state;
  }

  /** Why the machine tripped (while faulted), else null. */
  get tripReason(): string | null {
    return this.#tripReason;
  }

  /** seq of the last telemetry message, null before the first. Kept across reconnects. */
  get lastSeq(): number | null {
    return this.#nextSeq === 0 ? null : this.#nextSeq - 1;
  }

  tags(): TagDefinition[] {
    return this.#tags.map(toTagDefinition);
  }

  /**
   * One scan: steps the physics with the real time elapsed since the previous scan (sub-stepped,
   * so a late tick does not distort it), then reads every tag through its sensor.
   */
  scan(nowMs: number): TelemetryPayload {
    const from = this.#lastScanMs ?? nowMs;
    this.#lastScanMs = Math.max(from, nowMs);
    let t = from;
    while (t < nowMs) {
      const stepMs = Math.min(MAX_STEP_S * 1000, nowMs - t);
      t += stepMs;
      this.#model.step(stepMs / 1000, driveMode(this.#state), this.#faults.disturbances(t));
      this.#followProcess();
    }
    const values = this.#read(nowMs);
    this.#faults.expire(nowMs);
    return { ts: nowMs, seq: this.#nextSeq++, values };
  }

  birth(nowMs: number): StatePayload {
    return { state: "online", ts: nowMs, machineType: this.machineType, tags: this.tags() };
  }

  death(nowMs: number): StatePayload {
    return { state: "offline", ts: nowMs };
  }

  handleCommand(command: CommandPayload, nowMs: number = Date.now()): CommandAck {
    const accept = (): CommandAck => ({ id: command.id, status: "accepted", ts: nowMs });
    const reject = (reason: string): CommandAck => ({ id: command.id, status: "rejected", reason, ts: nowMs });
    if (command.action === "setpoint") {
      const problem = this.#checkSetpoint(command.tag, command.value);
      if (problem) return reject(problem);
      this.#model.setSetpoint(command.tag as string, command.value as number);
      return accept();
    }
    if (command.action !== "start" && command.action !== "stop" && command.action !== "reset") {
      return reject(`unknown action "${String(command.action)}"`);
    }
    const transition = commandTransition(this.#state, command.action, this.#model.tripReason());
    if (!transition.ok) return reject(transition.reason);
    if (this.#state === "faulted" && transition.next !== "faulted") this.#tripReason = null;
    this.#state = transition.next;
    return accept();
  }

  /** Schedules a fault; returns its ground truth. Throws FaultSpecError when it cannot be injected. */
  injectFault(spec: FaultSpec, nowMs: number): GroundTruthRecord {
    return this.#faults.inject(spec, nowMs);
  }

  /** Ends all scheduled and active faults now; returns their corrected ground truth. */
  clearFaults(nowMs: number): GroundTruthRecord[] {
    return this.#faults.clear(nowMs);
  }

  /** Faults scheduled or active at `nowMs`. */
  activeFaults(nowMs: number): GroundTruthRecord[] {
    return this.#faults.pending(nowMs);
  }

  /** Every fault injected into this PLC (the most recent ones, see HISTORY_LIMIT). */
  groundTruth(): GroundTruthRecord[] {
    return this.#faults.history();
  }

  #followProcess(): void {
    const next = processTransition(this.#state, this.#model);
    if (next === "faulted" && this.#state !== "faulted") this.#tripReason = this.#model.tripReason();
    this.#state = next;
  }

  #read(nowMs: number): Record<string, TagValue> {
    const truth = this.#model.values();
    const values: Record<string, TagValue> = {};
    for (const spec of this.#model.tags) {
      // Two draws per tag and scan whatever happens, so the noise stream never shifts.
      const gaussian = this.#noise.gaussian();
      const extra = this.#noise.gaussian();
      const effect = spec.kind === "analog" ? this.#faults.sensorEffect(spec.name, nowMs) : NO_EFFECT;
      values[spec.name] = measure(spec, truth[spec.name], gaussian, effect, extra, this.#lastValues[spec.name]);
    }
    values[STATE_TAG.name] = this.#state;
    this.#lastValues = values;
    return values;
  }

  #checkSetpoint(tag: string | undefined, value: number | undefined): string | null {
    const setpoints = this.#model.tags.filter((t) => t.kind === "setpoint");
    const spec = setpoints.find((t) => t.name === tag);
    if (!spec) return `unknown setpoint tag "${tag ?? ""}" (setpoints: ${setpoints.map((t) => t.name).join(", ")})`;
    if (typeof value !== "number" || !Number.isFinite(value)) return `setpoint ${spec.name} needs a numeric value`;
    const min = spec.min ?? -Infinity;
    const max = spec.max ?? Infinity;
    if (value < min || value > max) return `${spec.name} ${value} ${spec.unit} outside the engineering range ${min}..${max} ${spec.unit}`;
    return null;
  }
}
