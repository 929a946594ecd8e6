import { strict as assert } from "node:assert";
import type { TelemetryRecord } from "../../src/shared/types.ts";
import { DropOldestQueue } from "../../src/stream/bounded-queue.ts";
import { SseParser, type SseMessage } from "../../src/stream/sse.ts";
import { StreamClient, type StreamClientOptions, type StreamSink } from "../../src/stream/stream-client.ts";
import { parseStreamFilter, type StreamSubscription } from "../../src/stream/stream-filter.ts";
import { StreamHub } from "../../src/stream/stream-hub.ts";

/** A socket whose buffer is full while `full` is set. */
class FakeSink implements StreamSink {
  full = false;
  ended = false;
  destroyed = false;
  readonly parser = new SseParser();
  readonly messages: SseMessage[] = [];
  writes = 0;

  write(chunk: string): boolean {
    this.writes++;
    this.messages.push(...this.parser.feed(chunk));
    return !this.full;
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.destroyed = true;
  }
  events(name: string): SseMessage[] {
    return this.messages.filter((m) => m.event === name);
  }
}

const OPTIONS: StreamClientOptions = { queueCapacity: 4, stallTimeoutMs: 10_000, heartbeatMs: 15_000 };
const ALL: StreamSubscription = { filters: [parseStreamFilter("#", "scada/v1")], kinds: ["telemetry", "alarms"] };

function record(device: string, seq: number, line = "line1"): string {
  const r: TelemetryRecord = { site: "plant1", area: "a", line, device, ts: 1_000 + seq, seq, receivedAt: 1_000 + seq, values: { t: { v: seq, q: "good" } } };
  return JSON.stringify(r);
}

describe("live stream: drop-oldest queue", () => {
  it("keeps the newest items and counts the dropped ones", () => {
    const queue = new DropOldestQueue<number>(3);
    for (let i = 1; i <= 5; i++) queue.push(i);
    assert.equal(queue.dropped, 2);
    assert.equal(queue.enqueued, 5);
    assert.equal(queue.full, true);
    assert.deepEqual(queue.takeAll(), [3, 4, 5], "oldest first, the two oldest gone");
    assert.equal(queue.length, 0);
    queue.push(6);
    assert.deepEqual(queue.takeAll(), [6]);
  });

  it("accounts for every item: enqueued = taken + dropped + queued", () => {
    const queue = new DropOldestQueue<number>(7);
    let taken = 0;
    let next = 0;
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    let last = -1;
    for (let step = 0; step < 2000; step++) {
      if (random() < 0.8) queue.push(next++);
      else {
        const items = queue.takeAll();
        for (const item of items) {
          assert.ok(item > last, "order kept");
          last = item;
        }
        taken += items.length;
      }
      assert.equal(queue.enqueued, taken + queue.dropped + queue.length);
      assert.ok(queue.length <= 7);
    }
    assert.ok(queue.dropped > 0, "the random walk overflowed at least once");
  });

  it("refuses a capacity below one", () => {
    assert.throws(() => new DropOldestQueue(0), RangeError);
  });
});

