import { strict as assert } from "node:assert";
import { ConsumerLagReader, readLagReport, type LagAdmin } from "../../src/kafka/consumer-lag.ts";

/** A Kafka of two partitions per topic; offsets the test sets, and counts of the requests made. */
class FakeAdmin implements LagAdmin {
  ends: Record<string, [low: number, high: number][]> = {};
  committed: Record<string, Record<string, number[]>> = {};
  groups: { groupId: string; state: string; members: number }[] = [];
  reads = 0;

  async listGroups() {
    return { groups: this.groups.map(({ groupId }) => ({ groupId })) };
  }
  async describeGroups(ids: string[]) {
    return { groups: ids.map((groupId) => { const g = this.groups.find((x) => x.groupId === groupId); return { groupId, state: g?.state ?? "Dead", members: new Array(g?.members ?? 0).fill({}) }; }) };
  }
  async fetchTopicOffsets(topic: string) {
    this.reads++;
    return (this.ends[topic] ?? [[0, 0], [0, 0]]).map(([low, high], partition) => ({ partition, low: String(low), high: String(high) }));
  }
  async fetchOffsets({ groupId, topics }: { groupId: string; topics: string[] }) {
    return topics.map((topic) => ({ topic, partitions: [0, 1].map((partition) => ({ partition, offset: String(this.committed[groupId]?.[topic]?.[partition] ?? -1) })) }));
  }
}

describe("Kafka consumer lag", () => {
  it("reports per group and topic the committed and end offsets and the lag per partition, with the namespace and topic prefix", async () => {
    const admin = new FakeAdmin();
    admin.ends = { "t.scada.telemetry.v1": [[0, 100], [10, 50]], "t.scada.events.v1": [[0, 4], [0, 0]], "t.scada.alarms.v1": [[0, 7], [0, 3]] };
    admin.committed = {
      "ns.historian": { "t.scada.telemetry.v1": [90, 50] },
      "ns.anomaly-detector": { "t.scada.telemetry.v1": [100, 50], "t.scada.events.v1": [4, -1] },
    };
    admin.groups = [
      { groupId: "ns.historian", state: "Stable", members: 2 },
      { groupId: "ns.anomaly-detector", state: "Empty", members: 0 },
      { groupId: "ns.api-stream.node-1.abcd", state: "Stable", members: 1 },
      { groupId: "other.historian", state: "Stable", members: 1 },
    ];
    const report = await readLagReport(admin, "ns", "t.", 1234);

    assert.equal(report.at, 1234);
    assert.deepEqual(report.groups.map((g) => g.groupId), ["ns.historian", "ns.anomaly-detector", "ns.alarms", "ns.dead-letters", "ns.api-stream.node-1.abcd"], "plantwire's groups of this namespace only");
    const [historian, detector, alarms, deadLetters, stream] = report.groups;
    assert.deepEqual(historian.topics, [{ topic: "t.scada.telemetry.v1", lag: 10, partitions: [{ partition: 0, committed: 90, end: 100, lag: 10 }, { partition: 1, committed: 50, end: 50, lag: 0 }] }]);
    assert.deepEqual([historian.state, historian.members, historian.lag, historian.commits], ["Stable", 2, 10, true]);
    assert.equal(detector.lag, 0, "an empty partition with nothing committed has no lag");
    assert.deepEqual([detector.state, detector.members], ["Empty", 0]);
    // Nothing committed: the group will start at the log start, so everything retained is lag.
    assert.deepEqual(alarms.topics[0].partitions.map((p) => [p.committed, p.lag]), [[null, 7], [null, 3]]);
    assert.deepEqual([alarms.lag, alarms.state], [10, "Dead"]);
    assert.equal(deadLetters.lag, 0);
    assert.deepEqual([stream.name, stream.commits, stream.lag, stream.members, stream.topics], ["api-stream", false, null, 1, []]);

    const telemetry = report.topics.find((t) => t.topic === "t.scada.telemetry.v1");
    assert.deepEqual(telemetry, { topic: "t.scada.telemetry.v1", end: 150, partitions: [{ partition: 0, start: 0, end: 100 }, { partition: 1, start: 10, end: 50 }] });
    assert.deepEqual(report.topics.map((t) => t.topic).sort(), ["t.scada.alarms.v1", "t.scada.deadletter.v1", "t.scada.events.v1", "t.scada.telemetry.v1"]);
  });

  it("asks Kafka at most once per cache window, shares a read between concurrent callers, and does not keep a failure", async () => {
    const admin = new FakeAdmin();
    let now = 0;
    let fail = false;
    const reader = new ConsumerLagReader(async () => {
      if (fail) throw new Error("connect ECONNREFUSED 127.0.0.1:9092");
      return admin;
    }, { namespace: "ns", topicPrefix: "", cacheMs: 2_000, now: () => now });

    const [a, b] = await Promise.all([reader.read(), reader.read()]);
    assert.equal(a, b);
    const perRead = admin.reads;
    now = 1_999;
    assert.equal(await reader.read(), a);
    assert.equal(admin.reads, perRead, "cached");

    admin.ends["scada.telemetry.v1"] = [[0, 5], [0, 0]];
    now = 2_000;
    const fresh = await reader.read();
    assert.equal(admin.reads, 2 * perRead);
    assert.equal(fresh.at, 2_000);
    assert.equal(fresh.groups.find((g) => g.name === "historian")?.lag, 5);

    fail = true;
    now = 5_000;
    await assert.rejects(reader.read(), /ECONNREFUSED/);
    fail = false;
    assert.equal((await reader.read()).at, 5_000, "retried at once after a failure");
  });
});
