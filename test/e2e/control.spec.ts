// End to end through REST: the whole system as a user starts it; a setpoint command goes
// API → control → MQTT → PLC actor → ack → API shows it acknowledged, and the history shows the
// process responding.
import { strict as assert } from "node:assert";
import type { CommandView } from "../../src/control/commands.ts";
import type { HistoryPoint } from "../../src/shared/types.ts";
import { apiFetch, cleanupRun, getJson, isolatedEnv, startPlantwire, waitHealthy, type RunningProcess, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

interface ErrorBody {
  error: { type: string; message: string; fields?: string[] };
}

async function postJson<T>(url: string, body: unknown): Promise<{ status: number; location: string | null; body: T }> {
  const res = await apiFetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, location: res.headers.get("location"), body: (await res.json()) as T };
}

function mean(values: number[]): number {
  return values.reduce((sum, v) => sum + v, 0) / values.length;
}

describe("plantwire end to end: supervisory commands through REST", function () {
  this.timeout(240_000);
  let env: TestSystemEnv;
  let system: RunningProcess;
  let api: string;

  const history = async (device: string, tag: string, from: number) => {
    const { status, body } = await getJson<{ points: HistoryPoint[] }>(`${api}/devices/${device}/history?tag=${tag}&from=${from}`);
    assert.equal(status, 200);
    return body.points;
  };

  before(async () => {
    // A short scan gives the history enough points; the oven's dynamics run in real time whatever the scan.
    env = await isolatedEnv("e2ectl", { PLC_COUNT: "5", PLC_SCAN_MS: "200" });
    api = `http://127.0.0.1:${env.API_PORT}/api`;
    system = startPlantwire(env);
    await waitHealthy(env, system);
    await waitFor("oven-01 registered", async () => (await getJson(`${api}/devices/oven-01`)).status === 200, 30_000, 250);
  });

  after(async () => {
    const code = await system?.stop();
    if (env) await cleanupRun(env);
    assert.equal(code, 0, `plantwire did not stop cleanly:\n${system?.output()}`);
  });

  it("a setpoint change is acknowledged and the zone temperature follows it", async () => {
    // The oven holds 180 °C (normal band 177..183). A step to 150 °C: the PI loop cuts the heater,
    // which lags 20 s, and the zone (time constant 4 min) falls by about 6 °C within 30 s and
    // 16 °C within 60 s (docs/plc-simulator.md; the unit-tested model). The test asks for 5 °C.
    const start = Date.now();
    const baseline = await waitFor("10 s of stored zone temperatures", async () => {
      const points = await history("oven-01", "zone_temp", start - 60_000);
      const recent = points.filter((p) => p.ts >= Date.now() - 10_000);
      return recent.length >= 20 && points[0].ts <= Date.now() - 10_000 ? mean(recent.map((p) => p.v as number)) : undefined;
    }, 60_000, 500);
    assert.ok(Math.abs(baseline - 180) < 5, `the oven runs at its default setpoint, got ${baseline.toFixed(1)} °C`);

    const posted = await postJson<CommandView>(`${api}/devices/oven-01/commands`, { action: "setpoint", tag: "temp_sp", value: 150 });
    assert.equal(posted.status, 202, JSON.stringify(posted.body));
    assert.equal(posted.body.status, "pending");
    assert.match(posted.body.id, /^[0-9a-f-]{36}$/);
    assert.equal(posted.location, `/api/commands/${posted.body.id}`);
    const sentAt = posted.body.requestedAt;

    const acknowledged = await waitFor("the acknowledgement", async () => {
      const { status, body } = await getJson<CommandView>(`${api}/commands/${posted.body.id}`);
      assert.equal(status, 200);
      return body.status === "pending" ? undefined : body;
    }, 15_000, 100);
    assert.equal(acknowledged.status, "acknowledged", JSON.stringify(acknowledged));
    assert.deepEqual([acknowledged.device, acknowledged.action, acknowledged.tag, acknowledged.value, acknowledged.user], ["oven-01", "setpoint", "temp_sp", 150, "admin"]);

    await waitFor("the new setpoint in the stored history", async () => {
      const points = await history("oven-01", "temp_sp", sentAt);
      return points.some((p) => p.v === 150);
    }, 30_000, 500);
    const response = await waitFor("the zone temperature 5 °C below its level before the command", async () => {
      const after = (await history("oven-01", "zone_temp", sentAt)).map((p) => p.v as number);
      if (after.length < 5) return undefined;
      const now = mean(after.slice(-5));
      return now <= baseline - 5 ? { now, after } : undefined;
    }, 120_000, 1_000);
    // Down toward the new setpoint all along: never above where it was, not yet at 150 °C in this window.
    assert.ok(response.after.every((v) => v < baseline + 3 && v > 150), `zone temperatures from ${Math.max(...response.after)} to ${Math.min(...response.after)} °C`);

    const listed = await getJson<{ commands: CommandView[] }>(`${api}/commands?device=oven-01&limit=5`);
    assert.equal(listed.status, 200);
    assert.equal(listed.body.commands[0]?.id, posted.body.id);
  });

  it("answers bad commands with 400 naming the field, unknown ids with 404", async () => {
    const wrongTag = await postJson<ErrorBody>(`${api}/devices/oven-01/commands`, { action: "setpoint", tag: "zone_temp", value: 150 });
    assert.equal(wrongTag.status, 400);
    assert.deepEqual(wrongTag.body.error.fields, ["tag"]);
    assert.match(wrongTag.body.error.message, /not a setpoint of oven-01 \(setpoints: temp_sp\)/);
    const notANumber = await postJson<ErrorBody>(`${api}/devices/oven-01/commands`, { action: "setpoint", tag: "temp_sp", value: "hot" });
    assert.equal(notANumber.status, 400);
    assert.deepEqual(notANumber.body.error.fields, ["value"]);
    const outOfRange = await postJson<ErrorBody>(`${api}/devices/oven-01/commands`, { action: "setpoint", tag: "temp_sp", value: 1000 });
    assert.equal(outOfRange.status, 400);
    assert.deepEqual(outOfRange.body.error.fields, ["value"]);
    const badAction = await postJson<ErrorBody>(`${api}/devices/oven-01/commands`, { action: "explode" });
    assert.equal(badAction.status, 400);
    assert.deepEqual(badAction.body.error.fields, ["action"]);
    const unknownDevice = await postJson<ErrorBody>(`${api}/devices/no-such-plc/commands`, { action: "start" });
    assert.equal(unknownDevice.status, 404);
    assert.match(unknownDevice.body.error.message, /not registered/);
    const unknownCommand = await getJson<ErrorBody>(`${api}/commands/00000000-0000-0000-0000-000000000000`);
    assert.equal(unknownCommand.status, 404);
    const badLimit = await getJson<ErrorBody>(`${api}/commands?limit=lots`);
    assert.equal(badLimit.status, 400);
    assert.deepEqual(badLimit.body.error.fields, ["limit"]);
  });
});
