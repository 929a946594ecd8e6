// Screw compressor on a receiver: loads below the load pressure, unloads at the unload pressure
// (setpoint), plant demand varying slowly; outlet temperature tracks the duty.

import { clamp, lag, ouStep } from "../dynamics.ts";
import type { Disturbances, DriveMode, ProcessModel } from "../model.ts";
import type { Random } from "../random.ts";
import type { TagSpec } from "../tags.ts";
import { overheatTarget, ThermalExcess, tripLimit } from "./thermal-excess.ts";
import type { TagValue } from "../../shared/types.ts";

const AMBIENT = 25; // °C
const BAND = 1; // bar between the load and the unload pressure
const RECEIVER = 16; // s·(fraction of capacity) per bar: receiver size relative to the compressor
const DEMAND_MEAN = 0.6; // plant air demand as a fraction of the compressor's capacity
const DEMAND_SD = 0.06;
const DEMAND_TAU = 300; // s
const DEMAND_FULL_AT = 4; // bar: below this the plant's consumers take less air
const MOTOR_TAU = 2; // s, star-delta start / run-down
const CURRENT_TAU = 0.5; // s
const TEMP_LOADED = 86; // °C outlet temperature loaded (equilibrium)
const TEMP_UNLOADED = 70; // °C unloaded
const TEMP_TAU = 45; // s
const CURRENT_LOADED = 95; // A
const CURRENT_UNLOADED = 38; // A

export const COMPRESSOR_TAGS: readonly TagSpec[] = [
  { name: "outlet_pressure", unit: "bar", type: "number", kind: "analog", min: 0, max: 16, lo: 5.0, hi: 8.5, noise: 0.01, resolution: 0.01, normal: [6.35, 7.65] },
  { name: "outlet_temp", unit: "°C", type: "number", kind: "analog", min: -20, max: 150, hi: 98, noise: 0.15, resolution: 0.1, normal: [72, 86] },
  { name: "motor_current", unit: "A", type: "number", kind: "analog", min: 0, max: 200, hi: 115, noise: 0.4, resolution: 0.1, normal: [35, 98] },
  { name: "loaded", unit: "", type: "boolean", kind: "status" },
  { name: "unload_sp", unit: "bar", type: "number", kind: "setpoint", min: 6.5, max: 8.0 },
];

const OUTLET = COMPRESSOR_TAGS[1];
const TEMP_TRIP = tripLimit(OUTLET);

export class CompressorModel implements ProcessModel {
  readonly machineType = "compressor" as const;
  readonly tags = COMPRESSOR_TAGS;
  readonly primaryTag = "outlet_temp";
  readonly processFaultTags = { overheat: ["outlet_temp"] } as const;

  readonly #rng: Random;
  readonly #cooling = new ThermalExcess(TEMP_TAU);
  #unloadSp = 7.5;
  #motor: number;
  #loaded = false;
  #pressure: number;
  #demand: number;
  #temp: number;
  #current: number;

  constructor(rng: Random, warm: boolean) {
    this.#rng = rng;
    this.#demand = clamp(DEMAND_MEAN + rng.gaussian(0, DEMAND_SD), 0.1, 0.95);
    this.#motor = warm ? 1 : 0;
    this.#pressure = warm ? this.#unloadSp - BAND / 2 : 0;
    this.#temp = warm ? TEMP_UNLOADED + (TEMP_LOADED - TEMP_UNLOADED) * this.#demand : AMBIENT;
    this.#current = this.#currentFor();
  }

  setSetpoint(tag: string, value: number): void {
    if (tag === "unload_sp") this.#unloadSp = value;
  }

  step(dt: number, mode: DriveMode, disturbances: Disturbances): void {
    this.#motor = lag(this.#motor, mode === "run" ? 1 : 0, MOTOR_TAU, dt);
    this.#demand = clamp(ouStep(this.#demand, DEMAND_MEAN, DEMAND_SD, DEMAND_TAU, dt, this.#rng.gaussian()), 0.1, 0.95);
    // Load/unload control with hysteresis; the compressor runs unloaded until the motor is up.
    if (mode !== "run" || this.#motor < 0.95 || this.#pressure >= this.#unloadSp) this.#loaded = false;
    else if (this.#pressure <= this.#unloadSp - BAND) this.#loaded = true;
    const supply = this.#loaded ? 1 : 0;
    const consumption = this.#demand * Math.min(1, this.#pressure / DEMAND_FULL_AT);
    this.#pressure = Math.max(0, this.#pressure + ((supply - consumption) * dt) / RECEIVER);
    const running = this.#motor > 0.5;
    const tempTarget = running ? (this.#loaded ? TEMP_LOADED : TEMP_UNLOADED) : AMBIENT;
    this.#temp = lag(this.#temp, tempTarget, TEMP_TAU, dt);
    this.#cooling.step(dt, overheatTarget(disturbances.overheat, running, OUTLET), disturbances.overheat);
    this.#current = lag(this.#current, this.#currentFor(), CURRENT_TAU, dt);
  }

  isUp(): boolean {
    return this.#motor > 0.95;
  }

  isDown(): boolean {
    return this.#motor < 0.02;
  }

  tripReason(): string | null {
    const temp = this.#temp + this.#cooling.excess;
    return temp > TEMP_TRIP ? `outlet_temp ${temp.toFixed(1)} °C above trip limit ${TEMP_TRIP} °C` : null;
  }

  values(): Record<string, TagValue> {
    return {
      outlet_pressure: this.#pressure,
      outlet_temp: this.#temp + this.#cooling.excess,
      motor_current: this.#current,
      loaded: this.#loaded,
      unload_sp: this.#unloadSp,
    };
  }

  #currentFor(): number {
    return this.#motor * (this.#loaded ? CURRENT_LOADED : CURRENT_UNLOADED);
  }
}
