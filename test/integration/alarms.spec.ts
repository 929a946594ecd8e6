// The alarm lifecycle through the real servers: telemetry on Kafka -> anomaly-detector ->
// scada.alarms.v1 -> alarms service -> MongoDB (FerretDB), operator actions over the REST
// gateway, and a Kafka replay that must not journal anything twice.
import { strict as assert } from "node:assert";
import type { ServiceBroker } from "moleculer";
import type { Consumer } from "kafkajs";
import type { AlarmWithJournal, BulkAckResult } from "../../services/alarms.service.ts";
import type { AlarmKpis } from "../../src/alarms/alarm-kpis.ts";
import { KAFKA_TOPICS } from "../../src/shared/topics.ts";
import type { AlarmDocument, AlarmTopicRecord, AlarmTransition, TagDefinition, TagValue, TelemetryRecord } from "../../src/shared/types.ts";
import { apiFetch, cleanupRun, collectTopic, isolatedEnv, kafkaClient, startServices, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

const SERVICES = ["devices", "alarms", "anomaly-detector", "api"];
const oven = { site: "plant1", area: "paint-shop", line: "line1", device: "oven-01" };
const pump = { site: "plant1", area: "utilities", line: "line1", device: "pump-01" };
const press = { site: "plant1", area: "press-shop", line: "line1", device: "press-01" };
const ovenTags: TagDefinition[] = [
  { name: "zone_temp", unit: "°C", type: "number", min: 0, max: 400, hi: 192, hihi: 200, alarm: { severity: { hihi: "critical" } } },
  { name: "state", unit: "", type: "string" },
];
const pumpTags: TagDefinition[] = [
  { name: "discharge_pressure", unit: "bar", type: "number", min: 0, max: 16, lo: 4, hi: 7.5, alarm: { onDelayMs: 2_000 } },
  { name: "state", unit: "", type: "string" },
];

interface Json<T> {
  status: number;
  body: T;
}

describe("alarms through Kafka, MongoDB and the REST API", function () {
  this.timeout(120_000);
  let env: TestSystemEnv;
  let broker: ServiceBroker;
  let api: string;
  let seq = 0;
  const topicRecords: { key: string; value: AlarmTopicRecord }[] = [];
  let collector: Consumer;

  async function produce(kind: keyof typeof KAFKA_TOPICS, messages: { key: string; value: unknown }[]): Promise<void> {
    const producer = kafkaClient().producer();
    await producer.connect();
    await producer.send({ topic: env.KAFKA_TOPIC_PREFIX + KAFKA_TOPICS[kind], messages: messages.map((m) => ({ key: m.key, value: JSON.stringify(m.value) })) });
    await producer.disconnect();
  }

  function telemetry(address: typeof oven, ts: number, values: Record<string, TagValue>): { key: string; value: TelemetryRecord } {
    const record: TelemetryRecord = { ...address, ts, seq: seq++, receivedAt: ts, values: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, { v, q: "good" as const }])) };
    return { key: address.device, value: record };
  }

  async function call<T>(method: string, path: string, body?: unknown): Promise<Json<T>> {
    const res = await apiFetch(`${api}${path}`, { method, headers: body === undefined ? {} : { "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as T };
  }

  async function alarm(id: string): Promise<AlarmWithJournal> {
    const { status, body } = await call<AlarmWithJournal>("GET", `/alarms/${id}`);
    assert.equal(status, 200, JSON.stringify(body));
    return body;
  }

  function waitState(id: string, state: AlarmDocument["state"], timeoutMs = 30_000): Promise<AlarmWithJournal> {
    return waitFor(`${id} in state ${state}`, async () => {
      const { status, body } = await call<AlarmWithJournal>("GET", `/alarms/${id}`);
      return status === 200 && body.alarm.state === state ? body : undefined;
    }, timeoutMs, 200);
  }

  before(async () => {
    env = await isolatedEnv("alarms");
    api = `http://127.0.0.1:${env.API_PORT}/api`;
    broker = await startServices(env, SERVICES);
    const now = Date.now();
    await broker.call("devices.register", { ...oven, state: "online", ts: now - 600_000, machineType: "oven", tags: ovenTags });
    await broker.call("devices.register", { ...pump, state: "online", ts: now - 600_000, machineType: "pump", tags: pumpTags });
    await broker.call("devices.register", { ...press, state: "online", ts: now - 600_000, machineType: "press", tags: [{ name: "oil_temp", unit: "°C", type: "number", hi: 58 }] });
    collector = await collectTopic<AlarmTopicRecord>(env, "alarms", topicRecords);
  });

  after(async () => {
    await collector?.disconnect();
    await broker?.stop();
    if (env) await cleanupRun(env);
  });

  it("raises H and HH from telemetry, journals the operator's acknowledgement, and clears on return", async () => {
    const t = Date.now() - 60_000;
    await produce("telemetry", [
      telemetry(oven, t, { zone_temp: 180, state: "running" }),
      telemetry(oven, t + 1_000, { zone_temp: 203.5, state: "running" }),
      // Back below HH by more than its deadband (1 % of the 400 °C span), still above H.
      telemetry(oven, t + 2_000, { zone_temp: 194, state: "running" }),
    ]);
    const hh = await waitState("oven-01:zone_temp:hihi", "rtn-unack");
    assert.deepEqual([hh.alarm.severity, hh.alarm.limit, hh.alarm.value, hh.alarm.activatedAt, hh.alarm.clearedAt], ["critical", 200, 203.5, t + 1_000, t + 2_000]);
    const h = await waitState("oven-01:zone_temp:hi", "active-unack");
    assert.equal(h.alarm.severity, "medium");

    const acked = await call<AlarmDocument>("POST", "/alarms/oven-01:zone_temp:hi/ack", { comment: "burner checked" });
    assert.equal(acked.status, 200);
    assert.equal(acked.body.state, "active-acked");
    assert.equal(acked.body.ackedBy, "admin");

    await produce("telemetry", [telemetry(oven, t + 3_000, { zone_temp: 185, state: "running" })]);
    const cleared = await waitState("oven-01:zone_temp:hi", "cleared");
    assert.deepEqual(
      cleared.journal.entries.map((e) => [e.action, e.from, e.to, e.user]),
      [
        ["activated", "cleared", "active-unack", "system"],
        ["acknowledged", "active-unack", "active-acked", "admin"],
        ["returned", "active-acked", "cleared", "system"],
      ],
    );
    assert.equal(cleared.journal.entries[1].comment, "burner checked");
    assert.match(cleared.journal.entries[0].comment ?? "", /zone_temp 203.5 °C above H 192/);
    assert.equal(cleared.journal.total, 3);
  });

  it("answers operator mistakes with 400 naming the field, 404 for unknown alarms and 409 with the reason", async () => {
    const cleared = await call<{ error: { type: string; message: string } }>("POST", "/alarms/oven-01:zone_temp:hi/ack", {});
    assert.equal(cleared.status, 409);
    assert.equal(cleared.body.error.type, "INVALID_TRANSITION");
    assert.equal(cleared.body.error.message, "nothing to acknowledge: the alarm is cleared");

    const unknown = await call<{ error: { message: string } }>("POST", "/alarms/no-such:alarm:hi/ack", {});
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error.message, /does not exist/);
    assert.equal((await call("GET", "/alarms/no-such:alarm:hi")).status, 404);

    const noDuration = await call<{ error: { fields: string[]; message: string } }>("POST", "/alarms/oven-01:zone_temp:hi/shelve", { comment: "x" });
    assert.equal(noDuration.status, 400);
    assert.deepEqual(noDuration.body.error.fields, ["durationMs"]);
    const noComment = await call<{ error: { fields: string[] } }>("POST", "/alarms/oven-01:zone_temp:hi/comments", { comment: "" });
    assert.equal(noComment.status, 400);
    assert.deepEqual(noComment.body.error.fields, ["comment"]);
    const badState = await call<{ error: { fields: string[] } }>("GET", "/alarms?state=angry");
    assert.deepEqual([badState.status, badState.body.error.fields], [400, ["state"]]);
    const badLimit = await call<{ error: { fields: string[] } }>("GET", "/alarms?limit=lots");
    assert.deepEqual([badLimit.status, badLimit.body.error.fields], [400, ["limit"]]);
    const badTime = await call<{ error: { fields: string[]; message: string } }>("GET", "/alarms?from=yesterday");
    assert.deepEqual([badTime.status, badTime.body.error.fields], [400, ["from"]]);
    const noIds = await call<{ error: { fields: string[] } }>("POST", "/alarms/ack", { ids: [] });
    assert.deepEqual([noIds.status, noIds.body.error.fields], [400, ["ids"]]);
  });

  it("acknowledges in bulk, reporting each alarm that could not be acknowledged", async () => {
    const result = await call<BulkAckResult>("POST", "/alarms/ack", { ids: ["oven-01:zone_temp:hihi", "oven-01:zone_temp:hi", "nope:x:hi"], comment: "shift handover" });
    assert.equal(result.status, 200);
    assert.deepEqual(result.body.acknowledged, ["oven-01:zone_temp:hihi"]);
    assert.deepEqual(
      result.body.failed.map((f) => [f.id, f.status]),
      [
        ["oven-01:zone_temp:hi", 409],
        ["nope:x:hi", 404],
      ],
    );
    assert.equal((await alarm("oven-01:zone_temp:hihi")).alarm.state, "cleared");
  });

  it("applies the on-delay, shelves for a duration and unshelves by itself when it expires", async () => {
    const t = Date.now() - 50_000;
    const seen = (await broker.call<{ evaluated: number }>("anomaly-detector.stats")).evaluated;
    await produce("telemetry", [
      telemetry(pump, t, { discharge_pressure: 8, state: "running" }),
      telemetry(pump, t + 1_000, { discharge_pressure: 8, state: "running" }),
    ]);
    // Beyond H for 1 s of a 2 s on-delay: nothing yet. The next sample completes the delay.
    await waitFor("the detector to see the pump", async () => (await broker.call<{ evaluated: number }>("anomaly-detector.stats")).evaluated >= seen + 2);
    assert.equal((await call("GET", "/alarms/pump-01:discharge_pressure:hi")).status, 404);
    await produce("telemetry", [telemetry(pump, t + 2_000, { discharge_pressure: 8.1, state: "running" })]);
    const raised = await waitState("pump-01:discharge_pressure:hi", "active-unack");
    assert.equal(raised.alarm.activatedAt, t + 2_000);

    const shelved = await call<AlarmDocument>("POST", "/alarms/pump-01:discharge_pressure:hi/shelve", { durationMs: 1_500, comment: "valve being replaced" });
    assert.equal(shelved.status, 200);
    assert.equal(shelved.body.state, "shelved");
    const expired = await waitState("pump-01:discharge_pressure:hi", "active-unack", 15_000);
    const last = expired.journal.entries.at(-1);
    assert.deepEqual([last?.action, last?.from, last?.to, last?.user, last?.at], ["shelve-expired", "shelved", "active-unack", "system", shelved.body.shelvedUntil]);

    await call("POST", "/alarms/pump-01:discharge_pressure:hi/shelve", { durationMs: 600_000, comment: "again" });
    const unshelved = await call<AlarmDocument>("POST", "/alarms/pump-01:discharge_pressure:hi/unshelve", { comment: "done" });
    assert.deepEqual([unshelved.status, unshelved.body.state], [200, "active-unack"]);
    const noted = await call<AlarmDocument>("POST", "/alarms/pump-01:discharge_pressure:hi/comments", { comment: "maintenance called" });
    assert.deepEqual([noted.status, noted.body.state], [200, "active-unack"]);
    const oos = await call<AlarmDocument>("POST", "/alarms/pump-01:discharge_pressure:hi/remove-from-service", { comment: "transmitter removed" });
    assert.deepEqual([oos.status, oos.body.state], [200, "out-of-service"]);
    const back = await call<AlarmDocument>("POST", "/alarms/pump-01:discharge_pressure:hi/return-to-service", {});
    assert.deepEqual([back.status, back.body.state], [200, "active-unack"]);
  });

  it("suppresses a stopped machine's process alarms", async () => {
    const t = Date.now() - 40_000;
    await produce("telemetry", [
      telemetry(pump, t, { discharge_pressure: 6, state: "running" }),
      telemetry(pump, t + 1_000, { discharge_pressure: 0.2, state: "stopping" }),
      telemetry(pump, t + 2_000, { discharge_pressure: 0, state: "stopped" }),
      telemetry(pump, t + 3_000, { discharge_pressure: 0, state: "stopped" }),
    ]);
    const lo = await waitState("pump-01:discharge_pressure:lo", "suppressed");
    assert.equal(lo.alarm.active, true);
    assert.deepEqual(lo.journal.entries.map((e) => e.action), ["suppressed", "activated"]);
    // The H alarm returned (6 bar) while the pump still ran: it waits for an acknowledgement, not hidden.
    const hi = await waitState("pump-01:discharge_pressure:hi", "rtn-unack");
    assert.equal(hi.journal.entries.at(-1)?.action, "returned");
  });

  it("raises communication loss on a death message, and after N scan cycles without data", async () => {
    await produce("telemetry", [telemetry(press, Date.now() - 1_000, { oil_temp: 45 }), telemetry(press, Date.now(), { oil_temp: 45 })]);
    await produce("events", [{ key: press.device, value: { type: "device.state", ...press, state: "offline", ts: Date.now() } }]);
    const comm = await waitState("press-01:*:comm", "active-unack");
    assert.deepEqual([comm.alarm.tag, comm.alarm.kind, comm.alarm.severity], ["*", "comm", "high"]);
    assert.match(comm.journal.entries[0].comment ?? "", /death message/);
    // The oven has sent nothing since the first test: ten of its 1 s scan cycles have passed.
    const silent = await waitState("oven-01:*:comm", "active-unack");
    assert.match(silent.journal.entries.at(-1)?.comment ?? "", /no data for \d+ ms \(10 scan cycles of 1000 ms/);
  });

  it("lists alarms by state, severity, device and activation time, paginated", async () => {
    type List = { total: number; limit: number; offset: number; alarms: AlarmDocument[] };
    // Communication-loss alarms come and go with the silence between the tests' samples: left out here.
    await waitState("pump-01:*:comm", "active-unack");
    const all = await call<List>("GET", "/alarms");
    assert.equal(all.body.total, 7);
    const ids = (list: List) => list.alarms.map((a) => a._id).sort();
    assert.deepEqual(ids((await call<List>("GET", "/alarms?state=active")).body), ["oven-01:*:comm", "press-01:*:comm", "pump-01:*:comm"]);
    assert.deepEqual(ids((await call<List>("GET", "/alarms?state=suppressed")).body), ["pump-01:discharge_pressure:lo"]);
    assert.deepEqual(ids((await call<List>("GET", "/alarms?state=unacknowledged&device=pump-01")).body), ["pump-01:*:comm", "pump-01:discharge_pressure:hi"]);
    assert.deepEqual(ids((await call<List>("GET", "/alarms?state=cleared&device=oven-01")).body), ["oven-01:zone_temp:hi", "oven-01:zone_temp:hihi"]);
    assert.deepEqual(ids((await call<List>("GET", "/alarms?severity=critical")).body), ["oven-01:zone_temp:hihi"]);
    const hh = (await alarm("oven-01:zone_temp:hihi")).alarm;
    // H and HH were raised by the same sample.
    assert.deepEqual(ids((await call<List>("GET", `/alarms?device=oven-01&from=${hh.activatedAt}&to=${new Date(hh.activatedAt).toISOString()}`)).body), ["oven-01:zone_temp:hi", "oven-01:zone_temp:hihi"]);
    assert.deepEqual(ids((await call<List>("GET", `/alarms?device=oven-01&to=${hh.activatedAt - 1}`)).body), []);
    const page1 = (await call<List>("GET", "/alarms?limit=2")).body;
    const page4 = (await call<List>("GET", "/alarms?limit=2&offset=6")).body;
    assert.deepEqual([page1.total, page1.alarms.length, page4.alarms.length, page4.offset], [7, 2, 1, 6]);
    assert.ok(page1.alarms[0].activatedAt >= page1.alarms[1].activatedAt, "newest activation first");
  });

  it("reports KPIs", async () => {
    const { status, body } = await call<AlarmKpis>("GET", "/alarms/kpis?standingAfterMs=0");
    assert.equal(status, 200);
    assert.ok(body.annunciated >= 4, `annunciated ${body.annunciated}`);
    assert.equal(body.timeToAck.acknowledged, 2);
    assert.ok(body.timeToAck.meanMs !== null && body.timeToAck.meanMs > 0);
    assert.ok(body.topBadActors.some((a) => a.alarmId === "pump-01:discharge_pressure:hi"));
    assert.deepEqual(body.standing.alarms.map((a) => a.alarmId).sort(), ["oven-01:*:comm", "press-01:*:comm", "pump-01:*:comm"]);
    assert.equal(body.current.suppressed, 1);
  });

  it("publishes every stored lifecycle transition on scada.alarms.v1 beside the condition records", async () => {
    const journalled = (await alarm("oven-01:zone_temp:hi")).journal.entries.map((e) => e._id);
    const published = await waitFor("the lifecycle records", () => {
      const ids = topicRecords.filter((r) => r.value.type === "lifecycle").map((r) => (r.value.type === "lifecycle" ? r.value.event._id : ""));
      return journalled.every((id) => ids.includes(id)) ? ids : undefined;
    });
    assert.ok(published.length >= 10);
    assert.ok(topicRecords.some((r) => r.value.type === "condition" && (r.value as AlarmTransition).alarmId === "oven-01:zone_temp:hi"));
    assert.ok(topicRecords.every((r) => r.key === r.value.type || r.key.length > 0));
  });

  it("does not apply or journal anything twice when Kafka replays the whole alarm topic", async () => {
    const ids = ["oven-01:zone_temp:hi", "oven-01:zone_temp:hihi", "pump-01:discharge_pressure:hi", "pump-01:discharge_pressure:lo", "oven-01:*:comm", "pump-01:*:comm", "press-01:*:comm"];
    const before = await Promise.all(ids.map(alarm));
    await broker.stop();
    const admin = kafkaClient().admin();
    await admin.connect();
    try {
      await admin.resetOffsets({ groupId: `${env.MOLECULER_NAMESPACE}.alarms`, topic: env.KAFKA_TOPIC_PREFIX + KAFKA_TOPICS.alarms, earliest: true });
    } finally {
      await admin.disconnect();
    }
    broker = await startServices(env, SERVICES);
    // Caught up once the group's committed offsets reach the end of every partition.
    await waitFor("the alarms service to re-consume the topic", async () => {
      const a = kafkaClient().admin();
      await a.connect();
      try {
        const topic = env.KAFKA_TOPIC_PREFIX + KAFKA_TOPICS.alarms;
        const [ends, [committed]] = await Promise.all([a.fetchTopicOffsets(topic), a.fetchOffsets({ groupId: `${env.MOLECULER_NAMESPACE}.alarms`, topics: [topic] })]);
        return ends.every((end) => committed.partitions.find((p) => p.partition === end.partition)?.offset === end.high || end.high === "0");
      } finally {
        await a.disconnect();
      }
    }, 60_000, 500);
    const after = await Promise.all(before.map((b) => alarm(b.alarm._id)));
    for (let i = 0; i < before.length; i++) {
      assert.deepEqual(after[i].alarm, before[i].alarm, `${before[i].alarm._id} unchanged`);
      assert.deepEqual(after[i].journal, before[i].journal, `${before[i].alarm._id} journal unchanged`);
    }
  });
});
