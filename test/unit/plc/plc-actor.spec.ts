import { strict as assert } from "node:assert";
import { plantLayout } from "../../../src/plc/plant-layout.ts";
import { PlcActor } from "../../../src/plc/plc-actor.ts";
import { actorOf, command, num, series, SimClock, T0, tagOf } from "./sim.ts";

describe("plc actor", function () {
  this.timeout(30_000);

  it("is deterministic: the same seed and configuration give the same telemetry, another seed other values", () => {
    const telemetry = (seed: number) => {
      const actor = actorOf("pump", seed);
      const clock = new SimClock();
      actor.scan(clock.now);
      return clock.run(actor, 300, 250);
    };
    assert.deepEqual(telemetry(5), telemetry(5));
    assert.notDeepEqual(series(telemetry(5), "flow"), series(telemetry(6), "flow"));
  });

  it("publishes every tag plus the run state every scan, with seq increasing by exactly one", () => {
    const actor = actorOf("oven");
    assert.equal(actor.lastSeq, null);
    const clock = new SimClock();
    const first = actor.scan(clock.now);
    assert.equal(first.seq, 0);
    assert.equal(first.ts, T0);
    assert.equal(first.values.state, "starting");
    const samples = clock.run(actor, 100);
    samples.forEach((t, i) => {
      assert.equal(t.seq, i + 1);
      assert.deepEqual(Object.keys(t.values).sort(), actor.tags().map((d) => d.name).sort());
    });
    assert.equal(samples[0].values.state, "running", "a warm PLC is running after its first scan");
    assert.equal(actor.lastSeq, 100);
  });

  it("announces its machine type and tag list (units, ranges, limits) in the birth; the death is just offline", () => {
    const actor = actorOf("pump");
    const birth = actor.birth(T0);
    assert.equal(birth.state, "online");
    assert.equal(birth.machineType, "pump");
    const pressure = birth.tags!.find((t) => t.name === "discharge_pressure");
    assert.deepEqual(pressure, { name: "discharge_pressure", unit: "bar", type: "number", min: 0, max: 16, lo: 4, hi: 7.5 });
    assert.deepEqual(birth.tags!.find((t) => t.name === "state"), { name: "state", unit: "", type: "string" });
    assert.ok(birth.tags!.every((t) => !("noise" in t) && !("kind" in t)), "only the TagDefinition fields are published");
    assert.deepEqual(actor.death(T0 + 5), { state: "offline", ts: T0 + 5 });
  });

  it("steps the physics with the real elapsed time: late and irregular ticks give the same process", () => {
    const regular = actorOf("oven");
    const late = actorOf("oven");
    for (const a of [regular, late]) command(a, "setpoint", "temp_sp", 150);
    const clock = new SimClock();
    regular.scan(clock.now);
    late.scan(clock.now);
    const a = clock.run(regular, 600, 1000).at(-1)!;
    let t = T0;
    let b = late.scan(t);
    for (const gap of [10_000, 1_000, 2_700, 300, 86_000, 500_000]) b = late.scan((t += gap));
    assert.equal(t, clock.now);
    // Same physics, different sensor noise draws: equal within the noise.
    assert.ok(Math.abs(num(a, "zone_temp") - num(b, "zone_temp")) < 1, `${num(a, "zone_temp")} vs ${num(b, "zone_temp")}`);
    assert.ok(Math.abs(num(a, "heater_power") - num(b, "heater_power")) < 1.5);
  });

  it("survives a clock that goes backwards (no negative time step)", () => {
    const actor = actorOf("conveyor");
    actor.scan(T0 + 10_000);
    const back = actor.scan(T0);
    assert.equal(back.values.state, "starting");
    assert.ok(Number.isFinite(num(back, "belt_speed")));
  });

  describe("run states and commands", () => {
    it("stopped → starting → running → stopping → stopped", () => {
      const actor = new PlcActor(plantLayout(5, 1, "plant1")[2], { warm: false });
      const clock = new SimClock();
      assert.equal(actor.scan(clock.now).values.state, "stopped");
      assert.equal(command(actor, "start").status, "accepted");
      const startup = clock.runUntil(actor, (t) => t.values.state === "running", 30, 100);
      assert.ok(startup.length > 10, "a pump needs a few seconds to reach speed");
      assert.ok(startup.slice(0, -1).every((t) => t.values.state === "starting"));
      assert.ok(num(startup.at(-1)!, "flow") > 40);
      assert.equal(command(actor, "stop").status, "accepted");
      const rundown = clock.runUntil(actor, (t) => t.values.state === "stopped", 60, 100);
      assert.ok(rundown.slice(0, -1).every((t) => t.values.state === "stopping"));
    });

    it("accepts repeated start and stop as no-ops, and rejects a reset when not faulted", () => {
      const actor = actorOf("conveyor");
      const clock = new SimClock();
      actor.scan(clock.now);
      clock.run(actor, 5);
      assert.equal(command(actor, "start").status, "accepted");
      assert.equal(actor.runState, "running");
      const reset = command(actor, "reset");
      assert.equal(reset.status, "rejected");
      assert.match(reset.reason!, /not faulted/);
      command(actor, "stop");
      assert.equal(actor.runState, "stopping");
      assert.equal(command(actor, "stop").status, "accepted");
      assert.equal(actor.runState, "stopping");
      // Restart while still coasting down.
      assert.equal(command(actor, "start").status, "accepted");
      assert.equal(actor.runState, "starting");
    });

    it("trips to faulted on an over-temperature, rejects start until reset, and reset only once the trip condition cleared", () => {
      const actor = actorOf("oven");
      const clock = new SimClock();
      actor.scan(clock.now);
      clock.run(actor, 10);
      actor.injectFault({ device: actor.device, type: "overheat", durationMs: 120_000, severity: 1 }, clock.now);
      const toTrip = clock.runUntil(actor, (t) => t.values.state === "faulted", 120);
      assert.ok(num(toTrip.at(-1)!, "zone_temp") > tagOf(actor, "zone_temp").hi!);
      assert.match(actor.tripReason!, /zone_temp .* above trip limit/);
      const start = command(actor, "start");
      assert.equal(start.status, "rejected");
      assert.match(start.reason!, /faulted/);
      const early = command(actor, "reset");
      assert.equal(early.status, "rejected");
      assert.match(early.reason!, /trip condition still present/);
      // De-energized: the oven cools below the trip limit, then a reset is accepted.
      clock.runUntil(actor, () => command(actor, "reset").status === "accepted", 1800);
      assert.equal(actor.runState, "stopped");
      assert.equal(actor.tripReason, null);
      assert.equal(command(actor, "start").status, "accepted");
      assert.equal(actor.runState, "starting");
    });

    it("accepts setpoints inside the engineering range and echoes them; rejects unknown tags and values out of range", () => {
      const actor = actorOf("oven");
      const clock = new SimClock();
      actor.scan(clock.now);
      assert.equal(command(actor, "setpoint", "temp_sp", 170).status, "accepted");
      assert.equal(clock.run(actor, 1)[0].values.temp_sp, 170);
      const unknown = command(actor, "setpoint", "zone_temp", 170);
      assert.equal(unknown.status, "rejected");
      assert.match(unknown.reason!, /unknown setpoint tag "zone_temp" \(setpoints: temp_sp\)/);
      const high = command(actor, "setpoint", "temp_sp", 300);
      assert.equal(high.status, "rejected");
      assert.match(high.reason!, /outside the engineering range 50\.\.220/);
      const missing = command(actor, "setpoint", "temp_sp");
      assert.equal(missing.status, "rejected");
      assert.match(missing.reason!, /needs a numeric value/);
      assert.equal(clock.run(actor, 1)[0].values.temp_sp, 170, "rejected setpoints change nothing");
      // Setpoints are accepted while stopped too.
      command(actor, "stop");
      assert.equal(command(actor, "setpoint", "temp_sp", 150).status, "accepted");
    });

    it("acknowledges with the command's id", () => {
      const actor = actorOf("press");
      const ack = actor.handleCommand({ id: "abc-123", action: "stop", ts: T0 }, T0 + 7);
      assert.deepEqual(ack, { id: "abc-123", status: "accepted", ts: T0 + 7 });
      const odd = actor.handleCommand({ id: "x", action: "explode" as "stop", ts: T0 }, T0);
      assert.equal(odd.status, "rejected");
    });
  });
});
