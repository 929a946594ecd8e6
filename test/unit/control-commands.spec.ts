import { strict as assert } from "node:assert";
import {
  ackOutcome,
  auditRecord,
  commandEvent,
  commandPayload,
  commandView,
  eventOf,
  isSetpointTag,
  lateAckRecord,
  newCommand,
  parseAck,
  requesterOf,
  timeoutUpdate,
  validateCommand,
  withUpdate,
  type CommandDocument,
  type CommandRequest,
} from "../../src/control/commands.ts";
import { OVEN_TAGS } from "../../src/plc/models/oven.ts";
import { createModel } from "../../src/plc/models/index.ts";
import type { MachineType } from "../../src/plc/model.ts";
import { Random } from "../../src/plc/random.ts";
import { toTagDefinition } from "../../src/plc/tags.ts";
import type { CommandAck, DeviceDocument } from "../../src/shared/types.ts";

const T0 = Date.UTC(2025, 0, 1);
const TIMEOUT = 10_000;

const oven: DeviceDocument = {
  _id: "oven-01",
  site: "plant1",
  area: "paint-shop",
  line: "line1",
  machineType: "oven",
  state: "online",
  tags: [...OVEN_TAGS.map(toTagDefinition), { name: "state", unit: "", type: "string" }],
  updatedAt: T0,
};

function pending(request: CommandRequest = { action: "setpoint", tag: "temp_sp", value: 150 }): CommandDocument {
  return newCommand("c-1", oven, request, "alice", T0, TIMEOUT);
}

function ack(status: CommandAck["status"], reason?: string, ts = T0 + 50): CommandAck {
  return reason === undefined ? { id: "c-1", status, ts } : { id: "c-1", status, reason, ts };
}

function invalid(request: CommandRequest): { field: string; message: string } {
  const result = validateCommand(request, oven);
  assert.ok(!result.ok, `expected ${JSON.stringify(request)} to be refused`);
  return { field: result.field, message: result.message };
}

describe("control: command validation against the device's tags", () => {
  it("accepts start, stop and reset without arguments, and a setpoint inside the tag's range", () => {
    for (const action of ["start", "stop", "reset"] as const) assert.deepEqual(validateCommand({ action }, oven), { ok: true, value: { action } });
    assert.deepEqual(validateCommand({ action: "setpoint", tag: "temp_sp", value: 150 }, oven), { ok: true, value: { action: "setpoint", tag: "temp_sp", value: 150 } });
    assert.ok(validateCommand({ action: "setpoint", tag: "temp_sp", value: 50 }, oven).ok, "the range is inclusive");
    assert.ok(validateCommand({ action: "setpoint", tag: "temp_sp", value: 220 }, oven).ok);
  });

  it("recognizes exactly the models' setpoint tags in what the registry holds", () => {
    for (const machineType of ["press", "oven", "pump", "conveyor", "compressor"] as MachineType[]) {
      const model = createModel(machineType, new Random(1), true);
      const expected = model.tags.filter((t) => t.kind === "setpoint").map((t) => t.name);
      const found = model.tags.map(toTagDefinition).filter(isSetpointTag).map((t) => t.name);
      assert.deepEqual(found, expected, machineType);
    }
  });

  it("refuses a setpoint without a tag, on a tag that is not a setpoint of the device, or of another device", () => {
    assert.deepEqual(invalid({ action: "setpoint", value: 150 }), { field: "tag", message: "tag is required for setpoint (setpoints of oven-01: temp_sp)" });
    assert.deepEqual(invalid({ action: "setpoint", tag: "zone_temp", value: 150 }), { field: "tag", message: 'tag "zone_temp" is not a setpoint of oven-01 (setpoints: temp_sp)' });
    assert.equal(invalid({ action: "setpoint", tag: "valve_sp", value: 80 }).field, "tag");
    assert.equal(invalid({ action: "setpoint", tag: "state", value: 1 }).field, "tag");
  });

  it("refuses a setpoint without a finite number or outside the engineering range, naming the value", () => {
    assert.deepEqual(invalid({ action: "setpoint", tag: "temp_sp" }), { field: "value", message: "value is required for setpoint temp_sp" });
    assert.equal(invalid({ action: "setpoint", tag: "temp_sp", value: Number.NaN }).field, "value");
    assert.equal(invalid({ action: "setpoint", tag: "temp_sp", value: Number.POSITIVE_INFINITY }).field, "value");
    assert.equal(invalid({ action: "setpoint", tag: "temp_sp", value: "170" as unknown as number }).field, "value");
    assert.deepEqual(invalid({ action: "setpoint", tag: "temp_sp", value: 300 }), { field: "value", message: "value 300 °C is outside the range of temp_sp: 50..220 °C" });
    assert.equal(invalid({ action: "setpoint", tag: "temp_sp", value: 49.9 }).field, "value");
  });

  it("refuses arguments on actions that take none, and unknown actions", () => {
    assert.equal(invalid({ action: "start", tag: "temp_sp" }).field, "tag");
    assert.equal(invalid({ action: "stop", value: 1 }).field, "value");
    assert.equal(invalid({ action: "explode" as CommandRequest["action"] }).field, "action");
  });

  it("a device without setpoints says so", () => {
    const result = validateCommand({ action: "setpoint", tag: "x_sp", value: 1 }, { _id: "ghost-01", tags: [] });
    assert.deepEqual(result, { ok: false, field: "tag", message: 'tag "x_sp" is not a setpoint of ghost-01 (setpoints: none)' });
  });
});

