import { strict as assert } from "node:assert";
import { FaultSpecError, HISTORY_LIMIT } from "../../../src/plc/faults.ts";
import type { MachineType } from "../../../src/plc/model.ts";
import { tagSpecs } from "../../../src/plc/models/index.ts";
import { faultScale } from "../../../src/plc/tags.ts";
import type { FaultSpec, TelemetryPayload } from "../../../src/shared/types.ts";
import { actorOf, linearFit, mean, num, series, SimClock, stdDev, tagOf } from "./sim.ts";

/**
 * A faulty PLC and its healthy twin (same seed): the sensor noise streams are the same, so the
 * difference between the two is exactly what the fault does.
 */
function twins(type: MachineType, warmUpS = 30) {
  const faulty = actorOf(type, 11);
  const healthy = actorOf(type, 11);
  const clock = new SimClock();
  faulty.scan(clock.now);
  healthy.scan(clock.now);
  const faultyClock = new SimClock(clock.now);
  faultyClock.run(faulty, warmUpS);
  clock.run(healthy, warmUpS);
  return {
    faulty,
    healthy,
    clock,
    inject(spec: Omit<FaultSpec, "device">) {
      return faulty.injectFault({ device: faulty.device, ...spec }, clock.now);
    },
    /** Scans both for `seconds`; a fault injected now for that long is active in every sample but the last. */
    run(seconds: number, stepMs = 1000): { f: TelemetryPayload[]; h: TelemetryPayload[] } {
      const f = new SimClock(clock.now).run(faulty, seconds, stepMs);
      const h = clock.run(healthy, seconds, stepMs);
      return { f, h };
    },
    /** Scans both through a fault's whole window: the samples taken while it is active. */
    during(seconds: number, stepMs = 1000): { f: TelemetryPayload[]; h: TelemetryPayload[] } {
      const { f, h } = this.run(seconds, stepMs);
      return { f: f.slice(0, -1), h: h.slice(0, -1) };
    },
  };
}

function diff(f: TelemetryPayload[], h: TelemetryPayload[], tag: string): number[] {
  return f.map((t, i) => num(t, tag) - num(h[i], tag));
}

function magnitudeOf(type: MachineType, tag: string): number {
  return faultScale(tagSpecs(type).find((s) => s.name === tag)!).magnitude;
}

function otherTagsUnchanged(f: TelemetryPayload[], h: TelemetryPayload[], tag: string): void {
  for (let i = 0; i < f.length; i++) {
    for (const name of Object.keys(f[i].values)) if (name !== tag) assert.deepEqual(f[i].values[name], h[i].values[name], `${name} at sample ${i}`);
  }
}

