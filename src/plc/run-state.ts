// The PLC's run state machine: stopped → starting → running → stopping → stopped, and faulted
// (entered on a protection trip, left only by a reset once the trip condition has cleared).

import type { RunState } from "../shared/types.ts";
import type { DriveMode, ProcessModel } from "./model.ts";

export type RunCommand = "start" | "stop" | "reset";

export type Transition = { ok: true; next: RunState } | { ok: false; reason: string };

/** What an operator command does in a state. Repeating a start or stop is accepted and changes nothing. */
export function commandTransition(state: RunState, command: RunCommand, tripReason: string | null): Transition {
  switch (command) {
    case "start":
      if (state === "faulted") return { ok: false, reason: "faulted: reset before starting" };
      if (state === "starting" || state === "running") return { ok: true, next: state };
      return { ok: true, next: "starting" };
    case "stop":
      if (state === "faulted" || state === "stopped" || state === "stopping") return { ok: true, next: state };
      return { ok: true, next: "stopping" };
    case "reset":
      if (state !== "faulted") return { ok: false, reason: `not faulted (state ${state})` };
      if (tripReason !== null) return { ok: false, reason: `trip condition still present: ${tripReason}` };
      return { ok: true, next: "stopped" };
  }
}

/** Transitions the process makes by itself: reaching speed, coming to rest, tripping. */
export function processTransition(state: RunState, model: ProcessModel): RunState {
  if (state !== "faulted" && state !== "stopped" && model.tripReason() !== null) return "faulted";
  if (state === "starting" && model.isUp()) return "running";
  if (state === "stopping" && model.isDown()) return "stopped";
  return state;
}

export function driveMode(state: RunState): DriveMode {
  switch (state) {
    case "starting":
    case "running":
      return "run";
    case "stopping":
    case "stopped":
      return "stop";
    case "faulted":
      return "trip";
  }
}
