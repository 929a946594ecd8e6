// The ISA-18.2 alarm lifecycle as a pure function: (alarm, input, who/when) -> (alarm, journal
// entries) or a refusal with the reason. No clock, no I/O: every time comes in with the input.
//
//            activated                 returned (unacknowledged)
//   cleared ───────────> active-unack ─────────────────────────> rtn-unack
//      ^  ^                  │ ack                       activated │  │ ack
//      │  │ returned         v                 <───────────────────┘  │
//      │  └──────────── active-acked                                  │
//      └──────────────────────────────────────────────────────────────┘
//
// Shelved, suppressed (by design) and out of service hide the alarm in any of these states; on
// leaving them it goes to active-unack if its condition is active, else to cleared.
import type { AlarmAction, AlarmDocument, AlarmEvent, AlarmKind, AlarmSeverity, AlarmState } from "../shared/types.ts";

export interface AlarmMachineOptions {
  /** More than this many condition transitions within the window flag the alarm as chattering. */
  chatterTransitions: number;
  chatterWindowMs: number;
}

export const DEFAULT_MACHINE_OPTIONS: AlarmMachineOptions = { chatterTransitions: 5, chatterWindowMs: 60_000 };

/** Longest shelving an operator may ask for. */
export const MAX_SHELVE_MS = 7 * 24 * 3_600_000;

export type AlarmInput =
  /** The process condition (from the detector): active or not, and whether the run state suppresses it. */
  | { type: "condition"; active: boolean; suppressed: boolean; value: number; limit: number; message: string | null; severity?: AlarmSeverity }
  | { type: "ack"; comment?: string | null }
  | { type: "shelve"; durationMs: number; comment: string }
  | { type: "unshelve"; comment?: string | null }
  | { type: "comment"; comment: string }
  | { type: "remove-from-service"; comment?: string | null }
  | { type: "return-to-service"; comment?: string | null }
  /** Timers: shelving expiry and the end of chattering. */
  | { type: "tick" };

/** Who acts and when: an operator's name, or "system" for the process and timers. */
export interface Actor {
  user: string;
  at: number;
}

export type StepResult = { ok: true; alarm: AlarmDocument; events: AlarmEvent[] } | { ok: false; reason: string };

export const SYSTEM_USER = "system";

export interface AlarmIdentity {
  alarmId: string;
  device: string;
  tag: string;
  kind: AlarmKind;
  severity: AlarmSeverity;
  limit: number;
}

/** An alarm that never was active: the state an alarm starts from before its first activation. */
export function newAlarm(identity: AlarmIdentity, at: number): AlarmDocument {
  return {
    _id: identity.alarmId,
    device: identity.device,
    tag: identity.tag,
    kind: identity.kind,
    severity: identity.severity,
    limit: identity.limit,
    value: 0,
    lastValue: 0,
    message: null,
    state: "cleared",
    active: false,
    acked: true,
    suppressed: false,
    shelvedUntil: null,
    outOfService: false,
    activatedAt: at,
    clearedAt: at,
    ackedAt: null,
    ackedBy: null,
    activations: 0,
    recentTransitions: [],
    chattering: false,
    rev: 0,
    updatedAt: at,
    lastEvents: [],
    source: null,
  };
}

/** The ISA-18.2 state the flags describe. */
export function stateOf(alarm: Pick<AlarmDocument, "outOfService" | "suppressed" | "shelvedUntil" | "active" | "acked">): AlarmState {
  if (alarm.outOfService) return "out-of-service";
  if (alarm.suppressed) return "suppressed";
  if (alarm.shelvedUntil !== null) return "shelved";
  if (alarm.active) return alarm.acked ? "active-acked" : "active-unack";
  return alarm.acked ? "cleared" : "rtn-unack";
}

function hidden(alarm: AlarmDocument): boolean {
  return alarm.outOfService || alarm.suppressed || alarm.shelvedUntil !== null;
}