describe("control: the stored command and what goes to the PLC", () => {
  it("starts pending with who, what, when and the deadline, at the device's address", () => {
    const command = pending();
    assert.deepEqual(command, {
      _id: "c-1",
      site: "plant1",
      area: "paint-shop",
      line: "line1",
      device: "oven-01",
      action: "setpoint",
      tag: "temp_sp",
      value: 150,
      status: "pending",
      reason: null,
      user: "alice",
      requestedAt: T0,
      deadline: T0 + TIMEOUT,
      completedAt: null,
      ackTs: null,
    });
    assert.deepEqual(commandPayload(command), { id: "c-1", action: "setpoint", tag: "temp_sp", value: 150, ts: T0 });
    assert.deepEqual(commandPayload(pending({ action: "start" })), { id: "c-1", action: "start", ts: T0 });
    const view = commandView(command);
    assert.equal(view.id, "c-1");
    assert.ok(!("_id" in view));
  });

  it("names the requester from ctx.meta.user, else anonymous", () => {
    assert.equal(requesterOf(undefined), "anonymous");
    assert.equal(requesterOf(""), "anonymous");
    assert.equal(requesterOf("bob"), "bob");
    assert.equal(requesterOf({ id: "u-7", name: "Bob" }), "u-7");
    assert.equal(requesterOf({ username: "bob" }), "bob");
    assert.equal(requesterOf({ roles: [] }), "anonymous");
  });
});

describe("control: ack parsing", () => {
  it("reads the PLC's CommandAck", () => {
    assert.deepEqual(parseAck(JSON.stringify({ id: "c-1", status: "accepted", ts: 5 })), { ok: true, value: { id: "c-1", status: "accepted", ts: 5 } });
    assert.deepEqual(parseAck(JSON.stringify({ id: "c-1", status: "rejected", reason: "faulted: reset before starting", ts: 5 })), {
      ok: true,
      value: { id: "c-1", status: "rejected", reason: "faulted: reset before starting", ts: 5 },
    });
  });

  it("refuses what is not one, naming the field", () => {
    const field = (payload: string) => {
      const result = parseAck(payload);
      assert.ok(!result.ok, payload);
      return result.field;
    };
    assert.equal(field("not json"), "payload");
    assert.equal(field("[1]"), "payload");
    assert.equal(field(JSON.stringify({ status: "accepted", ts: 5 })), "id");
    assert.equal(field(JSON.stringify({ id: "x".repeat(129), status: "accepted", ts: 5 })), "id");
    assert.equal(field(JSON.stringify({ id: "c-1", status: "ok", ts: 5 })), "status");
    assert.equal(field(JSON.stringify({ id: "c-1", status: "rejected", reason: 7, ts: 5 })), "reason");
    assert.equal(field(JSON.stringify({ id: "c-1", status: "accepted" })), "ts");
  });
});