describe("live stream: a client", () => {
  it("writes the snapshot first, then the live events held meanwhile, with consecutive ids", () => {
    const sink = new FakeSink();
    const client = new StreamClient(1, ALL, sink, { ...OPTIONS, queueCapacity: 10 }, 0);
    client.enqueue("telemetry", record("d1", 1), 1);
    client.flush(1);
    assert.equal(sink.writes, 0, "nothing before the snapshot is released");
    client.writeDirect("event: snapshot\ndata: {}\n\n", 2);
    client.enqueue("alarms", JSON.stringify({ device: "d1" }), 3);
    client.release(4);
    assert.deepEqual(sink.messages.map((m) => `${m.event}#${m.id}`), ["snapshot#", "telemetry#1", "alarm#2"]);
  });

  it("drops the oldest while the socket is full, then announces the count before the rest", () => {
    const sink = new FakeSink();
    const client = new StreamClient(1, ALL, sink, OPTIONS, 0);
    client.release(0);
    client.enqueue("telemetry", record("d1", 1), 1);
    sink.full = true;
    client.flush(1); // the socket buffer fills with event 1
    for (let seq = 2; seq <= 11; seq++) client.enqueue("telemetry", record("d1", seq), 2);
    client.flush(2);
    assert.equal(sink.events("telemetry").length, 1, "nothing written while the buffer is full");
    assert.equal(client.stats().queued, 4);
    assert.equal(client.dropped, 6, "10 queued into 4 places");
    sink.full = false;
    client.drained(3);
    const dropped = sink.events("dropped");
    assert.equal(dropped.length, 1);
    assert.deepEqual(JSON.parse(dropped[0].data), { dropped: 6, total: 6 });
    const ids = sink.events("telemetry").map((m) => Number(m.id));
    assert.deepEqual(ids, [1, 8, 9, 10, 11], "a gap in the ids is exactly the dropped events");
    assert.deepEqual(sink.events("telemetry").map((m) => (JSON.parse(m.data) as TelemetryRecord).seq), [1, 8, 9, 10, 11]);
    const stats = client.stats();
    assert.equal(stats.matched, stats.sent + stats.dropped + stats.queued);
    assert.equal(stats.sent, 5);
  });

  it("never drops while the socket takes everything, however large the burst", () => {
    const sink = new FakeSink();
    const client = new StreamClient(1, ALL, sink, OPTIONS, 0);
    client.release(0);
    for (let seq = 1; seq <= 100; seq++) client.enqueue("telemetry", record("d1", seq), 1);
    client.flush(1);
    assert.equal(client.dropped, 0);
    assert.equal(sink.events("telemetry").length, 100);
  });

  it("sends heartbeats and disconnects a client whose socket stays full past the stall timeout", () => {
    const sink = new FakeSink();
    const client = new StreamClient(1, ALL, sink, { queueCapacity: 4, stallTimeoutMs: 5_000, heartbeatMs: 1_000 }, 0);
    client.release(0);
    assert.equal(client.tick(999), false);
    assert.equal(sink.parser.comments, 0);
    client.tick(1_000);
    assert.equal(sink.parser.comments, 1, "a heartbeat comment when due");
    sink.full = true;
    client.enqueue("telemetry", record("d1", 1), 1_500);
    client.flush(1_500); // buffer full from here on
    assert.equal(client.tick(3_000), false, "no heartbeat into a full buffer, not stalled long enough yet");
    assert.equal(sink.parser.comments, 1);
    assert.equal(client.tick(6_499), false);
    assert.equal(client.tick(6_500), true, "stalled for the timeout");
    assert.equal(sink.destroyed, true);
    assert.equal(client.closed, true);
  });

  it("recovers from a short stall without being disconnected", () => {
    const sink = new FakeSink();
    const client = new StreamClient(1, ALL, sink, { queueCapacity: 4, stallTimeoutMs: 5_000, heartbeatMs: 1_000 }, 0);
    client.release(0);
    sink.full = true;
    client.enqueue("telemetry", record("d1", 1), 0);
    client.flush(0);
    sink.full = false;
    client.drained(4_000);
    assert.equal(client.tick(9_000), false);
    assert.equal(sink.destroyed, false);
  });

  it("says why when the server stops", () => {
    const sink = new FakeSink();
    const client = new StreamClient(1, ALL, sink, OPTIONS, 0);
    client.close("shutdown");
    assert.equal(sink.events("close").length, 1);
    assert.equal(sink.ended, true);
  });
});