describe("plc fault injection", function () {
  this.timeout(30_000);

  it("drift: a bias on one tag growing linearly to past hi at severity 1; the other tags unchanged", () => {
    const sim = twins("oven");
    const truth = sim.inject({ type: "drift", tag: "zone_temp", durationMs: 600_000, severity: 1 });
    const { f, h } = sim.during(600);
    const bias = diff(f, h, "zone_temp");
    const fit = linearFit(bias.map((_, i) => i + 1), bias);
    const magnitude = magnitudeOf("oven", "zone_temp");
    assert.ok(fit.r2 > 0.999, `linear: R² ${fit.r2}`);
    assert.ok(Math.abs(fit.slope - magnitude / 600) < 0.02 * (magnitude / 600), `slope ${fit.slope}`);
    assert.ok(Math.abs(bias[0]) < 0.3, "starts at zero");
    assert.ok(num(f.at(-1)!, "zone_temp") > tagOf(sim.faulty, "zone_temp").hi! + 5, "clearly past hi by the end");
    otherTagsUnchanged(f, h, "zone_temp");
    assert.deepEqual(truth.tags, ["zone_temp"]);
    // Over: back to the twin's values.
    const after = sim.run(10);
    assert.deepEqual(after.f.map((t) => t.values), after.h.map((t) => t.values));
  });

  it("offset: a constant bias that pushes the tag past hi at severity 1 and half as far at 0.5", () => {
    for (const [type, tag] of [["pump", "flow"], ["compressor", "outlet_pressure"], ["press", "cycle_time"], ["conveyor", "belt_speed"], ["oven", "zone_temp"]] as const) {
      const sim = twins(type);
      sim.inject({ type: "offset", tag, durationMs: 60_000, severity: 1 });
      const { f, h } = sim.during(60);
      const hi = tagOf(sim.faulty, tag).hi!;
      assert.ok(series(f, tag).every((v) => v > hi), `${type}.${tag}: every sample above hi ${hi}: min ${Math.min(...series(f, tag))}`);
      const bias = diff(f, h, tag);
      assert.ok(stdDev(bias) < 0.01 * magnitudeOf(type, tag) + 0.01, "constant");
      otherTagsUnchanged(f, h, tag);
    }
    const sim = twins("pump");
    sim.inject({ type: "offset", tag: "flow", durationMs: 60_000, severity: 0.5 });
    const { f, h } = sim.run(30);
    assert.ok(Math.abs(mean(diff(f, h, "flow")) - 0.5 * magnitudeOf("pump", "flow")) < 0.2);
  });

  it("stuck: the value freezes at its last reading (zero variance) and moves again afterwards", () => {
    const sim = twins("pump");
    const before = sim.run(5).f.at(-1)!;
    sim.inject({ type: "stuck", tag: "discharge_pressure", durationMs: 60_000, severity: 1 });
    const { f, h } = sim.during(60);
    const stuck = series(f, "discharge_pressure");
    assert.equal(new Set(stuck).size, 1, "one value: zero variance");
    assert.equal(stuck[0], num(before, "discharge_pressure"));
    assert.ok(stdDev(series(h, "discharge_pressure")) > 0.01, "the healthy twin keeps moving");
    otherTagsUnchanged(f, h, "discharge_pressure");
    assert.ok(stdDev(series(sim.run(30).f, "discharge_pressure")) > 0.01, "moves again after the fault");
  });

  it("noise: the variance grows with severity while the mean stays", () => {
    const sim = twins("compressor");
    sim.inject({ type: "noise", tag: "outlet_temp", durationMs: 300_000, severity: 1 });
    const { f, h } = sim.during(300);
    const extra = diff(f, h, "outlet_temp");
    const expected = 0.25 * magnitudeOf("compressor", "outlet_temp");
    assert.ok(Math.abs(stdDev(extra) - expected) < 0.15 * expected, `sd ${stdDev(extra)} vs ${expected}`);
    assert.ok(Math.abs(mean(extra)) < 0.2 * expected);
    assert.ok(stdDev(series(f, "outlet_temp")) > 2 * stdDev(series(h, "outlet_temp")));
    otherTagsUnchanged(f, h, "outlet_temp");
  });

  it("spike: isolated single-sample excursions, the first on the fault's first scan", () => {
    const sim = twins("oven");
    sim.inject({ type: "spike", tag: "zone_temp", durationMs: 120_000, severity: 1 });
    const { f, h } = sim.during(120, 500);
    const d = diff(f, h, "zone_temp");
    const magnitude = magnitudeOf("oven", "zone_temp");
    const spikes = d.map((x, i) => (Math.abs(x) > 0.5 * magnitude ? i : -1)).filter((i) => i >= 0);
    assert.equal(spikes[0], 0);
    assert.ok(spikes.length >= 10 && spikes.length <= 60, `${spikes.length} spikes in 240 scans`);
    for (let i = 1; i < spikes.length; i++) assert.ok(spikes[i] - spikes[i - 1] >= 2, "never two in a row");
    assert.ok(d.every((x) => x === 0 || Math.abs(x) > 0.5 * magnitude), "between spikes the reading is the healthy one");
    otherTagsUnchanged(f, h, "zone_temp");
  });

  it("overheat (oven): uncontrolled heat; the controller backs off the heater while the zone leaves its band past hi", () => {
    const sim = twins("oven");
    const truth = sim.inject({ type: "overheat", durationMs: 30_000, severity: 1 });
    assert.deepEqual(truth.tags, ["zone_temp", "heater_power"]);
    const { f, h } = sim.during(30);
    assert.ok(num(f.at(-1)!, "zone_temp") > tagOf(sim.faulty, "zone_temp").hi! + 5);
    assert.ok(num(f.at(-1)!, "heater_power") < num(h.at(-1)!, "heater_power") - 5);
  });

  it("overheat (other machines): the temperature tag passes hi within the fault's duration, then the protection trips", () => {
    for (const [type, tag] of [["press", "oil_temp"], ["pump", "bearing_temp"], ["conveyor", "motor_temp"], ["compressor", "outlet_temp"]] as const) {
      for (const durationS of [20, 600]) {
        const sim = twins(type);
        const truth = sim.inject({ type: "overheat", durationMs: durationS * 1000, severity: 1 });
        assert.deepEqual(truth.tags, [tag]);
        const { f } = sim.during(durationS);
        const temp = series(f, tag);
        const hi = tagOf(sim.faulty, tag).hi!;
        const firstAbove = temp.findIndex((v) => v > hi);
        assert.ok(firstAbove > 0 && firstAbove < durationS, `${type}: past hi ${hi} within ${durationS} s (at ${firstAbove})`);
        assert.ok(f.some((t) => t.values.state === "faulted"), `${type}: tripped at severity 1`);
      }
      // Severity 0.5 stays running and visible.
      const sim = twins(type);
      sim.inject({ type: "overheat", durationMs: 600_000, severity: 0.5 });
      const { f, h } = sim.during(600);
      assert.ok(f.every((t) => t.values.state === "running"));
      assert.ok(num(f.at(-1)!, tag) > num(h.at(-1)!, tag) + 0.4 * (tagOf(sim.faulty, tag).hi! - num(h.at(-1)!, tag)));
    }
  });

  it("bearing-wear (pump): vibration and bearing temperature rise slowly, then faster, past hi by the end", () => {
    const sim = twins("pump");
    const truth = sim.inject({ type: "bearing-wear", durationMs: 3_600_000, severity: 1 });
    assert.deepEqual(truth.tags, ["vibration", "bearing_temp"]);
    const { f, h } = sim.during(3600, 5000);
    const vib = diff(f, h, "vibration");
    const quarter = Math.floor(vib.length / 4);
    const early = linearFit(vib.slice(0, quarter).map((_, i) => i), vib.slice(0, quarter)).slope;
    const late = linearFit(vib.slice(-quarter).map((_, i) => i), vib.slice(-quarter)).slope;
    assert.ok(late > 3 * early && early > 0, `accelerating: early slope ${early}, late ${late}`);
    assert.ok(num(f.at(-1)!, "vibration") > tagOf(sim.faulty, "vibration").hi!);
    assert.ok(num(f.at(-1)!, "bearing_temp") > tagOf(sim.faulty, "bearing_temp").hi!);
    assert.ok(f.every((t) => t.values.state === "running"), "alarms, but no trip");
    assert.deepEqual(series(f, "flow"), series(h, "flow"), "hydraulics unaffected");
  });

  it("leak (pump): flow up, pressure down past lo, current up: a correlated shift", () => {
    const sim = twins("pump");
    const truth = sim.inject({ type: "leak", durationMs: 120_000, severity: 1 });
    assert.deepEqual(truth.tags, ["flow", "discharge_pressure", "motor_current"]);
    sim.run(30);
    const { f, h } = sim.run(60);
    assert.ok(mean(diff(f, h, "flow")) > 20);
    assert.ok(mean(diff(f, h, "discharge_pressure")) < -2);
    assert.ok(mean(diff(f, h, "motor_current")) > 5);
    assert.ok(series(f, "discharge_pressure").every((v) => v < tagOf(sim.faulty, "discharge_pressure").lo!));
    assert.deepEqual(series(f, "vibration"), series(h, "vibration"));
  });

  describe("ground truth", () => {
    it("records device, type, tags, start, end and severity; a start in the future waits for its time", () => {
      const sim = twins("pump");
      const start = sim.clock.now + 10_000;
      const truth = sim.inject({ type: "offset", tag: "flow", start, durationMs: 20_000, severity: 0.8 });
      assert.deepEqual({ ...truth, faultId: "" }, { faultId: "", device: "pump-01", type: "offset", tags: ["flow"], start, end: start + 20_000, severity: 0.8 });
      assert.match(truth.faultId, /^pump-01-\d+-\d+$/);
      assert.deepEqual(sim.faulty.activeFaults(sim.clock.now), [truth]);
      const { f, h } = sim.run(40);
      const shifted = diff(f, h, "flow").map((d, i) => (Math.abs(d) > 1 ? i + 1 : 0)).filter(Boolean);
      assert.equal(shifted[0], 10);
      assert.equal(shifted.at(-1), 29);
      assert.equal(shifted.length, 20);
      assert.deepEqual(sim.faulty.activeFaults(sim.clock.now), []);
      assert.deepEqual(sim.faulty.groundTruth(), [truth]);
    });

    it("defaults: start now, the machine's primary tag for sensor faults; fault ids are unique", () => {
      const actor = actorOf("oven");
      const a = actor.injectFault({ device: "oven-01", type: "drift", durationMs: 1000, severity: 0.1 }, 5_000);
      const b = actor.injectFault({ device: "oven-01", type: "drift", durationMs: 1000, severity: 0.1 }, 5_000);
      assert.equal(a.start, 5_000);
      assert.deepEqual(a.tags, ["zone_temp"]);
      assert.notEqual(a.faultId, b.faultId);
    });

    it("clearing ends active faults now and cancels scheduled ones; the history keeps the corrected record", () => {
      const actor = actorOf("pump");
      const active = actor.injectFault({ device: "pump-01", type: "leak", start: 1_000, durationMs: 60_000, severity: 1 }, 1_000);
      const later = actor.injectFault({ device: "pump-01", type: "spike", start: 50_000, durationMs: 60_000, severity: 1 }, 1_000);
      const cleared = actor.clearFaults(20_000);
      assert.deepEqual(cleared, [{ ...active, end: 20_000 }, { ...later, end: later.start }]);
      assert.deepEqual(actor.groundTruth(), cleared);
      assert.deepEqual(actor.activeFaults(20_000), []);
    });

    it("keeps a bounded history", () => {
      const actor = actorOf("press");
      for (let i = 0; i < HISTORY_LIMIT + 5; i++) actor.injectFault({ device: "press-01", type: "spike", start: i, durationMs: 1, severity: 0.1 }, 0);
      actor.scan(HISTORY_LIMIT + 10);
      const history = actor.groundTruth();
      assert.equal(history.length, HISTORY_LIMIT);
      assert.equal(history[0].start, 5);
    });

    it("rejects faults that cannot happen, saying why", () => {
      const oven = actorOf("oven");
      const cases: [FaultSpec, RegExp][] = [
        [{ device: "oven-01", type: "leak", durationMs: 1000, severity: 1 }, /leak is not a fault of a oven \(it has: overheat\)/],
        [{ device: "oven-01", type: "drift", tag: "nope", durationMs: 1000, severity: 1 }, /no tag "nope"/],
        [{ device: "oven-01", type: "stuck", tag: "door_open", durationMs: 1000, severity: 1 }, /analog tags only/],
        [{ device: "oven-01", type: "offset", tag: "temp_sp", durationMs: 1000, severity: 1 }, /analog tags only/],
        [{ device: "oven-01", type: "offset", durationMs: 1000, severity: 2 }, /severity must be from 0 to 1/],
        [{ device: "oven-01", type: "offset", durationMs: 0, severity: 1 }, /durationMs must be positive/],
        [{ device: "pump-01", type: "offset", durationMs: 1000, severity: 1 }, /sent to PLC oven-01/],
        [{ device: "oven-01", type: "melt" as "offset", durationMs: 1000, severity: 1 }, /unknown fault type/],
      ];
      for (const [spec, reason] of cases) assert.throws(() => oven.injectFault(spec, 0), (err: Error) => err instanceof FaultSpecError && reason.test(err.message), JSON.stringify(spec));
      assert.deepEqual(oven.groundTruth(), []);
    });
  });
});