describe("control: state transitions", () => {
  const now = T0 + 100;

  it("pending → acknowledged on an accepted ack from the command's device", () => {
    const outcome = ackOutcome(pending(), "oven-01", ack("accepted"), now);
    assert.deepEqual(outcome, { kind: "complete", update: { status: "acknowledged", reason: null, completedAt: now, ackTs: T0 + 50 } });
  });

  it("pending → rejected with the PLC's reason", () => {
    const outcome = ackOutcome(pending({ action: "start" }), "oven-01", ack("rejected", "faulted: reset before starting"), now);
    assert.deepEqual(outcome, { kind: "complete", update: { status: "rejected", reason: "faulted: reset before starting", completedAt: now, ackTs: T0 + 50 } });
    const silent = ackOutcome(pending(), "oven-01", ack("rejected"), now);
    assert.equal(silent.kind === "complete" && silent.update.reason, "rejected by the PLC without a reason");
  });

  it("pending → timed_out only once the deadline has passed", () => {
    const command = pending();
    assert.equal(timeoutUpdate(command, T0 + TIMEOUT - 1, TIMEOUT), null);
    assert.deepEqual(timeoutUpdate(command, T0 + TIMEOUT, TIMEOUT), { status: "timed_out", reason: "no acknowledgement from oven-01 within 10000 ms", completedAt: T0 + TIMEOUT, ackTs: null });
  });

  it("finished commands stay finished: no timeout, no second outcome", () => {
    const acknowledged = withUpdate(pending(), { status: "acknowledged", reason: null, completedAt: now, ackTs: T0 + 50 });
    assert.equal(timeoutUpdate(acknowledged, T0 + 10 * TIMEOUT, TIMEOUT), null);
    assert.deepEqual(ackOutcome(acknowledged, "oven-01", ack("accepted"), now + 5), { kind: "duplicate" }, "the same ack again (a redelivery)");
    assert.equal(ackOutcome(acknowledged, "oven-01", ack("rejected", "no"), now + 5).kind, "ignored", "a contradicting ack");
    assert.equal(ackOutcome(acknowledged, "oven-01", ack("accepted", undefined, T0 + 60), now + 5).kind, "ignored", "another ack with the same id");
  });

  it("an ack after the timeout keeps timed_out and is recorded as late", () => {
    const timedOut = withUpdate(pending(), timeoutUpdate(pending(), T0 + TIMEOUT, TIMEOUT)!);
    const outcome = ackOutcome(timedOut, "oven-01", ack("accepted", undefined, T0 + 12_000), T0 + 12_050);
    assert.deepEqual(outcome, { kind: "late", lateAck: { status: "accepted", reason: null, ts: T0 + 12_000, receivedAt: T0 + 12_050 } });
    assert.ok(outcome.kind === "late");
    const withLate: CommandDocument = { ...timedOut, lateAck: outcome.lateAck };
    assert.deepEqual(ackOutcome(withLate, "oven-01", ack("accepted", undefined, T0 + 12_000), T0 + 13_000), { kind: "duplicate" });
    const record = lateAckRecord(withLate, outcome.lateAck);
    assert.deepEqual([record.key, record.input.action, record.input.details?.status, record.input.details?.reason, record.input.at], ["command:c-1:command.lateAck", "command.lateAck", "timed_out", "accepted by the PLC after the timeout", T0 + 12_050]);
  });

  it("matches an ack only from the device the command went to", () => {
    const outcome = ackOutcome(pending(), "oven-02", ack("accepted"), now);
    assert.deepEqual(outcome, { kind: "ignored", reason: "command c-1 was sent to oven-01, not oven-02" });
    assert.equal(ackOutcome(pending(), "oven-01", { ...ack("accepted"), id: "c-2" }, now).kind, "ignored");
  });
});

describe("control: audit records and events", () => {
  it("one audit entry per command and outcome, under a deterministic key", () => {
    const command = pending();
    const sent = auditRecord(command, eventOf(command), T0);
    assert.deepEqual(sent, {
      key: "command:c-1:command.sent",
      input: {
        action: "command.sent",
        subject: "command",
        subjectId: "c-1",
        user: "alice",
        at: T0,
        details: { device: "oven-01", action: "setpoint", tag: "temp_sp", value: 150, status: "pending", reason: null },
      },
    });
    const rejected = withUpdate(command, { status: "rejected", reason: "nope", completedAt: T0 + 5, ackTs: T0 + 4 });
    assert.equal(auditRecord(rejected, eventOf(rejected), T0 + 5).key, "command:c-1:command.rejected");
    assert.equal(auditRecord(rejected, eventOf(rejected), T0 + 5).input.details?.reason, "nope");
  });

  it("events are named after the status and carry the device's address", () => {
    const names = (["pending", "acknowledged", "rejected", "timed_out"] as const).map((status) => eventOf({ ...pending(), status }));
    assert.deepEqual(names, ["command.sent", "command.acknowledged", "command.rejected", "command.timedOut"]);
    const event = commandEvent(withUpdate(pending(), { status: "acknowledged", reason: null, completedAt: T0 + 5, ackTs: T0 + 4 }), T0 + 5);
    assert.deepEqual(event, {
      type: "command.acknowledged",
      id: "c-1",
      site: "plant1",
      area: "paint-shop",
      line: "line1",
      device: "oven-01",
      action: "setpoint",
      tag: "temp_sp",
      value: 150,
      user: "alice",
      status: "acknowledged",
      reason: null,
      ts: T0 + 5,
    });
  });
});
