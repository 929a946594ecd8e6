import { strict as assert } from "node:assert";
import { MACHINE_TYPES } from "../../../src/plc/model.ts";
import { tagSpecs } from "../../../src/plc/models/index.ts";
import { pumpOperatingPoint } from "../../../src/plc/models/pump.ts";
import { actorOf, command, num, series, SimClock } from "./sim.ts";

describe("plc process models", function () {
  this.timeout(60_000);

  describe("healthy running stays inside the alarm limits", () => {
    for (const type of MACHINE_TYPES) {
      it(`${type}: one simulated hour per seed, every analog tag inside its normal band, the band inside lo/hi with margin`, () => {
        const specs = tagSpecs(type).filter((s) => s.kind === "analog");
        for (const spec of specs) {
          assert.ok(spec.normal, `${spec.name} declares its normal band`);
          const [low, high] = spec.normal;
          if (spec.hi !== undefined) assert.ok(spec.hi - high >= 0.05 * (spec.hi - low), `${spec.name}: margin below hi`);
          if (spec.lo !== undefined) assert.ok(low - spec.lo >= 0.05 * (high - spec.lo), `${spec.name}: margin above lo`);
        }
        for (const seed of [1, 2, 3]) {
          const actor = actorOf(type, seed);
          const clock = new SimClock();
          actor.scan(clock.now);
          const samples = clock.run(actor, 3600);
          assert.ok(samples.slice(5).every((t) => t.values.state === "running"), "running throughout");
          for (const spec of specs) {
            const values = series(samples, spec.name);
            const [low, high] = spec.normal!;
            const min = Math.min(...values);
            const max = Math.max(...values);
            assert.ok(min >= low && max <= high, `${type} seed ${seed} ${spec.name}: [${min}, ${max}] outside its normal band [${low}, ${high}]`);
          }
        }
      });
    }
  });

  it("every tag has a unit, a type and an engineering range where it is a number", () => {
    for (const type of MACHINE_TYPES) {
      for (const spec of tagSpecs(type)) {
        assert.equal(typeof spec.unit, "string");
        if (spec.type === "number" && spec.kind !== "counter") assert.ok(spec.min !== undefined && spec.max !== undefined, `${type}.${spec.name} has min and max`);
        if (spec.kind === "counter") assert.equal(spec.min, 0);
      }
    }
  });

  it("counters are integers and the press counts one stroke per cycle", () => {
    const actor = actorOf("press");
    const clock = new SimClock();
    actor.scan(clock.now);
    const samples = clock.run(actor, 600, 100);
    const counts = series(samples, "cycle_count");
    assert.ok(counts.every(Number.isInteger));
    for (let i = 1; i < counts.length; i++) assert.ok(counts[i] - counts[i - 1] === 0 || counts[i] - counts[i - 1] === 1);
    const strokes = counts.at(-1)! - counts[0];
    assert.ok(strokes >= 48 && strokes <= 51, `${strokes} strokes in 10 min at ~12 s per cycle`);
    // The profile: ram goes to the bottom (400 mm) while the pressure peaks at the setpoint, and back to the top.
    const ram = series(samples, "ram_position");
    const pressure = series(samples, "hydraulic_pressure");
    assert.ok(Math.max(...ram) > 399 && Math.min(...ram) < 1);
    assert.ok(Math.max(...pressure) > 178 && Math.max(...pressure) < 183);
    const atBottom = samples.filter((t) => num(t, "ram_position") > 399.8);
    assert.ok(mean(atBottom.map((t) => num(t, "hydraulic_pressure"))) > 170, "pressure at the setpoint during dwell");
    const conveyor = actorOf("conveyor");
    conveyor.scan(clock.now);
    assert.ok(series(clock.run(conveyor, 60), "item_count").every(Number.isInteger));
  });

  it("oven: a setpoint step is followed with a lag of about a minute and a small overshoot, inside hi", () => {
    const actor = actorOf("oven");
    const clock = new SimClock();
    actor.scan(clock.now);
    assert.equal(command(actor, "setpoint", "temp_sp", 160).status, "accepted");
    clock.run(actor, 1800);
    assert.equal(command(actor, "setpoint", "temp_sp", 180).status, "accepted");
    const samples = clock.run(actor, 1200);
    const temp = series(samples, "zone_temp");
    const t63 = temp.findIndex((v) => v >= 160 + 0.63 * 20) + 1;
    assert.ok(t63 >= 30 && t63 <= 150, `63 % of the step after ${t63} s`);
    const peak = Math.max(...temp);
    const overshoot = (peak - 180) / 20;
    assert.ok(overshoot > 0.02 && overshoot < 0.3, `overshoot ${(overshoot * 100).toFixed(1)} %`);
    assert.ok(peak < 192, "below hi");
    assert.ok(Math.abs(mean(temp.slice(-300)) - 180) < 0.5, "settles at the setpoint");
    assert.equal(samples.at(-1)!.values.temp_sp, 180);
    // The heater works harder while heating up than at the new steady state.
    const power = series(samples, "heater_power");
    assert.ok(Math.max(...power.slice(0, 60)) > mean(power.slice(-300)) + 10);
  });

  it("pump: flow and pressure follow the pump curve and the valve opening, current rises with flow", () => {
    const closed = pumpOperatingPoint(1, 0.4, 0);
    const open = pumpOperatingPoint(1, 1, 0);
    assert.ok(open.flow > closed.flow && open.pressure < closed.pressure);
    assert.ok(pumpOperatingPoint(0, 1, 0).flow < 1e-6, "no flow standing still");
    const actor = actorOf("pump");
    const clock = new SimClock();
    actor.scan(clock.now);
    const before = clock.run(actor, 60);
    command(actor, "setpoint", "valve_sp", 100);
    clock.run(actor, 30);
    const after = clock.run(actor, 60);
    assert.ok(mean(series(after, "flow")) > mean(series(before, "flow")) + 8);
    assert.ok(mean(series(after, "discharge_pressure")) < mean(series(before, "discharge_pressure")) - 0.7);
    assert.ok(mean(series(after, "motor_current")) > mean(series(before, "motor_current")) + 2);
  });

  it("compressor: loads and unloads between its pressure bands, temperature tracks the duty", () => {
    const actor = actorOf("compressor");
    const clock = new SimClock();
    actor.scan(clock.now);
    const samples = clock.run(actor, 1800);
    const pressure = series(samples, "outlet_pressure");
    assert.ok(Math.max(...pressure) > 7.4 && Math.max(...pressure) < 7.6);
    assert.ok(Math.min(...pressure) > 6.4 && Math.min(...pressure) < 6.6);
    const loadChanges = samples.filter((t, i) => i > 0 && t.values.loaded !== samples[i - 1].values.loaded).length;
    assert.ok(loadChanges >= 20, `${loadChanges} load/unload changes in 30 min`);
    const loaded = samples.filter((t) => t.values.loaded === true).map((t) => num(t, "motor_current"));
    const unloaded = samples.filter((t) => t.values.loaded === false).map((t) => num(t, "motor_current"));
    assert.ok(mean(loaded) > 85 && mean(unloaded) < 45);
    // Raising the unload pressure raises the band.
    command(actor, "setpoint", "unload_sp", 8);
    const higher = clock.run(actor, 600);
    assert.ok(Math.max(...series(higher, "outlet_pressure")) > 7.9);
  });

  it("conveyor: the belt ramps to a new speed setpoint and the current follows speed and load", () => {
    const actor = actorOf("conveyor");
    const clock = new SimClock();
    actor.scan(clock.now);
    const before = clock.run(actor, 120);
    command(actor, "setpoint", "speed_sp", 0.6);
    const ramp = clock.run(actor, 10);
    assert.ok(num(ramp[0], "belt_speed") > 0.9, "ramps, no jump");
    const after = clock.run(actor, 120);
    assert.ok(Math.abs(mean(series(after, "belt_speed")) - 0.6) < 0.01);
    assert.ok(mean(series(after, "motor_current")) < mean(series(before, "motor_current")));
  });

  describe("stopped machines wind down", () => {
    const stopAndWait = (type: (typeof MACHINE_TYPES)[number]) => {
      const actor = actorOf(type);
      const clock = new SimClock();
      actor.scan(clock.now);
      clock.run(actor, 60);
      assert.equal(command(actor, "stop").status, "accepted");
      const samples = clock.run(actor, 1800);
      assert.equal(samples[0].values.state, "stopping");
      assert.equal(samples.at(-1)!.values.state, "stopped");
      return { samples, last: samples.at(-1)! };
    };

    it("oven: heater off, zone cools toward ambient, door opens once safe", () => {
      const { samples, last } = stopAndWait("oven");
      assert.ok(num(last, "zone_temp") < 40);
      assert.ok(num(last, "heater_power") < 1);
      assert.equal(last.values.door_open, true);
      const temp = series(samples, "zone_temp");
      assert.ok(temp[60] < temp[0] - 20, "cools over minutes, not at once");
    });

    it("pump: speed, flow, pressure and current go to zero; the bearing cools", () => {
      const { last } = stopAndWait("pump");
      for (const tag of ["flow", "discharge_pressure", "motor_current"]) assert.ok(Math.abs(num(last, tag)) < 0.5, `${tag} ${num(last, tag)}`);
      assert.ok(num(last, "bearing_temp") < 40);
      assert.ok(num(last, "vibration") < 0.6);
    });

    it("press: finishes its stroke, parks at the top, stops counting and loses pressure", () => {
      const { samples, last } = stopAndWait("press");
      assert.ok(Math.abs(num(last, "ram_position")) < 0.2);
      assert.ok(num(last, "hydraulic_pressure") < 1);
      const stopped = samples.findIndex((t) => t.values.state === "stopped");
      assert.ok(stopped > 0 && stopped <= 14, `parked after ${stopped} s`);
      assert.equal(num(last, "cycle_count"), num(samples[stopped], "cycle_count"));
      assert.ok(num(last, "oil_temp") < num(samples[0], "oil_temp") - 5);
    });

    it("conveyor: decelerates to standstill, no current, delivers no more items", () => {
      const { samples, last } = stopAndWait("conveyor");
      assert.ok(num(last, "belt_speed") < 0.01);
      assert.ok(num(last, "motor_current") < 0.5);
      const stopped = samples.findIndex((t) => t.values.state === "stopped");
      assert.ok(stopped >= 2 && stopped <= 5, `stopped after ${stopped} s`);
      assert.equal(num(last, "item_count"), num(samples[stopped + 1], "item_count"));
    });

    it("compressor: unloads and stops, the plant drains the receiver, outlet cools", () => {
      const { last } = stopAndWait("compressor");
      assert.equal(last.values.loaded, false);
      assert.ok(num(last, "motor_current") < 1);
      assert.ok(num(last, "outlet_pressure") < 1);
      assert.ok(num(last, "outlet_temp") < 30);
    });
  });
});

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
