// One factory per machine type, and each type's tag specifications.

import type { MachineType, ModelFactory, ProcessModel } from "../model.ts";
import type { Random } from "../random.ts";
import type { TagSpec } from "../tags.ts";
import { COMPRESSOR_TAGS, CompressorModel } from "./compressor.ts";
import { CONVEYOR_TAGS, ConveyorModel } from "./conveyor.ts";
import { OVEN_TAGS, OvenModel } from "./oven.ts";
import { PRESS_TAGS, PressModel } from "./press.ts";
import { PUMP_TAGS, PumpModel } from "./pump.ts";

const FACTORIES: Record<MachineType, ModelFactory> = {
  press: (rng, warm) => new PressModel(rng, warm),
  oven: (rng, warm) => new OvenModel(rng, warm),
  pump: (rng, warm) => new PumpModel(rng, warm),
  conveyor: (rng, warm) => new ConveyorModel(rng, warm),
  compressor: (rng, warm) => new CompressorModel(rng, warm),
};

const TAGS: Record<MachineType, readonly TagSpec[]> = {
  press: PRESS_TAGS,
  oven: OVEN_TAGS,
  pump: PUMP_TAGS,
  conveyor: CONVEYOR_TAGS,
  compressor: COMPRESSOR_TAGS,
};

export function createModel(machineType: MachineType, rng: Random, warm: boolean): ProcessModel {
  return FACTORIES[machineType](rng, warm);
}

/** The tag specifications of a machine type (without the run-state tag). */
export function tagSpecs(machineType: MachineType): readonly TagSpec[] {
  return TAGS[machineType];
}
