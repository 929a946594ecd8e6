import { strict as assert } from "node:assert";
import { StoreAndForward, type PublishOutcome, type TelemetryLink } from "../../../src/plc/store-and-forward.ts";
import { waitFor } from "../../helpers/wait.ts";

/** A link whose publishes the test answers one by one, like a broker that is slow on purpose. */
class FakeLink implements TelemetryLink {
  connected = false;
  readonly pending: { payload: string; answer: (outcome: PublishOutcome | Error) => void }[] = [];
  /** Payloads the broker routed, in the order it routed them. */
  readonly routed: string[] = [];

  publish(_topic: string, payload: string): Promise<PublishOutcome> {
    return new Promise((resolve, reject) => {
      this.pending.push({
        payload,
        answer: (outcome) => {
          if (outcome instanceof Error) return reject(outcome);
          if (outcome === "delivered") this.routed.push(payload);
          resolve(outcome);
        },
      });
    });
  }

  /** Answers the i-th publish waiting for its PUBACK. */
  answerAt(i: number, outcome: PublishOutcome | Error): void {
    const [p] = this.pending.splice(i, 1);
    p.answer(outcome);
  }

  /** Answers every publish waiting for its PUBACK, oldest first. */
  answerAll(outcome: PublishOutcome | Error = "delivered"): number {
    const batch = this.pending.splice(0);
    for (const p of batch) p.answer(outcome);
    return batch.length;
  }
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

/** Answers "delivered" until nothing is left to send. */
async function drain(link: FakeLink, buffer: StoreAndForward): Promise<void> {
  await waitFor("the buffer to drain", async () => {
    link.answerAll();
    await tick();
    const { buffered, inFlight } = buffer.stats;
    return buffered === 0 && inFlight === 0 && link.pending.length === 0;
  }, 5_000, 1);
}

const seqs = (n: number, from = 0) => Array.from({ length: n }, (_, i) => String(from + i));

describe("plc telemetry store-and-forward", () => {
  it("buffers while disconnected and sends everything in order after the connection is back", async () => {
    const link = new FakeLink();
    const buffer = new StoreAndForward(link, { capacity: 100, maxInFlight: 5, retryMs: 5, resendWindowMs: 0 });
    for (const s of seqs(30)) buffer.enqueue("t", s);
    assert.equal(link.pending.length, 0, "nothing handed to a disconnected client");
    assert.deepEqual(buffer.stats, { buffered: 30, inFlight: 0, delivered: 0, dropped: 0, retried: 0, resent: 0 });
    link.connected = true;
    buffer.pump();
    assert.equal(link.pending.length, 5, "at most maxInFlight awaiting their PUBACK");
    await drain(link, buffer);
    assert.deepEqual(link.routed, seqs(30));
    assert.deepEqual(buffer.stats, { buffered: 0, inFlight: 0, delivered: 30, dropped: 0, retried: 0, resent: 0 });
  });

  it("keeps at most `capacity` messages, dropping and counting the oldest", async () => {
    const link = new FakeLink();
    const buffer = new StoreAndForward(link, { capacity: 10, maxInFlight: 3, retryMs: 5, resendWindowMs: 0 });
    for (const s of seqs(25)) buffer.enqueue("t", s);
    assert.deepEqual(buffer.stats, { buffered: 10, inFlight: 0, delivered: 0, dropped: 15, retried: 0, resent: 0 });
    link.connected = true;
    buffer.pump();
    await drain(link, buffer);
    assert.deepEqual(link.routed, seqs(10, 15), "the newest ten, in order");
  });

  it("takes back what the broker had no subscriber for and resends it in order, once", async () => {
    const link = new FakeLink();
    link.connected = true;
    const buffer = new StoreAndForward(link, { capacity: 100, maxInFlight: 4, retryMs: 20, resendWindowMs: 0 });
    for (const s of seqs(10)) buffer.enqueue("t", s);
    // A restarted broker before the preprocessor subscribed again: PUBACK "no matching subscribers".
    assert.equal(link.answerAll("no-subscribers"), 4);
    await tick();
    assert.equal(link.pending.length, 0, "paused for retryMs instead of spinning");
    assert.deepEqual(buffer.stats, { buffered: 10, inFlight: 0, delivered: 0, dropped: 0, retried: 4, resent: 0 });
    buffer.enqueue("t", "10");
    await waitFor("the retry", () => link.pending.length > 0, 2_000, 1);
    await drain(link, buffer);
    assert.deepEqual(link.routed, seqs(11), "0 lost, 0 duplicated, in order");
  });

  it("resends a publish the client failed (e.g. it gave up on the connection)", async () => {
    const link = new FakeLink();
    link.connected = true;
    const buffer = new StoreAndForward(link, { capacity: 100, maxInFlight: 2, retryMs: 5, resendWindowMs: 0 });
    for (const s of seqs(4)) buffer.enqueue("t", s);
    link.answerAt(1, new Error("connection closed"));
    link.answerAt(0, "delivered");
    await drain(link, buffer);
    assert.deepEqual(link.routed, seqs(4));
    assert.equal(buffer.stats.retried, 1);
  });

  it("keeps scanning into the buffer while the link is down mid-stream, then catches up", async () => {
    const link = new FakeLink();
    link.connected = true;
    const buffer = new StoreAndForward(link, { capacity: 1000, maxInFlight: 10, retryMs: 5, resendWindowMs: 0 });
    for (const s of seqs(5)) buffer.enqueue("t", s);
    link.answerAll();
    await tick();
    link.connected = false; // broker gone: in-flight ones stay with the client, new ones are buffered
    for (const s of seqs(50, 5)) buffer.enqueue("t", s);
    assert.equal(buffer.stats.buffered, 50);
    link.connected = true;
    buffer.pump();
    await drain(link, buffer);
    assert.deepEqual(link.routed, seqs(55));
  });

  it("after a reconnect resends, in order, what was acknowledged within the window before the connection was lost", async () => {
    let now = 0;
    const link = new FakeLink();
    link.connected = true;
    const buffer = new StoreAndForward(link, { capacity: 100, maxInFlight: 10, retryMs: 5, resendWindowMs: 1_000, now: () => now });
    // Acknowledged at t = 0, 500, 1000, ..., 4500 ms: the window trails the newest acknowledgement.
    for (const s of seqs(10)) {
      buffer.enqueue("t", s);
      link.answerAll();
      await tick();
      now += 500;
    }
    // A broker that acknowledged 7..9 and died before handing them on; the outage lasts longer than the window.
    link.connected = false;
    now += 60_000;
    for (const s of seqs(3, 10)) buffer.enqueue("t", s);
    link.connected = true;
    buffer.reconnected();
    await drain(link, buffer);
    assert.deepEqual(link.routed, [...seqs(10), ...seqs(6, 7)], "4 s..4.5 s (7, 8, 9) again, then the buffered ones, in order");
    assert.deepEqual(buffer.stats, { buffered: 0, inFlight: 0, delivered: 16, dropped: 0, retried: 0, resent: 3 });
    buffer.reconnected();
    await drain(link, buffer);
    assert.equal(buffer.stats.resent, 3 + 6, "each reconnect resends its window: now 7..12, all acknowledged at the same time");
  });

  it("resends nothing with a window of 0", async () => {
    const link = new FakeLink();
    link.connected = true;
    const buffer = new StoreAndForward(link, { capacity: 100, maxInFlight: 10, retryMs: 5, resendWindowMs: 0 });
    for (const s of seqs(5)) buffer.enqueue("t", s);
    await drain(link, buffer);
    buffer.reconnected();
    await drain(link, buffer);
    assert.deepEqual(link.routed, seqs(5));
    assert.equal(buffer.stats.resent, 0);
  });

  it("stops sending and retrying when closed, telling how much it gave up", async () => {
    const link = new FakeLink();
    const buffer = new StoreAndForward(link, { capacity: 100, maxInFlight: 2, retryMs: 5, resendWindowMs: 0 });
    for (const s of seqs(7)) buffer.enqueue("t", s);
    assert.equal(buffer.close(), 7);
    link.connected = true;
    buffer.pump();
    assert.equal(link.pending.length, 0);
  });
});
