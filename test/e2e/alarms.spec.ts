// End to end: the system as a user starts it; a simulated overheat raises an alarm, an operator
// acknowledges it through the REST API, the process returns to normal, the alarm clears, and the
// alarm's journal shows each step.
import { strict as assert } from "node:assert";
import { ServiceBroker } from "moleculer";
import type { AlarmWithJournal } from "../../services/alarms.service.ts";
import type { AlarmKpis } from "../../src/alarms/alarm-kpis.ts";
import type { AlarmDocument, DeviceDocument, GroundTruthRecord } from "../../src/shared/types.ts";
import { apiFetch, cleanupRun, getJson, isolatedEnv, startPlantwire, waitHealthy, type RunningProcess, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

// docs/plc-simulator.md: an overheat (loss of cooling) at severity 0.5 drives the pump's bearing
// past hi (70 °C) without tripping it; after the fault the excess decays within its window.
const DEVICE = "pump-01";
const TAG = "bearing_temp";
const ALARM_ID = `${DEVICE}:${TAG}:hi`;
const FAULT = { device: DEVICE, type: "overheat", durationMs: 20_000, severity: 0.5 } as const;

describe("alarm lifecycle end to end", function () {
  this.timeout(180_000);
  let env: TestSystemEnv;
  let system: RunningProcess;
  let api: string;

  before(async () => {
    env = await isolatedEnv("e2ealarm", { PLC_COUNT: "5", PLC_SCAN_MS: "200" });
    api = `http://127.0.0.1:${env.API_PORT}/api`;
    system = startPlantwire(env);
    await waitHealthy(env, system);
    await waitFor(`${DEVICE} registered with its limits`, async () => {
      const { status, body } = await getJson<DeviceDocument>(`${api}/devices/${DEVICE}`);
      return status === 200 && body.tags.some((t) => t.name === TAG && t.hi === 70);
    }, 30_000, 250);
  });

  after(async () => {
    const code = await system?.stop();
    if (env) await cleanupRun(env);
    assert.equal(code, 0, `plantwire did not stop cleanly:\n${system?.output()}`);
  });

  it("raises an overheat alarm, takes the operator's acknowledgement, clears when the process recovers, and journals each step", async () => {
    const operator = new ServiceBroker({ namespace: env.MOLECULER_NAMESPACE, nodeID: `e2e-alarm-operator-${process.pid}`, transporter: { type: "NATS", options: { url: "nats://127.0.0.1:4222" } }, logger: false });
    await operator.start();
    let truth: GroundTruthRecord;
    try {
      await operator.waitForServices(["plc-simulator"], 10_000);
      truth = await operator.call<GroundTruthRecord, object>("plc-simulator.injectFault", FAULT);
      assert.ok(truth.tags.includes(TAG), `the overheat acts on ${truth.tags.join(", ")}`);
    } finally {
      await operator.stop();
    }

    const raised = await waitFor("the overheat alarm", async () => {
      const { body } = await getJson<{ alarms: AlarmDocument[] }>(`${api}/alarms?state=active&device=${DEVICE}`);
      return body.alarms.find((a) => a._id === ALARM_ID);
    }, 60_000, 250);
    assert.equal(raised.state, "active-unack");
    assert.ok(raised.value > 70, `raised at ${raised.value} °C, above hi 70`);
    assert.ok(raised.activatedAt >= truth.start && raised.activatedAt < truth.end, "raised while the fault was active");

    const ack = await apiFetch(`${api}/alarms/${ALARM_ID}/ack`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ comment: "cooling water valve checked" }) });
    const acked = (await ack.json()) as AlarmDocument;
    assert.equal(ack.status, 200, JSON.stringify(acked));
    assert.equal(acked.state, "active-acked");

    const cleared = await waitFor("the alarm to clear once the bearing cooled down", async () => {
      const { body } = await getJson<AlarmWithJournal>(`${api}/alarms/${ALARM_ID}`);
      return body.alarm.state === "cleared" ? body : undefined;
    }, 90_000, 250);
    assert.ok((cleared.alarm.clearedAt ?? 0) >= truth.end - 1_000, "returned to normal after the fault ended");
    assert.deepEqual(
      cleared.journal.entries.map((e) => [e.action, e.from, e.to, e.user]),
      [
        ["activated", "cleared", "active-unack", "system"],
        ["acknowledged", "active-unack", "active-acked", "admin"],
        ["returned", "active-acked", "cleared", "system"],
      ],
    );
    const [activated, acknowledged, returned] = cleared.journal.entries;
    assert.match(activated.comment ?? "", /bearing_temp [\d.]+ °C above H 70/);
    assert.equal(acknowledged.comment, "cooling water valve checked");
    assert.ok((acknowledged.ackDelayMs ?? -1) >= 0);
    assert.match(returned.comment ?? "", /back inside H 70/);
    assert.ok(activated.at < acknowledged.at && acknowledged.at <= returned.at, "in time order");

    const { body: kpis } = await getJson<AlarmKpis>(`${api}/alarms/kpis`);
    assert.ok(kpis.annunciated >= 1);
    assert.ok(kpis.timeToAck.acknowledged >= 1 && (kpis.timeToAck.meanMs ?? -1) >= 0);
    assert.ok(kpis.topBadActors.some((a) => a.alarmId === ALARM_ID));

    // The PLCs never stopped publishing: no communication loss may have been raised.
    const { body: comm } = await getJson<{ alarms: AlarmDocument[] }>(`${api}/alarms?tag=*`);
    assert.deepEqual(comm.alarms.map((a) => `${a._id} ${a.state} ${a.message}`), []);
  });
});
