// Excess temperature from a fault (loss of cooling, a worn bearing) on top of a machine's own
// thermal model. Faults develop within their duration: see ThermalExcess.step.

import { lag } from "../dynamics.ts";
import type { ProcessFault } from "../model.ts";
import { faultScale, hiMargin, type TagSpec } from "../tags.ts";

/** The protection trips at hi plus this many margins (margin: hi minus the top of the normal band). */
export const TRIP_MARGINS = 1.5;

/** Trip limit of a temperature tag: hi plus 1.5 margins, so a healthy machine never gets near it. */
export function tripLimit(spec: TagSpec): number {
  return (spec.hi as number) + TRIP_MARGINS * hiMargin(spec);
}

/**
 * Where an overheat (loss of cooling) drives the excess while the machine produces heat: at
 * severity 1, from anywhere in the normal band to at least two margins past hi (beyond the trip).
 */
export function overheatTarget(fault: ProcessFault | undefined, producingHeat: boolean, spec: TagSpec): number {
  if (fault === undefined || !producingHeat) return 0;
  return fault.severity * (faultScale(spec).magnitude + hiMargin(spec));
}

export class ThermalExcess {
  readonly #thermalTau: number;
  #tau: number;
  #excess = 0;

  constructor(thermalTau: number) {
    this.#thermalTau = thermalTau;
    this.#tau = thermalTau;
  }

  get excess(): number {
    return this.#excess;
  }

  /**
   * Lags toward `target` with the machine's thermal time constant, shortened to a third of the
   * fault's duration so that the fault fully develops within it (95 % of the way by its end: an
   * overheat at severity 1 passes hi and then the trip limit). After the fault the
   * excess decays with the same shortened time constant, so its effect stays near its window.
   */
  step(dt: number, target: number, fault: ProcessFault | undefined): number {
    if (fault !== undefined) this.#tau = Math.min(this.#thermalTau, fault.durationS / 3);
    this.#excess = lag(this.#excess, target, this.#tau, dt);
    return this.#excess;
  }
}
