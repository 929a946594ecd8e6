import { strict as assert } from "node:assert";
import { applyDeviceUpdate, effectiveDevice } from "../../src/devices/overrides.ts";
import type { DeviceDocument, DeviceOverrides } from "../../src/shared/types.ts";

const oven: DeviceDocument = {
  _id: "oven-01",
  site: "plant1",
  area: "paint-shop",
  line: "line1",
  machineType: "oven",
  state: "online",
  updatedAt: 1,
  tags: [
    { name: "zone_temp", unit: "°C", type: "number", min: 0, max: 400, lo: 100, hi: 192, alarm: { onDelayMs: 1000, severity: { hi: "medium" } } },
    { name: "state", unit: "", type: "string" },
  ],
};

function applied(device: DeviceDocument, update: Parameters<typeof applyDeviceUpdate>[1]): DeviceOverrides {
  const result = applyDeviceUpdate(device, update, "eve", 1000);
  assert.ok(result.ok, result.ok ? "" : `${result.field}: ${result.message}`);
  return result.value;
}

describe("device overrides", () => {
  it("sets, keeps and removes limits and alarm settings over the birth's", () => {
    const first = applied(oven, { tags: { zone_temp: { hi: 170, hihi: 190, alarm: { onDelayMs: 0, severity: { hihi: "critical" } } } }, metadata: { location: "hall 2" } });
    assert.deepEqual([first.updatedBy, first.updatedAt, first.revision], ["eve", 1000, 1]);
    const second = applied({ ...oven, overrides: first }, { tags: { zone_temp: { lo: null, alarm: { offDelayMs: 500 } } } });
    const zone = effectiveDevice({ ...oven, overrides: second }).tags[0];
    assert.deepEqual(zone, {
      name: "zone_temp",
      unit: "°C",
      type: "number",
      min: 0,
      max: 400,
      hi: 170,
      hihi: 190,
      alarm: { onDelayMs: 0, offDelayMs: 500, severity: { hi: "medium", hihi: "critical" } },
    });
    assert.deepEqual(effectiveDevice({ ...oven, overrides: second }).metadata, { location: "hall 2" });
    // A birth rewrites `tags`; the overrides stay beside them and still apply.
    const reborn = { ...oven, tags: oven.tags.map((t) => ({ ...t })), updatedAt: 2, overrides: second };
    assert.equal(effectiveDevice(reborn).tags[0].hi, 170);
  });

  it("removes metadata entries with null", () => {
    const first = applied(oven, { metadata: { name: "Oven 1", location: "hall 2" } });
    const second = applied({ ...oven, overrides: first }, { metadata: { location: null } });
    assert.deepEqual(second.metadata, { name: "Oven 1" });
  });

  it("refuses what cannot be right, naming the field", () => {
    const refused = (update: Parameters<typeof applyDeviceUpdate>[1]) => {
      const result = applyDeviceUpdate(oven, update, "eve", 1000);
      assert.ok(!result.ok, "refused");
      return [result.field, result.message];
    };
    assert.deepEqual(refused({ tags: { nope: { hi: 1 } } }), ["tags.nope", 'tag "nope" is not a tag of oven-01 (tags: zone_temp, state)']);
    assert.equal(refused({ tags: { state: { hi: 1 } } })[0], "tags.state");
    assert.deepEqual(refused({ tags: { zone_temp: { hi: 500 } } }), ["tags.zone_temp.hi", "hi 500 is outside the engineering range of zone_temp: 0..400 °C"]);
    assert.equal(refused({ tags: { zone_temp: { hi: 90 } } })[0], "tags.zone_temp.hi", "hi below the birth's lo");
    assert.equal(refused({ tags: { zone_temp: { lo: 192 } } })[0], "tags.zone_temp.lo", "lo equal to hi");
    assert.equal(refused({ tags: { zone_temp: { hihi: 180 } } })[0], "tags.zone_temp.hihi", "hihi below hi");
    assert.equal(refused({ tags: { zone_temp: { lolo: 150 } } })[0], "tags.zone_temp.lolo", "lolo above lo");
    assert.equal(refused({})[0], "tags");
    const many = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, "v"]));
    assert.equal(refused({ metadata: many })[0], "metadata");
  });

  it("accepts equal lolo/lo and hi/hihi, and limits on the range's edges", () => {
    const value = applied(oven, { tags: { zone_temp: { lolo: 100, lo: 100, hi: 400, hihi: 400 } } });
    assert.deepEqual(effectiveDevice({ ...oven, overrides: value }).tags[0].hihi, 400);
  });
});
