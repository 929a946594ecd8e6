// Curing oven zone: heater → element lag → zone temperature (first-order, minutes), PI control.

import { clamp, lag, ouStep } from "../dynamics.ts";
import type { Disturbances, DriveMode, ProcessModel } from "../model.ts";
import type { Random } from "../random.ts";
import type { TagSpec } from "../tags.ts";
import { tripLimit } from "./thermal-excess.ts";
import type { TagValue } from "../../shared/types.ts";

const AMBIENT = 25; // °C
const GAIN = 4.2; // °C of equilibrium rise per % heater power (100 % → 445 °C: sized for fast heat-up)
const TAU_CLOSED = 240; // s, zone time constant with the door closed
const TAU_OPEN = 45; // s, door open: faster heat loss
const TAU_ELEMENT = 20; // s, heating elements warm up / cool down
const KP = 0.8; // % per °C
const TI = 120; // s
const SAFE_TO_OPEN = 60; // °C: an orderly stop ends when the zone is below this
const AT_SETPOINT = 3; // °C: starting ends within this band
const LOAD_SD = 3; // °C-equivalent heat absorbed by the parts passing through (varies slowly)
const LOAD_TAU = 180; // s

export const OVEN_TAGS: readonly TagSpec[] = [
  { name: "zone_temp", unit: "°C", type: "number", kind: "analog", min: 0, max: 400, hi: 192, noise: 0.15, resolution: 0.1, normal: [177, 183] },
  { name: "temp_sp", unit: "°C", type: "number", kind: "setpoint", min: 50, max: 220 },
  { name: "heater_power", unit: "%", type: "number", kind: "analog", min: 0, max: 100, noise: 0.2, resolution: 0.1, normal: [30, 45] },
  { name: "door_open", unit: "", type: "boolean", kind: "status" },
];

const ZONE = OVEN_TAGS[0];
const TRIP = tripLimit(ZONE);

export class OvenModel implements ProcessModel {
  readonly machineType = "oven" as const;
  readonly tags = OVEN_TAGS;
  readonly primaryTag = "zone_temp";
  readonly processFaultTags = { overheat: ["zone_temp", "heater_power"] } as const;

  readonly #rng: Random;
  #sp = 180;
  #temp: number;
  #element: number; // % heater power actually delivered (lagging the output)
  #stuckHeat = 0; // % of uncontrolled heat (overheat fault), lagging like the elements
  #output = 0; // PI output, %
  #integral = 0; // % (the integral term)
  #load: number; // °C-equivalent heat taken by the load
  #door = false;

  constructor(rng: Random, warm: boolean) {
    this.#rng = rng;
    this.#load = rng.gaussian(0, LOAD_SD);
    if (warm) {
      this.#output = clamp((this.#sp - AMBIENT + this.#load) / GAIN, 0, 100);
      this.#integral = this.#output;
      this.#element = this.#output;
      this.#temp = this.#sp;
    } else {
      this.#element = 0;
      this.#temp = AMBIENT;
    }
  }

  setSetpoint(tag: string, value: number): void {
    if (tag === "temp_sp") this.#sp = value;
  }

  step(dt: number, mode: DriveMode, disturbances: Disturbances): void {
    this.#load = ouStep(this.#load, 0, LOAD_SD, LOAD_TAU, dt, this.#rng.gaussian());
    const heating = mode === "run";
    if (heating) {
      // PI with conditional integration (anti-windup): integrate only while it helps.
      const error = this.#sp - this.#temp;
      const candidate = this.#integral + (KP / TI) * error * dt;
      const unclamped = KP * error + candidate;
      if ((unclamped < 100 || error < 0) && (unclamped > 0 || error > 0)) this.#integral = clamp(candidate, -50, 150);
      this.#output = clamp(KP * error + this.#integral, 0, 100);
    } else {
      this.#output = 0;
      this.#integral = 0;
    }
    // A stuck-open heat source (overheat fault) adds heat the controller cannot take away; the
    // main shutoff closes it on stop or trip.
    const overheat = disturbances.overheat;
    this.#stuckHeat = lag(this.#stuckHeat, heating && overheat ? overheat.severity * 100 : 0, TAU_ELEMENT, dt);
    this.#element = lag(this.#element, this.#output, TAU_ELEMENT, dt);
    this.#door = mode === "stop" && this.#temp < SAFE_TO_OPEN;
    const equilibrium = AMBIENT + GAIN * (this.#element + this.#stuckHeat) - (heating ? this.#load : 0);
    this.#temp = lag(this.#temp, equilibrium, this.#door ? TAU_OPEN : TAU_CLOSED, dt);
  }

  isUp(): boolean {
    return Math.abs(this.#temp - this.#sp) < AT_SETPOINT;
  }

  isDown(): boolean {
    return this.#temp < SAFE_TO_OPEN && this.#element < 1;
  }

  tripReason(): string | null {
    return this.#temp > TRIP ? `zone_temp ${this.#temp.toFixed(1)} °C above trip limit ${TRIP} °C` : null;
  }

  values(): Record<string, TagValue> {
    return { zone_temp: this.#temp, temp_sp: this.#sp, heater_power: this.#element, door_open: this.#door };
  }
}
