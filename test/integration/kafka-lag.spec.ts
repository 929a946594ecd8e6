// GET /api/system/kafka against the real servers: each consumer group's lag grows while its
// consumer is stopped and the PLCs publish, drains to 0 once the pipeline has nothing left to
// read, and the gateway answers 503 naming Kafka when it cannot reach it.
import { strict as assert } from "node:assert";
import type { ServiceBroker } from "moleculer";
import type { ConsumerGroupLag, KafkaLagReport } from "../../src/kafka/consumer-lag.ts";
import { cleanupRun, freePort, getJson, isolatedEnv, startServices, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

const committedSum = (g: ConsumerGroupLag) => g.topics.flatMap((t) => t.partitions).reduce((sum, p) => sum + (p.committed ?? 0), 0);

describe("GET /api/system/kafka: consumer lag", function () {
  this.timeout(240_000);
  let env: TestSystemEnv;
  let core: ServiceBroker | undefined;
  let plc: ServiceBroker | undefined;
  let historian: ServiceBroker | undefined;
  let api: string;

  const startHistorian = (n: number) => startServices({ ...env, NODE_ID: `lag-historian-${n}-${process.pid}` }, ["historian"]);
  const report = async (): Promise<KafkaLagReport> => {
    const { status, body } = await getJson<KafkaLagReport>(`${api}/system/kafka`);
    assert.equal(status, 200, JSON.stringify(body));
    return body;
  };
  const group = (r: KafkaLagReport, name: string): ConsumerGroupLag => {
    const g = r.groups.find((x) => x.name === name);
    assert.ok(g, `group ${name} in ${r.groups.map((x) => x.name).join(", ")}`);
    return g;
  };
  const telemetryEnd = (r: KafkaLagReport) => r.topics.find((t) => t.topic === `${env.KAFKA_TOPIC_PREFIX}scada.telemetry.v1`)?.end ?? -1;

  before(async () => {
    env = await isolatedEnv("kafkalag", { PLC_COUNT: "3", PLC_SCAN_MS: "200", HISTORIAN_SEAL_GRACE_MS: "2000" });
    api = `http://127.0.0.1:${env.API_PORT}/api`;
    core = await startServices({ ...env, NODE_ID: `lag-core-${process.pid}` }, ["devices", "preprocessor", "anomaly-detector", "alarms", "dead-letters", "api"]);
    historian = await startHistorian(1);
    plc = await startServices({ ...env, NODE_ID: `lag-plc-${process.pid}` }, ["plc-simulator"]);
  });

  after(async () => {
    await plc?.stop();
    await historian?.stop();
    await core?.stop();
    if (env) await cleanupRun(env);
  });

  it("reports every plantwire group of the run with the topics' end offsets", async () => {
    const r = await waitFor("telemetry in Kafka and every group with a member", async () => {
      const r = await report();
      return telemetryEnd(r) > 0 && ["historian", "anomaly-detector", "alarms", "dead-letters"].every((n) => group(r, n).members > 0) ? r : undefined;
    }, 60_000, 500);
    assert.deepEqual(r.groups.filter((g) => g.commits).map((g) => g.groupId), ["historian", "anomaly-detector", "alarms", "dead-letters"].map((n) => `${env.MOLECULER_NAMESPACE}.${n}`));
    assert.ok(r.groups.some((g) => g.name === "api-stream" && !g.commits && g.lag === null && g.groupId.startsWith(`${env.MOLECULER_NAMESPACE}.api-stream.`)), "the gateway's live-stream group");
    for (const g of r.groups.filter((x) => x.commits)) {
      for (const t of g.topics) {
        assert.equal(t.lag, t.partitions.reduce((sum, p) => sum + p.lag, 0), `${g.name} ${t.topic}: the sum of its partitions`);
        for (const p of t.partitions) if (p.committed !== null) assert.equal(p.lag, p.end - p.committed, `${g.name} ${t.topic}/${p.partition}`);
      }
    }
    assert.equal(telemetryEnd(r), r.topics.find((t) => t.topic.endsWith("scada.telemetry.v1"))?.partitions.reduce((s, p) => s + p.end, 0));
  });

  it("shows the historian's lag growing while it is stopped, then every lag at 0 once the pipeline drained", async () => {
    await historian?.stop();
    historian = undefined;
    const stopped = await waitFor("the historian's group without members", async () => {
      const r = await report();
      return group(r, "historian").members === 0 ? r : undefined;
    }, 30_000, 500);
    const before = group(stopped, "historian");
    const grown = await waitFor("the historian's lag growing by 100 records", async () => {
      const r = await report();
      return group(r, "historian").lag! >= before.lag! + 100 ? r : undefined;
    }, 30_000, 500);
    assert.equal(committedSum(group(grown, "historian")), committedSum(before), "nothing committed while stopped");
    assert.ok(telemetryEnd(grown) >= telemetryEnd(stopped) + 100, "the telemetry topic's end moved on");

    await plc?.stop();
    plc = undefined;
    // Quiet: the telemetry topic's end no longer moves between two readings.
    let previousEnd = -1;
    const drained = await waitFor("the running consumers caught up with a quiet plant", async () => {
      const r = await report();
      const quiet = telemetryEnd(r) === previousEnd;
      previousEnd = telemetryEnd(r);
      return quiet && group(r, "anomaly-detector").lag === 0 && group(r, "alarms").lag === 0 && group(r, "historian").lag! > 0 ? r : undefined;
    }, 30_000, 2_500);
    const end = telemetryEnd(drained);
    assert.equal(group(drained, "historian").lag, end - committedSum(group(drained, "historian")), "the stopped historian still has it all to read");

    historian = await startHistorian(2);
    const caughtUp = await waitFor("the restarted historian's lag at 0", async () => {
      const r = await report();
      return group(r, "historian").lag === 0 && group(r, "historian").members === 1 ? r : undefined;
    }, 60_000, 500);
    assert.equal(telemetryEnd(caughtUp), end, "nothing written since the plant went quiet");
    assert.equal(committedSum(group(caughtUp, "historian")), end, "committed up to the end of the topic");
  });

  it("answers 503 naming Kafka when Kafka is unreachable", async () => {
    const port = String(await freePort());
    const lonely = await startServices({ ...env, MOLECULER_NAMESPACE: `${env.MOLECULER_NAMESPACE}x`, NODE_ID: `lag-nokafka-${process.pid}`, API_PORT: port, KAFKA_BROKERS: `127.0.0.1:${await freePort()}` }, ["api"]);
    try {
      // The gateway adds a service's routes once it has seen it in the registry: 404 until then.
      const { body, ms } = await waitFor("a 503 from the new gateway", async () => {
        const started = Date.now();
        const { status, body } = await getJson<{ error: { type: string; message: string } }>(`http://127.0.0.1:${port}/api/system/kafka`);
        if (status === 404) return undefined;
        assert.equal(status, 503, JSON.stringify(body));
        return { body, ms: Date.now() - started };
      }, 10_000, 200);
      assert.equal(body.error.type, "KAFKA_UNAVAILABLE");
      assert.match(body.error.message, /^Kafka is unreachable \(127\.0\.0\.1:\d+\)/);
      assert.ok(ms < 5_000, `before the gateway's request timeout: ${ms} ms`);
    } finally {
      await lonely.stop();
    }
  });
});
