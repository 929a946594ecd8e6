// Hydraulic press: a repeating stroke profile (load, approach, press, dwell, decompress, return),
// a stroke counter, hydraulic pressure following the profile, tank oil temperature.

import { clamp, lag, ouStep } from "../dynamics.ts";
import type { Disturbances, DriveMode, ProcessModel } from "../model.ts";
import type { Random } from "../random.ts";
import type { TagSpec } from "../tags.ts";
import { overheatTarget, ThermalExcess, tripLimit } from "./thermal-excess.ts";
import type { TagValue } from "../../shared/types.ts";

const AMBIENT = 25; // °C
const STROKE = 400; // mm, top to bottom dead center
const APPROACH_END = 350; // mm: where the ram meets the part
const SPRING_BACK = 0.5; // mm the frame springs back on decompression
const PUMP_TAU = 0.7; // s, hydraulic pump motor spin-up / run-down
const PRESSURE_TAU = 0.2; // s, hydraulic pressure response
const OIL_TAU = 900; // s, oil tank temperature
const CYCLE_JITTER = 0.004; // relative standard deviation of a stroke's duration
const COOLING_SD = 0.4; // °C: the oil cooler's water temperature varies slowly
const COOLING_TAU = 1800; // s

type Phase = "load" | "approach" | "press" | "dwell" | "decompress" | "return";
const PHASES: readonly Phase[] = ["load", "approach", "press", "dwell", "decompress", "return"];
/** Durations at the default pressing pressure; they add up to the nominal 12 s cycle. */
const PHASE_SECONDS: Record<Phase, number> = { load: 2, approach: 2, press: 3, dwell: 2, decompress: 0.5, return: 2.5 };
const DEFAULT_SP = 180;

export const PRESS_TAGS: readonly TagSpec[] = [
  { name: "cycle_count", unit: "count", type: "number", kind: "counter", min: 0 },
  { name: "cycle_time", unit: "s", type: "number", kind: "analog", min: 0, max: 60, hi: 13.5, resolution: 0.01, normal: [11.8, 12.3] },
  { name: "hydraulic_pressure", unit: "bar", type: "number", kind: "analog", min: 0, max: 250, hi: 200, noise: 0.4, resolution: 0.1, normal: [15, 183] },
  { name: "ram_position", unit: "mm", type: "number", kind: "analog", min: -5, max: 420, noise: 0.02, resolution: 0.01, normal: [-0.5, 400.5] },
  { name: "oil_temp", unit: "°C", type: "number", kind: "analog", min: -20, max: 120, hi: 58, noise: 0.1, resolution: 0.1, normal: [43, 47] },
  { name: "pressure_sp", unit: "bar", type: "number", kind: "setpoint", min: 50, max: 190 },
];

const OIL = PRESS_TAGS[4];
const OIL_TRIP = tripLimit(OIL);

/** Smooth 0→1 motion profile (cosine): starts and stops without a jerk. */
function smooth(x: number): number {
  return (1 - Math.cos(Math.PI * clamp(x, 0, 1))) / 2;
}

/** Pressure build-up while pressing: fast at first, levelling off as the part yields. */
function buildUp(x: number): number {
  return (1 - Math.exp(-3 * clamp(x, 0, 1))) / (1 - Math.exp(-3));
}

export class PressModel implements ProcessModel {
  readonly machineType = "press" as const;
  readonly tags = PRESS_TAGS;
  readonly primaryTag = "oil_temp";
  readonly processFaultTags = { overheat: ["oil_temp"] } as const;

  readonly #rng: Random;
  readonly #cooling = new ThermalExcess(OIL_TAU);
  #sp = DEFAULT_SP;
  #pump: number;
  #pressure: number;
  #oil: number;
  #coolingWater: number; // °C deviation of the cooler's water from nominal
  #phase = 0;
  #phaseTime = 0;
  #strokeTime = 0;
  #strokeScale: number; // this stroke's duration factor (small random variation)
  #count = 0;
  #lastCycleTime: number;
  #ram = 0;

  constructor(rng: Random, warm: boolean) {
    this.#rng = rng;
    this.#coolingWater = rng.gaussian(0, COOLING_SD);
    this.#strokeScale = this.#nextStrokeScale();
    this.#lastCycleTime = PHASES.reduce((sum, phase) => sum + this.#phaseSeconds(phase), 0);
    this.#pump = warm ? 1 : 0;
    this.#pressure = warm ? this.#targetPressure() : 0;
    this.#oil = warm ? this.#oilRunning() : AMBIENT;
  }

  setSetpoint(tag: string, value: number): void {
    if (tag === "pressure_sp") this.#sp = value;
  }