describe("live stream: the hub", () => {
  const subscription = (filter: string, kinds: StreamSubscription["kinds"] = ["telemetry", "alarms"]): StreamSubscription => ({ filters: [parseStreamFilter(filter, "scada/v1")], kinds });

  it("gives each client only what its filters and kinds select", () => {
    const hub = new StreamHub(OPTIONS);
    const line1 = new FakeSink();
    const line2 = new FakeSink();
    const alarmsOnly = new FakeSink();
    for (const [sink, sub] of [
      [line1, subscription("plant1/+/line1/#")],
      [line2, subscription("plant1/+/line2/#")],
      [alarmsOnly, subscription("#", ["alarms"])],
    ] as const) hub.connect(sub, sink, 0).release(0);
    hub.handleRecord("telemetry", record("d1", 1, "line1"), "d1", 1);
    hub.handleRecord("telemetry", record("d2", 1, "line2"), "d2", 1);
    hub.handleRecord("alarms", JSON.stringify({ device: "d2", tag: "t", kind: "hi", state: "active" }), "d2", 1);
    hub.handleRecord("alarms", JSON.stringify({ type: "lifecycle", event: { device: "d1" } }), "d1", 1);
    hub.flush(1);
    assert.deepEqual(line1.messages.map((m) => `${m.event}:${(JSON.parse(m.data) as { device?: string; event?: { device: string } }).device ?? "lifecycle"}`), ["telemetry:d1", "alarm:lifecycle"]);
    assert.deepEqual(line2.messages.map((m) => m.event), ["telemetry", "alarm"]);
    assert.deepEqual(alarmsOnly.messages.map((m) => m.event), ["alarm", "alarm"]);
  });

  it("counts alarms of devices it cannot place and records it cannot read", () => {
    const hub = new StreamHub(OPTIONS);
    hub.connect(subscription("#"), new FakeSink(), 0).release(0);
    hub.handleRecord("alarms", JSON.stringify({ device: "nowhere" }), "nowhere", 1);
    hub.handleRecord("telemetry", "{not json", null, 1);
    hub.handleRecord("telemetry", JSON.stringify({ device: "d1", ts: 1 }), "d1", 1);
    const stats = hub.stats();
    assert.deepEqual(stats.records, { telemetry: 0, alarms: 0, invalid: 2, unaddressed: 1 });
  });

  it("keeps serving a fast client while a slow one drops, and keeps the totals after disconnects", () => {
    const hub = new StreamHub(OPTIONS);
    const fast = new FakeSink();
    const slow = new FakeSink();
    hub.connect(subscription("#"), fast, 0).release(0);
    const slowClient = hub.connect(subscription("#"), slow, 0);
    slowClient.release(0);
    slow.full = true;
    for (let seq = 1; seq <= 50; seq++) {
      hub.handleRecord("telemetry", record("d1", seq), "d1", seq);
      if (seq % 5 === 0) hub.flush(seq);
    }
    hub.flush(51);
    assert.equal(fast.events("telemetry").length, 50, "the fast client got everything");
    assert.equal(slow.events("telemetry").length, 4, "the first full queue went out, then the socket was full");
    const before = hub.stats();
    assert.equal(before.clients, 2);
    assert.equal(before.eventsSent, 54);
    assert.equal(before.eventsDropped, 42, "46 after the stall, 4 of them still queued");
    hub.disconnect(slowClient);
    const after = hub.stats();
    assert.equal(after.clients, 1);
    assert.equal(after.eventsDropped, 42, "totals survive the disconnect");
    assert.equal(after.devicesKnown, 1);
  });

  it("disconnects stalled clients on tick and counts them", () => {
    const hub = new StreamHub({ queueCapacity: 2, stallTimeoutMs: 1_000, heartbeatMs: 60_000 });
    const slow = new FakeSink();
    hub.connect(subscription("#"), slow, 0).release(0);
    slow.full = true;
    hub.handleRecord("telemetry", record("d1", 1), "d1", 0);
    hub.flush(0);
    hub.tick(500);
    assert.equal(hub.size, 1);
    hub.tick(1_000);
    assert.equal(hub.size, 0);
    assert.equal(slow.destroyed, true);
    assert.equal(hub.stats().slowDisconnects, 1);
  });
});
