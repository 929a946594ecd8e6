// The learned anomaly alarm in the running system (real NATS, MQTT, Kafka, FerretDB, Redis): a
// fault injected into a simulated PLC raises an `anomaly` alarm whose message names the tag, and
// the detector's state survives a restart of the anomaly-detector through its MongoDB checkpoint.
import { strict as assert } from "node:assert";
import type { ServiceBroker } from "moleculer";
import { MongoClient } from "mongodb";
import type { AnomalyDetectorStats } from "../../services/anomaly-detector.service.ts";
import type { AnomalyCheckpoint } from "../../src/alarms/anomaly-condition.ts";
import type { AlarmDocument, DeviceAnomalyScore, GroundTruthRecord } from "../../src/shared/types.ts";
import { cleanupRun, getJson, isolatedEnv, startServices, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

// plantLayout(2): press-01 and oven-01. An offset of zone_temp at severity 1 moves it ~24 °C (docs/plc-simulator.md).
const DEVICE = "oven-01";
const TAG = "zone_temp";
const ALARM_ID = `${DEVICE}:*:anomaly`;
const WARMUP = 100;

describe("anomaly-detector: learned anomaly alarms and checkpoints", function () {
  this.timeout(240_000);
  let env: TestSystemEnv;
  let plant: ServiceBroker;
  let detector: ServiceBroker | undefined;
  let api: string;

  const startDetector = (nodeId: string): Promise<ServiceBroker> => startServices({ ...env, NODE_ID: nodeId }, ["anomaly-detector"]);
  const score = async (): Promise<DeviceAnomalyScore & { source: string }> => (await getJson<DeviceAnomalyScore & { source: string }>(`${api}/devices/${DEVICE}/anomaly`)).body;

  before(async () => {
    env = await isolatedEnv("anomaly", {
      PLC_COUNT: "2",
      PLC_SCAN_MS: "100",
      ANOMALY_WARMUP_SAMPLES: String(WARMUP),
      ANOMALY_CHECKPOINT_MS: "1000",
      ANOMALY_SETTLE_MS: "3000",
      ANOMALY_OFF_DELAY_MS: "5000",
    });
    api = `http://127.0.0.1:${env.API_PORT}/api`;
    plant = await startServices({ ...env, NODE_ID: `anomaly-plant-${process.pid}` }, ["devices", "plc-simulator", "preprocessor", "alarms", "api"]);
    detector = await startDetector(`anomaly-1-${process.pid}`);
  });

  after(async () => {
    await detector?.stop();
    await plant?.stop();
    if (env) await cleanupRun(env);
  });

  it("learns each device, then raises an anomaly alarm for an injected offset that names the tag, value, expected value and z", async () => {
    const learnt = await waitFor(`${DEVICE}'s detector past its warm-up`, async () => {
      const s = await score();
      return s.device === DEVICE && !s.warmingUp && s.runState === "running" ? s : undefined;
    }, 90_000, 250);
    assert.equal(learnt.source, "live");
    assert.ok(learnt.tags.includes(TAG) && !learnt.tags.includes("state"), `numeric tags only: ${learnt.tags.join(", ")}`);
    assert.ok(learnt.score < 0.5, `healthy score ${learnt.score}`);
    const { status: unknown } = await getJson(`${api}/devices/no-such-device/anomaly`);
    assert.equal(unknown, 404);

    const truth = await plant.call<GroundTruthRecord, object>("plc-simulator.injectFault", { device: DEVICE, type: "offset", tag: TAG, durationMs: 60_000, severity: 1 });
    const raised = await waitFor("the anomaly alarm", async () => {
      const { body } = await getJson<{ alarms: AlarmDocument[] }>(`${api}/alarms?state=active&device=${DEVICE}`);
      return body.alarms.find((a) => a._id === ALARM_ID);
    }, 30_000, 250);
    assert.equal(raised.kind, "anomaly");
    assert.equal(raised.state, "active-unack");
    assert.ok(raised.activatedAt >= truth.start && raised.activatedAt <= truth.end, "raised while the fault was active");
    assert.match(raised.message ?? "", new RegExp(`^anomaly score [0-9.]+ ≥ 0\\.5: ${TAG} [0-9.]+ °C, expected 1[78][0-9.]* °C \\(z \\+`));
    const current = await score();
    assert.ok(current.score >= 0.5 && current.active, `score ${current.score}`);
    assert.equal(current.last?.tags[0]?.tag, TAG);
  });

  it("checkpoints to MongoDB and continues from the checkpoint after a restart, without a new warm-up", async () => {
    const before = await waitFor("a checkpoint of every device", async () => {
      const stats = await plant.call<AnomalyDetectorStats>("anomaly-detector.stats");
      return stats.anomaly.checkpointsWritten >= 2 ? stats : undefined;
    }, 20_000, 250);
    assert.equal(before.anomaly.restored, 0, "the first instance learnt from scratch");
    await detector?.stop();
    detector = undefined;

    const mongo = new MongoClient(env.MONGO_URL);
    let saved: AnomalyCheckpoint | null;
    try {
      saved = await mongo.db().collection<AnomalyCheckpoint>("anomaly_checkpoints").findOne({ _id: DEVICE });
    } finally {
      await mongo.close();
    }
    assert.ok(saved && saved.samples > WARMUP, `checkpointed after ${saved?.samples} samples`);

    detector = await startDetector(`anomaly-2-${process.pid}`);
    const resumed = await waitFor(`${DEVICE} resumed on the new instance`, async () => {
      const s = await score();
      return s.source === "live" && s.restored && s.last !== null && s.last.ts > (saved as AnomalyCheckpoint).savedAt - 60_000 && s.samples > (saved as AnomalyCheckpoint).samples ? s : undefined;
    }, 60_000, 250);
    assert.equal(resumed.warmingUp, false, "a restored detector does not warm up again");
    const stats = await plant.call<AnomalyDetectorStats>("anomaly-detector.stats");
    assert.ok(stats.anomaly.restored >= 1, `restored ${stats.anomaly.restored}`);
    assert.equal(stats.anomaly.warmingUp, 0);
  });
});
