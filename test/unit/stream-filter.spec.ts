import { strict as assert } from "node:assert";
import { ValidationError } from "../../src/shared/errors.ts";
import type { DeviceAddress } from "../../src/shared/types.ts";
import {
  filterMatches,
  matchLevels,
  parseStreamFilter,
  parseStreamKinds,
  parseStreamQuery,
  subscriptionMatches,
  subscriptionSelectsDevice,
  type StreamSubscription,
} from "../../src/stream/stream-filter.ts";

const ROOT = "scada/v1";
const oven: DeviceAddress = { site: "plant1", area: "paint-shop", line: "line2", device: "oven-02" };
const press: DeviceAddress = { site: "plant1", area: "press-shop", line: "line1", device: "press-01" };
const pump: DeviceAddress = { site: "plant2", area: "utilities", line: "line2", device: "pump-01" };

function rejects(pattern: string, message: RegExp): void {
  assert.throws(
    () => parseStreamFilter(pattern, ROOT),
    (err: unknown) => err instanceof ValidationError && err.field === "filter" && message.test(err.message),
    `${pattern} is rejected with ${message}`,
  );
}

describe("live-stream filters: MQTT matching", () => {
  it("matches + as exactly one level and # as any rest, including none", () => {
    assert.equal(matchLevels(["a", "+", "c"], ["a", "b", "c"]), true);
    assert.equal(matchLevels(["a", "+", "c"], ["a", "c"]), false);
    assert.equal(matchLevels(["a", "+"], ["a", "b", "c"]), false);
    assert.equal(matchLevels(["a", "#"], ["a", "b", "c"]), true);
    assert.equal(matchLevels(["a", "#"], ["a"]), true, "a/# matches a itself, as in MQTT");
    assert.equal(matchLevels(["#"], ["x", "y"]), true);
    assert.equal(matchLevels(["a", "b"], ["a", "b"]), true);
    assert.equal(matchLevels(["a", "b"], ["a", "b", "c"]), false);
    assert.equal(matchLevels(["a", "b", "c"], ["a", "b"]), false);
  });

  it("reads filters with or without the configured root alike", () => {
    const absolute = parseStreamFilter("scada/v1/plant1/+/line2/#", ROOT);
    const relative = parseStreamFilter("plant1/+/line2/#", ROOT);
    assert.deepEqual(absolute.levels, ["plant1", "+", "line2", "#"]);
    assert.deepEqual(relative.levels, absolute.levels);
    assert.equal(absolute.source, "scada/v1/plant1/+/line2/#", "the client's own text is kept for stats");
    assert.deepEqual(parseStreamFilter("scada/v1", ROOT).levels, ["#"], "the root alone is everything");
    assert.deepEqual(parseStreamFilter("scada/v1/#", ROOT).levels, ["#"]);
    assert.deepEqual(parseStreamFilter("#", ROOT).levels, ["#"]);
    // Only the whole root counts as the root: a site called "scada" stays a site.
    assert.deepEqual(parseStreamFilter("scada/+/+/+", ROOT).levels, ["scada", "+", "+", "+"]);
  });

  it("selects devices by site/area/line/device, every kind unless a fifth level names one", () => {
    const line2 = parseStreamFilter("plant1/+/line2/#", ROOT);
    assert.equal(filterMatches(line2, oven, "telemetry"), true);
    assert.equal(filterMatches(line2, oven, "alarms"), true);
    assert.equal(filterMatches(line2, press, "telemetry"), false, "other line");
    assert.equal(filterMatches(line2, pump, "telemetry"), false, "other site");

    const device = parseStreamFilter("plant1/paint-shop/line2/oven-02", ROOT);
    assert.equal(filterMatches(device, oven, "telemetry"), true, "a device-level filter covers its kinds");
    assert.equal(filterMatches(device, oven, "alarms"), true);

    const alarmsOnly = parseStreamFilter("+/+/+/+/alarms", ROOT);
    assert.equal(filterMatches(alarmsOnly, pump, "alarms"), true);
    assert.equal(filterMatches(alarmsOnly, pump, "telemetry"), false);

    const ovenTelemetry = parseStreamFilter("scada/v1/+/+/+/oven-02/telemetry", ROOT);
    assert.equal(filterMatches(ovenTelemetry, oven, "telemetry"), true);
    assert.equal(filterMatches(ovenTelemetry, oven, "alarms"), false);
    assert.equal(filterMatches(ovenTelemetry, press, "telemetry"), false);
  });

  it("combines filters with OR and kinds with AND", () => {
    const subscription: StreamSubscription = {
      filters: [parseStreamFilter("plant1/press-shop/#", ROOT), parseStreamFilter("plant2/+/+/pump-01", ROOT)],
      kinds: ["telemetry"],
    };
    assert.equal(subscriptionMatches(subscription, press, "telemetry"), true);
    assert.equal(subscriptionMatches(subscription, pump, "telemetry"), true);
    assert.equal(subscriptionMatches(subscription, oven, "telemetry"), false);
    assert.equal(subscriptionMatches(subscription, press, "alarms"), false, "alarms not subscribed");
    assert.equal(subscriptionSelectsDevice(subscription, pump), true);
    assert.equal(subscriptionSelectsDevice(subscription, oven), false);
  });
});