/** Journal ids sort in seq order as strings. */
export function eventId(alarmId: string, seq: number): string {
  return `${alarmId}#${String(seq).padStart(10, "0")}`;
}

const STATE_WORDS: Record<AlarmState, string> = {
  "active-unack": "active and unacknowledged",
  "active-acked": "active and already acknowledged",
  "rtn-unack": "returned to normal, unacknowledged",
  cleared: "cleared",
  shelved: "shelved",
  suppressed: "suppressed by design",
  "out-of-service": "out of service",
};

/** Applies one input. The alarm passed in is not modified. */
export function applyInput(current: AlarmDocument, input: AlarmInput, actor: Actor, options: AlarmMachineOptions = DEFAULT_MACHINE_OPTIONS): StepResult {
  const alarm: AlarmDocument = { ...current, recentTransitions: [...current.recentTransitions] };
  const events: AlarmEvent[] = [];
  const record = (action: AlarmAction, from: AlarmState, extra: { at?: number; user?: string; comment?: string | null; value?: number | null; ackDelayMs?: number } = {}) => {
    alarm.rev++;
    const event: AlarmEvent = {
      _id: eventId(alarm._id, alarm.rev),
      alarmId: alarm._id,
      seq: alarm.rev,
      device: alarm.device,
      tag: alarm.tag,
      kind: alarm.kind,
      severity: alarm.severity,
      at: extra.at ?? actor.at,
      action,
      from,
      to: stateOf(alarm),
      user: extra.user ?? actor.user,
      comment: extra.comment ?? null,
      value: extra.value ?? null,
    };
    if (extra.ackDelayMs !== undefined) event.ackDelayMs = extra.ackDelayMs;
    events.push(event);
  };
  /** Leaving every hiding state: ISA-18.2 re-annunciates an active condition, else the alarm is normal. */
  const reveal = () => {
    if (!hidden(alarm)) alarm.acked = !alarm.active;
  };
  const refuse = (reason: string): StepResult => ({ ok: false, reason });
  const from = stateOf(alarm);

  switch (input.type) {
    case "condition": {
      if (input.severity) alarm.severity = input.severity;
      alarm.limit = input.limit;
      const suppressing = input.suppressed && !alarm.suppressed;
      const unsuppressing = !input.suppressed && alarm.suppressed;
      if (suppressing) {
        const before = stateOf(alarm);
        alarm.suppressed = true;
        record("suppressed", before, { comment: input.message, value: input.value });
      }
      if (input.active !== alarm.active) {
        const before = stateOf(alarm);
        alarm.active = input.active;
        alarm.lastValue = input.value;
        alarm.message = input.message;
        if (input.active) {
          alarm.activatedAt = actor.at;
          alarm.clearedAt = null;
          alarm.value = input.value;
          alarm.activations++;
          if (!hidden(alarm)) alarm.acked = false;
        } else {
          alarm.clearedAt = actor.at;
        }
        record(input.active ? "activated" : "returned", before, { comment: input.message, value: input.value });
        noteChatter(alarm, actor.at, options, (action) => record(action, stateOf(alarm)));
      }
      if (unsuppressing) {
        const before = stateOf(alarm);
        alarm.suppressed = false;
        reveal();
        record("unsuppressed", before, { comment: input.message, value: input.value });
      }
      break;
    }

    case "ack": {
      if (from !== "active-unack" && from !== "rtn-unack") {
        return refuse(
          from === "cleared"
            ? "nothing to acknowledge: the alarm is cleared"
            : from === "active-acked"
              ? "the alarm is already acknowledged"
              : `nothing to acknowledge: the alarm is ${STATE_WORDS[from]}`,
        );
      }
      alarm.acked = true;
      alarm.ackedAt = actor.at;
      alarm.ackedBy = actor.user;
      record("acknowledged", from, { comment: input.comment, ackDelayMs: Math.max(0, actor.at - alarm.activatedAt) });
      break;
    }

    case "shelve": {
      if (alarm.outOfService || alarm.suppressed) return refuse(`cannot shelve: the alarm is ${STATE_WORDS[from]}`);
      if (!(input.durationMs > 0 && input.durationMs <= MAX_SHELVE_MS)) return refuse(`durationMs must be from 1 to ${MAX_SHELVE_MS}`);
      alarm.shelvedUntil = actor.at + input.durationMs;
      record("shelved", from, { comment: input.comment });
      break;
    }

    case "unshelve": {
      if (alarm.shelvedUntil === null) return refuse(`cannot unshelve: the alarm is not shelved (it is ${STATE_WORDS[from]})`);
      alarm.shelvedUntil = null;
      reveal();
      record("unshelved", from, { comment: input.comment });
      break;
    }

    case "comment": {
      record("commented", from, { comment: input.comment });
      break;
    }

    case "remove-from-service": {
      if (alarm.outOfService) return refuse("the alarm is already out of service");
      alarm.outOfService = true;
      alarm.shelvedUntil = null;
      record("removed-from-service", from, { comment: input.comment });
      break;
    }

    case "return-to-service": {
      if (!alarm.outOfService) return refuse(`cannot return to service: the alarm is in service (it is ${STATE_WORDS[from]})`);
      alarm.outOfService = false;
      reveal();
      record("returned-to-service", from, { comment: input.comment });
      break;
    }

    case "tick": {
      if (alarm.shelvedUntil !== null && alarm.shelvedUntil <= actor.at) {
        const before = stateOf(alarm);
        const expiredAt = alarm.shelvedUntil;
        alarm.shelvedUntil = null;
        reveal();
        record("shelve-expired", before, { at: expiredAt, user: SYSTEM_USER });
      }
      if (alarm.chattering) {
        prune(alarm, actor.at, options);
        if (alarm.recentTransitions.length <= options.chatterTransitions) {
          alarm.chattering = false;
          record("chattering-ended", stateOf(alarm), { user: SYSTEM_USER });
        }
      }
      break;
    }
  }

  alarm.state = stateOf(alarm);
  if (events.length > 0) {
    alarm.updatedAt = Math.max(current.updatedAt, actor.at);
    alarm.lastEvents = events;
  }
  return { ok: true, alarm: events.length > 0 ? alarm : current, events };
}

