// The simulated plant: which PLCs exist, where they sit, and which replica runs each one.

import type { DeviceAddress } from "../shared/types.ts";
import { MACHINE_TYPES, type MachineType } from "./model.ts";
import { deriveSeed } from "./random.ts";

export interface PlcDefinition extends DeviceAddress {
  /** Position in the plant (0-based): decides the machine type and the owning replica. */
  index: number;
  machineType: MachineType;
  /** This PLC's own seed, derived from the plant seed and its id. */
  seed: number;
}

const AREA: Record<MachineType, string> = {
  press: "press-shop",
  oven: "paint-shop",
  pump: "utilities",
  conveyor: "assembly",
  compressor: "utilities",
};

/** Machines of one type per line. */
const MACHINES_PER_LINE = 2;

/**
 * `count` PLCs, machine types round-robin (press, oven, pump, conveyor, compressor), ids numbered
 * per type (`press-01`, `oven-02`, ...), lines of two machines of a type within its area.
 * Deterministic: the same arguments give the same plant.
 */
export function plantLayout(count: number, seed: number, site: string): PlcDefinition[] {
  const plcs: PlcDefinition[] = [];
  for (let index = 0; index < count; index++) {
    const machineType = MACHINE_TYPES[index % MACHINE_TYPES.length];
    const ordinal = Math.floor(index / MACHINE_TYPES.length) + 1;
    const device = `${machineType}-${String(ordinal).padStart(2, "0")}`;
    const line = `line${Math.floor((ordinal - 1) / MACHINES_PER_LINE) + 1}`;
    plcs.push({ index, machineType, site, area: AREA[machineType], line, device, seed: deriveSeed(seed, device) });
  }
  return plcs;
}

/** Replica `shardIndex` of `shardCount` owns the PLCs whose index modulo shardCount equals shardIndex. */
export function isOwnedBy(plc: PlcDefinition, shardIndex: number, shardCount: number): boolean {
  return plc.index % shardCount === shardIndex;
}

export function shardOf(plcs: readonly PlcDefinition[], shardIndex: number, shardCount: number): PlcDefinition[] {
  return plcs.filter((plc) => isOwnedBy(plc, shardIndex, shardCount));
}
