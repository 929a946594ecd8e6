// Centrifugal pump: operating point where the pump curve meets the system curve (valve opening),
// current rising with flow, vibration and bearing temperature; leak and bearing wear faults.

import { lag, ouStep } from "../dynamics.ts";
import type { Disturbances, DriveMode, ProcessFault, ProcessModel } from "../model.ts";
import type { Random } from "../random.ts";
import { hiMargin, type TagSpec } from "../tags.ts";
import { overheatTarget, ThermalExcess, tripLimit } from "./thermal-excess.ts";
import type { TagValue } from "../../shared/types.ts";

const AMBIENT = 25; // °C
const SHUTOFF = 8; // bar at zero flow and full speed
const CURVE = 8.33e-4; // bar per (m³/h)²: pump curve droop
const STATIC_HEAD = 1.5; // bar the system needs before anything flows
const SYSTEM = 8.66e-4; // bar per (m³/h)² through the fully open valve
const LEAK_FULL = 27.9; // m³/h per √bar: leak opening at severity 1 (pressure falls to ≈ 3 bar)
const SPEED_TAU = 1.5; // s, soft starter
const FLOW_TAU = 0.8; // s, hydraulic inertia
const CURRENT_TAU = 0.3; // s
const LEAK_TAU = 5; // s, a leak opens within seconds
const BEARING_TAU = 600; // s, bearing housing temperature
const VIBRATION_SD = 0.08; // mm/s, slow variation of the healthy vibration level
const VIBRATION_TAU = 30; // s
const CONSUMERS_SD = 0.015; // relative variation of the downstream consumers' opening
const CONSUMERS_TAU = 120; // s

export const PUMP_TAGS: readonly TagSpec[] = [
  { name: "flow", unit: "m³/h", type: "number", kind: "analog", min: 0, max: 120, hi: 72, noise: 0.3, resolution: 0.1, normal: [47, 53] },
  { name: "discharge_pressure", unit: "bar", type: "number", kind: "analog", min: 0, max: 16, lo: 4.0, hi: 7.5, noise: 0.02, resolution: 0.01, normal: [5.65, 6.15] },
  { name: "motor_current", unit: "A", type: "number", kind: "analog", min: 0, max: 60, hi: 40, noise: 0.15, resolution: 0.1, normal: [22.5, 25.5] },
  { name: "vibration", unit: "mm/s", type: "number", kind: "analog", min: 0, max: 25, hi: 4.5, noise: 0.05, resolution: 0.01, normal: [1.3, 2.4] },
  { name: "bearing_temp", unit: "°C", type: "number", kind: "analog", min: -20, max: 150, hi: 70, noise: 0.1, resolution: 0.1, normal: [54, 56] },
  { name: "valve_sp", unit: "%", type: "number", kind: "setpoint", min: 40, max: 100 },
];

const VIBRATION = PUMP_TAGS[3];
const BEARING = PUMP_TAGS[4];
const BEARING_MARGIN = hiMargin(BEARING);
const BEARING_TRIP = tripLimit(BEARING);
/** Bearing wear at severity 1 ends this many margins above the normal band (one past hi). */
const WEAR_MARGINS = 2;

/**
 * Where the pump curve meets the system curve plus the leak: total pump flow (m³/h, what the
 * discharge flowmeter sees) and discharge pressure (bar). Bisection on the pressure: the pump
 * delivers less as pressure rises while the system and the leak take more.
 */
export function pumpOperatingPoint(speed: number, valve: number, leak: number): { flow: number; pressure: number } {
  const shutoff = SHUTOFF * speed * speed;
  const pumpFlow = (p: number) => Math.sqrt(Math.max(0, shutoff - p) / CURVE);
  const demand = (p: number) => valve * Math.sqrt(Math.max(0, p - STATIC_HEAD) / SYSTEM) + leak * LEAK_FULL * Math.sqrt(p);
  let lo = 0;
  let hi = shutoff;
  for (let i = 0; i < 40; i++) {
    const mid = (lo + hi) / 2;
    if (pumpFlow(mid) > demand(mid)) lo = mid;
    else hi = mid;
  }
  const pressure = (lo + hi) / 2;
  return { flow: pumpFlow(pressure), pressure };
}

/** Bearing wear grows slowly at first, then faster (0..1 over the fault's duration). */
export function wearShape(progress: number): number {
  return 0.3 * progress + 0.7 * progress ** 3;
}

export class PumpModel implements ProcessModel {
  readonly machineType = "pump" as const;
  readonly tags = PUMP_TAGS;
  readonly primaryTag = "discharge_pressure";
  readonly processFaultTags = {
    overheat: ["bearing_temp"],
    "bearing-wear": ["vibration", "bearing_temp"],
    leak: ["flow", "discharge_pressure", "motor_current"],
  } as const;

