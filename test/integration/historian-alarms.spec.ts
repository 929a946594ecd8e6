// The consumers' contracts: Kafka in (real broker), MongoDB (FerretDB) and Redis out.
import { strict as assert } from "node:assert";
import type { ServiceBroker } from "moleculer";
import type { HistoryResult, LatestResult } from "../../services/historian.service.ts";
import { KAFKA_TOPICS } from "../../src/shared/topics.ts";
import type { AlarmDocument, TelemetryRecord } from "../../src/shared/types.ts";
import { cleanupRun, isolatedEnv, kafkaClient, startServices, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

const address = { site: "plant1", area: "utilities", line: "line1", device: "pump-01" };

async function produceTelemetry(env: TestSystemEnv, records: TelemetryRecord[]): Promise<void> {
  const producer = kafkaClient().producer();
  await producer.connect();
  await producer.send({ topic: env.KAFKA_TOPIC_PREFIX + KAFKA_TOPICS.telemetry, messages: records.map((r) => ({ key: r.device, value: JSON.stringify(r) })) });
  await producer.disconnect();
}

function records(from: number, count: number, start: number, value: (i: number) => number): TelemetryRecord[] {
  return Array.from({ length: count }, (_, i) => ({ ...address, ts: start + (from + i) * 1000, seq: from + i, receivedAt: start, values: { pressure: { v: value(i), q: "good" as const } } }));
}

describe("historian and alarms against Kafka, MongoDB and Redis", function () {
  this.timeout(90_000);
  let env: TestSystemEnv;
  let broker: ServiceBroker;
  const start = Date.now() - 600_000;

  before(async () => {
    env = await isolatedEnv("hist");
    broker = await startServices(env, ["devices", "historian", "alarms", "anomaly-detector"]);
    await broker.call("devices.register", { ...address, state: "online", ts: start, machineType: "pump", tags: [{ name: "pressure", unit: "bar", type: "number", min: 0, max: 20, lo: 2, hi: 12 }] });
  });

  after(async () => {
    await broker?.stop();
    if (env) await cleanupRun(env);
  });

  it("stores consumed telemetry, answers history in order and the latest value", async () => {
    await produceTelemetry(env, records(0, 100, start, (i) => 5 + (i % 3)));
    const history = await waitFor("100 stored points", async () => {
      const result = await broker.call<HistoryResult, object>("historian.history", { id: address.device, tag: "pressure", from: start, to: start + 200_000 });
      return result.points.length === 100 ? result : undefined;
    });
    assert.deepEqual(history.points.map((p) => p.seq), Array.from({ length: 100 }, (_, i) => i));
    const latest = await broker.call<LatestResult, object>("historian.latest", { id: address.device });
    assert.deepEqual(latest.values.pressure, { v: 5 + (99 % 3), q: "good", ts: start + 99_000 });
  });

  it("stores a replayed range exactly once", async () => {
    await produceTelemetry(env, records(0, 100, start, (i) => 5 + (i % 3)));
    await produceTelemetry(env, records(100, 10, start, () => 6));
    const history = await waitFor("the 10 records after the replay", async () => {
      const result = await broker.call<HistoryResult, object>("historian.history", { id: address.device, tag: "pressure", from: start, to: start + 200_000 });
      return result.points.some((p) => p.seq === 109) ? result : undefined;
    });
    assert.equal(history.points.length, 110, "no sample duplicated by the replay");
  });

  it("raises an alarm when a value passes a limit and clears it when it returns", async () => {
    await produceTelemetry(env, [...records(200, 5, start, () => 15), ...records(205, 5, start, () => 6)]);
    const alarm = await waitFor("a cleared high-pressure alarm", async () => {
      const { alarms } = await broker.call<{ alarms: AlarmDocument[] }, object>("alarms.list", { device: address.device });
      return alarms.find((a) => a.tag === "pressure" && a.state === "cleared");
    });
    assert.deepEqual([alarm.kind, alarm.limit, alarm.value, alarm.activatedAt, alarm.clearedAt], ["hi", 12, 15, start + 200_000, start + 205_000]);
    const { total } = await broker.call<{ total: number }, object>("alarms.list", { device: address.device });
    assert.equal(total, 1, "one alarm for one excursion");
  });

  it("rejects bad query parameters with 400s naming the field", async () => {
    await assert.rejects(broker.call("historian.history", { id: address.device, tag: "pressure", from: "last tuesday" }), (err: { code: number; message: string }) => err.code === 400 && /from must be/.test(err.message));
    await assert.rejects(broker.call("historian.history", { id: address.device, tag: "pressure", from: 10, to: 5 }), (err: { code: number }) => err.code === 400);
    await assert.rejects(broker.call("historian.history", { id: "nope", tag: "pressure" }), (err: { code: number }) => err.code === 404);
  });
});