describe("live-stream filters: validation", () => {
  it("rejects malformed filters with a message naming the parameter", () => {
    rejects("", /is empty/);
    rejects("plant1/#/line2", /# before its last level/);
    rejects("plant1/line+/#", /wildcard inside the level/);
    rejects("plant1/a#", /wildcard inside the level/);
    rejects("plant1//line2/#", /invalid level ""/);
    rejects("plant1/pa_int/line2!/#", /invalid level "line2!"/);
    rejects("plant1/ /line2/#", /space in the level " ".*%2B/);
    rejects("a/b/c/d/telemetry/x", /more levels than/);
    rejects("a/b/c/d/state", /fifth level is one of telemetry, alarms/);
    rejects("plant1/+", /matches no device/);
    rejects(`plant1/${"x".repeat(600)}`, /longer than 512/);
  });

  it("reads repeated and comma-separated filters, at most the maximum", () => {
    const query = new URLSearchParams([
      ["filter", "plant1/+/line1/#,plant1/+/line2/#"],
      ["filter", "scada/v1/plant2/#"],
    ]);
    const subscription = parseStreamQuery(query, ROOT, 20);
    assert.deepEqual(subscription.filters.map((f) => f.levels.join("/")), ["plant1/+/line1/#", "plant1/+/line2/#", "plant2/#"]);
    assert.deepEqual(subscription.kinds, ["telemetry", "alarms"], "every kind by default");

    const tooMany = new URLSearchParams(Array.from({ length: 21 }, (_, i) => ["filter", `site${i}/#`]));
    assert.throws(() => parseStreamQuery(tooMany, ROOT, 20), (err: unknown) => err instanceof ValidationError && err.field === "filter" && /at most 20/.test(err.message));
    assert.throws(() => parseStreamQuery(new URLSearchParams(), ROOT, 20), (err: unknown) => err instanceof ValidationError && err.field === "filter" && /required/.test(err.message));
    assert.throws(() => parseStreamQuery(new URLSearchParams("filter="), ROOT, 20), (err: unknown) => err instanceof ValidationError && err.field === "filter");
  });

  it("reads kinds and names the parameter when one is unknown", () => {
    assert.deepEqual(parseStreamKinds(["alarms"]), ["alarms"]);
    assert.deepEqual(parseStreamKinds(["alarms,telemetry"]), ["telemetry", "alarms"]);
    assert.deepEqual(parseStreamKinds(["telemetry", "alarms"]), ["telemetry", "alarms"]);
    assert.deepEqual(parseStreamKinds([]), ["telemetry", "alarms"]);
    assert.throws(() => parseStreamKinds(["telemetry,events"]), (err: unknown) => err instanceof ValidationError && err.field === "kinds" && /"events"/.test(err.message));
    const query = new URLSearchParams("filter=%23&kinds=state");
    assert.throws(() => parseStreamQuery(query, ROOT, 20), (err: unknown) => err instanceof ValidationError && err.field === "kinds");
  });
});