  readonly #rng: Random;
  readonly #cooling = new ThermalExcess(BEARING_TAU);
  readonly #wearHeat = new ThermalExcess(BEARING_TAU);
  #valve = 70; // %
  #speed: number;
  #flow: number;
  #pressure: number;
  #current: number;
  #leak = 0;
  #wear = 0;
  #vibrationLevel: number;
  #consumers: number; // relative opening of the downstream consumers (varies slowly around 1)
  #bearing: number;

  constructor(rng: Random, warm: boolean) {
    this.#rng = rng;
    this.#speed = warm ? 1 : 0;
    this.#consumers = 1 + rng.gaussian(0, CONSUMERS_SD);
    const point = pumpOperatingPoint(this.#speed, this.#opening(), 0);
    this.#flow = point.flow;
    this.#pressure = point.pressure;
    this.#current = this.#currentFor(this.#speed, this.#flow);
    this.#vibrationLevel = rng.gaussian(0, VIBRATION_SD);
    this.#bearing = warm ? this.#bearingRunning() : AMBIENT;
  }

  setSetpoint(tag: string, value: number): void {
    if (tag === "valve_sp") this.#valve = value;
  }

  step(dt: number, mode: DriveMode, disturbances: Disturbances): void {
    this.#speed = lag(this.#speed, mode === "run" ? 1 : 0, SPEED_TAU, dt);
    this.#leak = lag(this.#leak, disturbances.leak?.severity ?? 0, LEAK_TAU, dt);
    this.#consumers = ouStep(this.#consumers, 1, CONSUMERS_SD, CONSUMERS_TAU, dt, this.#rng.gaussian());
    const point = pumpOperatingPoint(this.#speed, this.#opening(), this.#leak);
    this.#flow = lag(this.#flow, point.flow, FLOW_TAU, dt);
    this.#pressure = lag(this.#pressure, point.pressure, FLOW_TAU, dt);
    this.#current = lag(this.#current, this.#currentFor(this.#speed, this.#flow), CURRENT_TAU, dt);
    this.#vibrationLevel = ouStep(this.#vibrationLevel, 0, VIBRATION_SD, VIBRATION_TAU, dt, this.#rng.gaussian());
    this.#wear = this.#wearLevel(disturbances["bearing-wear"]);
    const rotating = this.#speed > 0.1;
    this.#bearing = lag(this.#bearing, rotating ? this.#bearingRunning() : AMBIENT, BEARING_TAU, dt);
    this.#cooling.step(dt, overheatTarget(disturbances.overheat, rotating, BEARING), disturbances.overheat);
    // A worn bearing under load runs hotter, lagging the wear through the bearing's thermal mass.
    const wearHeat = rotating ? this.#wear * WEAR_MARGINS * BEARING_MARGIN : 0;
    this.#wearHeat.step(dt, wearHeat, disturbances["bearing-wear"]);
  }

  isUp(): boolean {
    return this.#speed > 0.95;
  }

  isDown(): boolean {
    return this.#speed < 0.02;
  }

  tripReason(): string | null {
    const bearing = this.#bearingTemp();
    return bearing > BEARING_TRIP ? `bearing_temp ${bearing.toFixed(1)} °C above trip limit ${BEARING_TRIP} °C` : null;
  }

  values(): Record<string, TagValue> {
    const healthyVibration = 0.3 + 1.55 * this.#speed ** 2 + this.#vibrationLevel * this.#speed;
    return {
      flow: this.#flow,
      discharge_pressure: this.#pressure,
      motor_current: this.#current,
      vibration: Math.max(0, healthyVibration + this.#wear * WEAR_MARGINS * hiMargin(VIBRATION) * this.#speed),
      bearing_temp: this.#bearingTemp(),
      valve_sp: this.#valve,
    };
  }

  /** Effective opening of the system: the control valve times the consumers downstream. */
  #opening(): number {
    return (this.#valve / 100) * this.#consumers;
  }

  /** Motor current: magnetizing current plus a share rising with flow (power ∝ flow on this curve). */
  #currentFor(speed: number, flow: number): number {
    return speed * (9 + 0.3 * flow);
  }

  #bearingRunning(): number {
    return AMBIENT + 30 * this.#speed ** 2;
  }

  #bearingTemp(): number {
    return this.#bearing + this.#cooling.excess + this.#wearHeat.excess;
  }

  #wearLevel(fault: ProcessFault | undefined): number {
    return fault ? fault.severity * wearShape(fault.progress) : 0;
  }
}
