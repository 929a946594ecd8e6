import { strict as assert } from "node:assert";
import { loadConfig } from "../../src/shared/config.ts";
import { ConfigError } from "../../src/shared/errors.ts";
import { parseTimeParam } from "../../src/shared/time.ts";
import { deviceTopic, kindFilter, parseDeviceTopic } from "../../src/shared/topics.ts";

describe("unified namespace topics", () => {
  const address = { site: "plant1", area: "paint", line: "line2", device: "oven-02" };

  it("builds and parses device topics of every kind", () => {
    for (const kind of ["telemetry", "state", "cmd", "cmd/ack"] as const) {
      const topic = deviceTopic("scada/v1", address, kind);
      assert.deepEqual(parseDeviceTopic("scada/v1", topic), { ...address, kind });
    }
    assert.equal(deviceTopic("scada/v1", address, "telemetry"), "scada/v1/plant1/paint/line2/oven-02/telemetry");
    assert.equal(kindFilter("scada/v1", "state"), "scada/v1/+/+/+/+/state");
  });

  it("refuses topics with the wrong root, level count, kind or characters", () => {
    assert.equal(parseDeviceTopic("scada/v1", "other/v1/plant1/paint/line2/oven-02/telemetry"), null);
    assert.equal(parseDeviceTopic("scada/v1", "scada/v1/plant1/paint/oven-02/telemetry"), null);
    assert.equal(parseDeviceTopic("scada/v1", "scada/v1/plant1/paint/line2/oven-02/metrics"), null);
    assert.equal(parseDeviceTopic("scada/v1", "scada/v1/plant1/paint/line 2/oven-02/telemetry"), null);
    assert.equal(parseDeviceTopic("scada/v1", "scada/v1/plant1/paint/line2/oven-02/cmd/nack"), null);
  });
});

describe("configuration", () => {
  it("has local defaults for every setting", () => {
    const config = loadConfig({});
    assert.equal(config.apiPort, 8000);
    assert.equal(config.mqttUrl, "mqtt://127.0.0.1:1883");
    assert.deepEqual(config.kafkaBrokers, ["127.0.0.1:9092"]);
    assert.equal(config.plc.count, 20);
    assert.deepEqual([config.plc.shardIndex, config.plc.shardCount], [0, 1]);
    assert.ok(config.services.includes("historian"));
  });

  it("fails fast naming the bad setting", () => {
    assert.throws(() => loadConfig({ API_PORT: "eighty" }), (err: Error) => err instanceof ConfigError && /API_PORT/.test(err.message));
    assert.throws(() => loadConfig({ MONGO_URL: "postgres://x" }), /MONGO_URL must use mongodb/);
    assert.throws(() => loadConfig({ SERVICES: "historian,teleporter" }), /unknown services: teleporter/);
    assert.throws(() => loadConfig({ PLC_SHARD: "2/2" }), /PLC_SHARD/);
    assert.throws(() => loadConfig({ MQTT_TOPIC_ROOT: "scada/#" }), /MQTT_TOPIC_ROOT/);
    assert.throws(() => loadConfig({ LOG_LEVEL: "loud" }), /LOG_LEVEL/);
  });

  it("reads lists and shards", () => {
    const config = loadConfig({ SERVICES: "api, devices", KAFKA_BROKERS: "k1:9092,k2:9092", PLC_SHARD: "1/3" });
    assert.deepEqual(config.services, ["api", "devices"]);
    assert.deepEqual(config.kafkaBrokers, ["k1:9092", "k2:9092"]);
    assert.deepEqual([config.plc.shardIndex, config.plc.shardCount], [1, 3]);
  });
});

describe("time parameters", () => {
  it("accepts epoch milliseconds and ISO-8601", () => {
    assert.equal(parseTimeParam("1700000000000", "from", 0), 1_700_000_000_000);
    assert.equal(parseTimeParam(1_700_000_000_000, "from", 0), 1_700_000_000_000);
    assert.equal(parseTimeParam("2024-01-01T00:00:00Z", "from", 0), Date.UTC(2024, 0, 1));
    assert.equal(parseTimeParam(undefined, "from", 42), 42);
  });

  it("rejects anything else naming the field", () => {
    assert.throws(() => parseTimeParam("yesterday", "from", 0), /from must be/);
    assert.throws(() => parseTimeParam("2024-13-45T99:00:00Z", "to", 0), /to must be/);
    assert.throws(() => parseTimeParam({ $gt: 1 } as unknown as string, "to", 0), /to must be/);
  });
});