function prune(alarm: AlarmDocument, now: number, options: AlarmMachineOptions): void {
  const since = now - options.chatterWindowMs;
  alarm.recentTransitions = alarm.recentTransitions.filter((t) => t > since).slice(-(options.chatterTransitions + 1));
}

/** Counts a condition transition; flags the alarm when there were too many in the window, unflags it when they slowed down. */
function noteChatter(alarm: AlarmDocument, at: number, options: AlarmMachineOptions, record: (action: AlarmAction) => void): void {
  alarm.recentTransitions.push(at);
  prune(alarm, at, options);
  const tooMany = alarm.recentTransitions.length > options.chatterTransitions;
  if (tooMany && !alarm.chattering) {
    alarm.chattering = true;
    record("chattering-started");
  } else if (!tooMany && alarm.chattering) {
    alarm.chattering = false;
    record("chattering-ended");
  }
}

/** The next time a timer input must be applied to this alarm, or null when nothing is pending. */
export function nextTimer(alarm: AlarmDocument, options: AlarmMachineOptions = DEFAULT_MACHINE_OPTIONS): number | null {
  const times: number[] = [];
  if (alarm.shelvedUntil !== null) times.push(alarm.shelvedUntil);
  if (alarm.chattering && alarm.recentTransitions.length > 0) {
    // Chattering ends once enough of the recent transitions have left the window.
    const recent = alarm.recentTransitions;
    times.push(recent[Math.max(0, recent.length - options.chatterTransitions - 1)] + options.chatterWindowMs);
  }
  return times.length > 0 ? Math.min(...times) : null;
}
