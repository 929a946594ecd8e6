// Belt conveyor: speed setpoint with acceleration ramp, items arriving and leaving (Poisson),
// motor current rising with speed and load, motor winding temperature.

import { lag, ramp } from "../dynamics.ts";
import type { Disturbances, DriveMode, ProcessModel } from "../model.ts";
import type { Random } from "../random.ts";
import type { TagSpec } from "../tags.ts";
import { overheatTarget, ThermalExcess, tripLimit } from "./thermal-excess.ts";
import type { TagValue } from "../../shared/types.ts";

const AMBIENT = 25; // °C
const LENGTH = 30; // m
const DENSITY = 1.33; // items per metre of belt the infeed places
const ACCEL = 0.2; // m/s² on start and speed changes
const DECEL = 0.4; // m/s² on an orderly stop
const COAST_TAU = 1; // s: a tripped belt coasts to a halt
const CURRENT_TAU = 0.3; // s
const MOTOR_TAU = 900; // s, winding temperature
const AT_SPEED = 0.02; // m/s

export const CONVEYOR_TAGS: readonly TagSpec[] = [
  { name: "belt_speed", unit: "m/s", type: "number", kind: "analog", min: 0, max: 3, hi: 1.6, noise: 0.003, resolution: 0.001, normal: [1.18, 1.22] },
  { name: "motor_current", unit: "A", type: "number", kind: "analog", min: 0, max: 40, hi: 18, noise: 0.1, resolution: 0.1, normal: [7.5, 15] },
  { name: "motor_temp", unit: "°C", type: "number", kind: "analog", min: -20, max: 180, hi: 78, noise: 0.1, resolution: 0.1, normal: [56, 65] },
  { name: "item_count", unit: "count", type: "number", kind: "counter", min: 0 },
  { name: "jam_flag", unit: "", type: "boolean", kind: "status" },
  { name: "speed_sp", unit: "m/s", type: "number", kind: "setpoint", min: 0.2, max: 1.5 },
];

const MOTOR = CONVEYOR_TAGS[2];
const MOTOR_TRIP = tripLimit(MOTOR);

export class ConveyorModel implements ProcessModel {
  readonly machineType = "conveyor" as const;
  readonly tags = CONVEYOR_TAGS;
  readonly primaryTag = "motor_current";
  readonly processFaultTags = { overheat: ["motor_temp"] } as const;

  readonly #rng: Random;
  readonly #cooling = new ThermalExcess(MOTOR_TAU);
  #sp = 1.2;
  #speed: number;
  #accel = 0;
  #onBelt: number;
  #delivered = 0;
  #current: number;
  #motor: number;

  constructor(rng: Random, warm: boolean) {
    this.#rng = rng;
    this.#speed = warm ? this.#sp : 0;
    this.#onBelt = warm ? rng.poisson(DENSITY * LENGTH) : 0;
    this.#current = this.#currentFor();
    // The winding's temperature integrates the load over many minutes: start it at the mean load.
    this.#motor = warm ? AMBIENT + 0.3 * (3 + 2.5 * this.#sp + 0.12 * DENSITY * LENGTH) ** 2 : AMBIENT;
  }

  setSetpoint(tag: string, value: number): void {
    if (tag === "speed_sp") this.#sp = value;
  }

  step(dt: number, mode: DriveMode, disturbances: Disturbances): void {
    const before = this.#speed;
    if (mode === "run") this.#speed = ramp(this.#speed, this.#sp, ACCEL, dt);
    else if (mode === "stop") this.#speed = ramp(this.#speed, 0, DECEL, dt);
    else this.#speed = lag(this.#speed, 0, COAST_TAU, dt);
    this.#accel = dt > 0 ? (this.#speed - before) / dt : 0;
    // Items leave at the head as the belt moves them there; the infeed places them while running.
    const leaving = Math.min(this.#onBelt, this.#rng.poisson((this.#onBelt * this.#speed * dt) / LENGTH));
    const arriving = mode === "run" ? this.#rng.poisson(DENSITY * this.#speed * dt) : 0;
    this.#onBelt += arriving - leaving;
    this.#delivered += leaving;
    this.#current = lag(this.#current, this.#currentFor(), CURRENT_TAU, dt);
    const energized = mode !== "trip" && this.#speed > 0.01;
    this.#motor = lag(this.#motor, energized ? this.#motorRunning() : AMBIENT, MOTOR_TAU, dt);
    this.#cooling.step(dt, overheatTarget(disturbances.overheat, energized, MOTOR), disturbances.overheat);
  }

  isUp(): boolean {
    return Math.abs(this.#speed - this.#sp) < AT_SPEED;
  }

  isDown(): boolean {
    return this.#speed < 0.005;
  }

  tripReason(): string | null {
    const motor = this.#motor + this.#cooling.excess;
    return motor > MOTOR_TRIP ? `motor_temp ${motor.toFixed(1)} °C above trip limit ${MOTOR_TRIP} °C (thermal overload)` : null;
  }

  values(): Record<string, TagValue> {
    return {
      belt_speed: this.#speed,
      motor_current: this.#current,
      motor_temp: this.#motor + this.#cooling.excess,
      item_count: this.#delivered,
      jam_flag: false,
      speed_sp: this.#sp,
    };
  }

  /** No-load current, friction rising with speed, the load on the belt, and acceleration. */
  #currentFor(): number {
    if (this.#speed < 0.005 && this.#accel <= 0) return 0;
    return 3 + 2.5 * this.#speed + 0.12 * this.#onBelt + 10 * Math.max(0, this.#accel);
  }

  /** Copper losses ∝ I²: the winding settles this far above ambient. */
  #motorRunning(): number {
    return AMBIENT + 0.3 * this.#currentFor() ** 2;
  }
}