  step(dt: number, mode: DriveMode, disturbances: Disturbances): void {
    const atTop = PHASES[this.#phase] === "load";
    // An orderly stop completes the stroke and parks the ram at the top; a trip stops the pump at once.
    // After a trip the ram stays where it stopped until the press is started again.
    const finishingStroke = mode === "stop" && !atTop && this.#pump > 0.5;
    const pumpOn = mode === "run" || finishingStroke;
    this.#pump = lag(this.#pump, pumpOn ? 1 : 0, PUMP_TAU, dt);
    const cycling = this.#pump > 0.95 && (mode === "run" || finishingStroke);
    if (cycling) this.#advance(dt, mode);
    this.#ram = this.#ramPosition();
    this.#pressure = lag(this.#pressure, this.#pump * this.#targetPressure(), PRESSURE_TAU, dt);
    const heat = this.#pump > 0.5;
    this.#coolingWater = ouStep(this.#coolingWater, 0, COOLING_SD, COOLING_TAU, dt, this.#rng.gaussian());
    const oilTarget = heat ? this.#oilRunning() : AMBIENT;
    this.#oil = lag(this.#oil, oilTarget, OIL_TAU, dt);
    this.#cooling.step(dt, overheatTarget(disturbances.overheat, heat, OIL), disturbances.overheat);
  }

  isUp(): boolean {
    return this.#pump > 0.95;
  }

  isDown(): boolean {
    return this.#pump < 0.02;
  }

  tripReason(): string | null {
    const oil = this.#oil + this.#cooling.excess;
    return oil > OIL_TRIP ? `oil_temp ${oil.toFixed(1)} °C above trip limit ${OIL_TRIP} °C` : null;
  }

  values(): Record<string, TagValue> {
    return {
      cycle_count: this.#count,
      cycle_time: this.#lastCycleTime,
      hydraulic_pressure: this.#pressure,
      ram_position: this.#ram,
      oil_temp: this.#oil + this.#cooling.excess,
      pressure_sp: this.#sp,
    };
  }

  /** Walks the stroke profile forward by dt, across as many phase boundaries as dt spans. */
  #advance(dt: number, mode: DriveMode): void {
    let remaining = dt;
    while (remaining > 0) {
      const phase = PHASES[this.#phase];
      const duration = this.#phaseSeconds(phase);
      const used = Math.min(remaining, duration - this.#phaseTime);
      this.#phaseTime += used;
      this.#strokeTime += used;
      remaining -= used;
      if (this.#phaseTime < duration) break;
      this.#phaseTime = 0;
      this.#phase = (this.#phase + 1) % PHASES.length;
      if (this.#phase === 0) {
        this.#count += 1;
        this.#lastCycleTime = this.#strokeTime;
        this.#strokeTime = 0;
        this.#strokeScale = this.#nextStrokeScale();
        if (mode === "stop") break; // parked at the top
      }
    }
  }

  #nextStrokeScale(): number {
    return 1 + this.#rng.gaussian(0, CYCLE_JITTER);
  }

  /** Pressing takes longer at a higher pressing pressure. */
  #phaseSeconds(phase: Phase): number {
    const base = phase === "press" ? PHASE_SECONDS.press * Math.sqrt(this.#sp / DEFAULT_SP) : PHASE_SECONDS[phase];
    return base * this.#strokeScale;
  }

  #ramPosition(): number {
    const phase = PHASES[this.#phase];
    const x = this.#phaseTime / this.#phaseSeconds(phase);
    switch (phase) {
      case "load":
        return 0;
      case "approach":
        return APPROACH_END * smooth(x);
      case "press":
        return APPROACH_END + (STROKE - APPROACH_END) * buildUp(x);
      case "dwell":
        return STROKE;
      case "decompress":
        return STROKE - SPRING_BACK * x;
      case "return":
        return (STROKE - SPRING_BACK) * (1 - smooth(x));
    }
  }

  #targetPressure(): number {
    const phase = PHASES[this.#phase];
    const x = this.#phaseTime / this.#phaseSeconds(phase);
    switch (phase) {
      case "load":
        return 20;
      case "approach":
        return 35;
      case "press":
        return 35 + (this.#sp - 35) * buildUp(x);
      case "dwell":
        return this.#sp;
      case "decompress":
        return this.#sp + (30 - this.#sp) * x;
      case "return":
        return 60;
    }
  }

  /** Tank oil settles a little warmer when pressing harder. */
  #oilRunning(): number {
    return 40 + 5 * (this.#sp / DEFAULT_SP) + this.#coolingWater;
  }
}
