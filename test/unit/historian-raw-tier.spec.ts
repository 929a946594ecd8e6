import { strict as assert } from "node:assert";
import { sampleKey } from "../../src/historian/buckets.ts";
import { buildChunk, chunkId, chunkKeys, readWindowChunks, type ChunkDocument, type ChunkPlan } from "../../src/historian/chunks.ts";
import { OffsetCommitter } from "../../src/historian/offset-committer.ts";
import { rawTierOptions } from "../../src/historian/raw-tier-config.ts";
import { DEFAULT_RAW_TIER_OPTIONS, RawWindowBuffer, type KafkaPosition, type RawTierOptions } from "../../src/historian/raw-window-buffer.ts";
import { SerialQueue } from "../../src/historian/serial.ts";
import { loadConfig } from "../../src/shared/config.ts";
import type { TelemetryRecord } from "../../src/shared/types.ts";

const SPAN = 60_000;
const GRACE = 5_000;
const W0 = 1_750_000_020_000 - (1_750_000_020_000 % SPAN);
const TOPIC = "t.telemetry";
const OPTIONS: RawTierOptions = { ...DEFAULT_RAW_TIER_OPTIONS, spanMs: SPAN, graceMs: GRACE };

function rec(device: string, ts: number, seq: number, v = seq): TelemetryRecord {
  return { site: "s", area: "a", line: "l", device, ts, seq, receivedAt: ts, values: { x: { v, q: "good" } } };
}

/** An insert-only chunk store with MongoDB's duplicate-key behaviour, and the service's flow around a buffer. */
class FakeStore {
  readonly docs = new Map<string, ChunkDocument>();
  inserts = 0;

  insert(doc: ChunkDocument): boolean {
    this.inserts++;
    if (this.docs.has(doc._id)) return false;
    this.docs.set(doc._id, structuredClone(doc));
    return true;
  }

  /** Every stored sample key of a device with how many times it is stored. */
  counts(device?: string): Map<string, number> {
    const counts = new Map<string, number>();
    for (const doc of this.docs.values()) {
      if (device && doc.device !== device) continue;
      doc.ts.forEach((ts, i) => {
        const key = `${doc.device}/${sampleKey(ts, doc.seq[i])}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      });
    }
    return counts;
  }
}

/** What services/historian.service.ts does with the buffer, synchronously against a FakeStore. */
class Node {
  readonly buffer: RawWindowBuffer;
  readonly store: FakeStore;
  committed = new Map<number, bigint>();

  constructor(store: FakeStore, options: RawTierOptions = OPTIONS) {
    this.store = store;
    this.buffer = new RawWindowBuffer(options);
  }

  load(refs: { device: string; start: number }[]): void {
    for (const ref of refs) {
      const chunks: ChunkDocument[] = [];
      for (let n = 0; this.store.docs.has(chunkId(ref.device, ref.start, n)); n++) chunks.push(this.store.docs.get(chunkId(ref.device, ref.start, n))!);
      this.buffer.learn(ref, chunkKeys(chunks));
    }
  }

  write(take: () => ChunkPlan[]): ChunkPlan[] {
    const written: ChunkPlan[] = [];
    for (let attempt = 0; attempt < 5; attempt++) {
      this.load(this.buffer.windowsToReload());
      const plans = take();
      if (plans.length === 0) break;
      let collided = false;
      for (const plan of plans) {
        if (this.store.insert(buildChunk(plan, SPAN, 0))) {
          this.buffer.written(plan);
          written.push(plan);
        } else {
          this.buffer.invalidate(plan);
          collided = true;
        }
      }
      if (!collided) break;
    }
    return written;
  }

  batch(partition: number, messages: { record: TelemetryRecord; offset: number }[], now: number): ChunkPlan[] {
    this.load(this.buffer.windowsToLoad(messages.map((m) => m.record)));
    for (const m of messages) this.buffer.add(m.record, { topic: TOPIC, partition, offset: String(m.offset) }, now);
    if (messages.length > 0) this.buffer.processed(TOPIC, partition, String(messages[messages.length - 1].offset));
    const written = this.write(() => this.buffer.takeLate());
    this.buffer.prune(now);
    this.commit();
    return written;
  }

  tick(now: number): ChunkPlan[] {
    const written = this.write(() => this.buffer.takeDue(now));
    this.buffer.prune(now);
    this.commit();
    return written;
  }

  stop(): void {
    this.write(() => this.buffer.takeAll());
    this.commit();
  }

  commit(): void {
    for (const p of this.buffer.commitPositions()) this.committed.set(p.partition, BigInt(p.offset));
  }
}

function ids(plans: ChunkPlan[]): string[] {
  return plans.map((p) => chunkId(p.device, p.start, p.n));
}

describe("historian raw tier: window buffer", () => {
  it("seals a window when the device's stream reaches a later window (data-driven)", () => {
    const node = new Node(new FakeStore());
    const now = W0 + 10 * SPAN; // wall clock far ahead: the clock must not be what seals here
    assert.deepEqual(node.batch(0, [0, 1, 2].map((i) => ({ record: rec("a", W0 + i * 1000, i), offset: i })), now), []);
    assert.equal(node.buffer.buffered, 3);
    const written = node.batch(0, [{ record: rec("a", W0 + 59_000, 3), offset: 3 }, { record: rec("a", W0 + SPAN, 4), offset: 4 }], now);
    assert.deepEqual(ids(written), [`a:${W0}:0`]);
    assert.deepEqual(written[0].records.map((r) => r.seq), [0, 1, 2, 3]);
    assert.equal(node.buffer.buffered, 1, "the new window stays open");
    // Another device's windows are its own.
    assert.deepEqual(node.batch(0, [{ record: rec("b", W0 + 1000, 1), offset: 5 }], now), []);
  });

  it("seals a quiet device's newest window by the clock, after the window's end plus grace", () => {
    const node = new Node(new FakeStore());
    const arrived = W0 + 30_000;
    node.batch(0, [{ record: rec("a", W0 + 29_000, 1), offset: 0 }], arrived);
    assert.deepEqual(node.tick(W0 + SPAN), [], "window not over");
    assert.deepEqual(node.tick(W0 + SPAN + GRACE - 1), [], "within grace");
    assert.deepEqual(ids(node.tick(W0 + SPAN + GRACE)), [`a:${W0}:0`]);
    assert.equal(node.buffer.buffered, 0);
  });

  it("does not seal by the clock while the device is still sending into its newest window (catch-up after a backlog)", () => {
    const node = new Node(new FakeStore());
    const now = W0 + 3600_000; // an hour behind
    node.batch(0, [{ record: rec("a", W0 + 1000, 1), offset: 0 }], now);
    assert.deepEqual(node.tick(now + 1000), [], "the device sent a second ago");
    node.batch(0, [{ record: rec("a", W0 + 2000, 2), offset: 1 }], now + 2000);
    assert.deepEqual(node.tick(now + 2000 + GRACE - 1), []);
    assert.deepEqual(ids(node.tick(now + 2000 + GRACE)), [`a:${W0}:0`], "quiet for the grace: sealed");
  });

  it("seals a window held for a whole span plus grace even if the device keeps sending into it (a stuck PLC clock)", () => {
    const node = new Node(new FakeStore());
    const start = W0 + 3600_000;
    for (let i = 0; i < 70; i++) {
      node.batch(0, [{ record: rec("a", W0 + 1000, i), offset: i }], start + i * 1000);
      const written = node.tick(start + i * 1000);
      if (i < 65) assert.deepEqual(written, [], `second ${i}`);
      else if (i === 65) assert.deepEqual(ids(written), [`a:${W0}:0`]);
    }
  });

  it("writes late records for a written window as further chunks 1, 2, … at the end of the batch", () => {
    const store = new FakeStore();
    const node = new Node(store);
    const now = W0 + 2 * SPAN;
    node.batch(0, [{ record: rec("a", W0 + 1000, 1), offset: 0 }, { record: rec("a", W0 + SPAN + 1000, 2), offset: 1 }], now);
    assert.ok(store.docs.has(`a:${W0}:0`));
    // A PLC resends its buffer: one record already stored, one new.
    const late = node.batch(0, [{ record: rec("a", W0 + 1000, 1), offset: 2 }, { record: rec("a", W0 + 1500, 7), offset: 3 }], now);
    assert.deepEqual(ids(late), [`a:${W0}:1`]);
    assert.deepEqual(late[0].records.map((r) => r.seq), [7]);
    assert.deepEqual(ids(node.batch(0, [{ record: rec("a", W0 + 1600, 8), offset: 4 }], now)), [`a:${W0}:2`]);
    assert.ok([...store.counts().values()].every((n) => n === 1));
  });

  it("writes a late record of a window it never saw as that window's first free chunk, after loading it", () => {
    const store = new FakeStore();
    const first = new Node(store);
    first.batch(0, [{ record: rec("a", W0 + 1000, 1), offset: 0 }, { record: rec("a", W0 + SPAN, 2), offset: 1 }], W0 + 2 * SPAN);
    const restarted = new Node(store);
    const written = restarted.batch(0, [{ record: rec("a", W0 + 2 * SPAN, 3), offset: 2 }, { record: rec("a", W0 + 5000, 9), offset: 3 }], W0 + 3 * SPAN);
    assert.deepEqual(ids(written), [`a:${W0}:1`], "chunk 0 exists, so the late record goes to chunk 1");
  });

  it("skips records a replay brings that are already stored, after a restart", () => {
    const store = new FakeStore();
    const messages = Array.from({ length: 130 }, (_, i) => ({ record: rec("a", W0 + i * 1000, i), offset: i }));
    const first = new Node(store);
    first.batch(0, messages.slice(0, 125), W0 + 125_000);
    assert.deepEqual([...store.docs.keys()].sort(), [`a:${W0}:0`, `a:${W0 + SPAN}:0`]);
    assert.equal(first.committed.get(0), 120n, "committed up to the first record of the open window");
    // Crash: memory is lost; Kafka redelivers from the committed offset, then a producer replay
    // re-sends records 0..9 as new messages.
    const second = new Node(store);
    second.batch(0, messages.slice(120), W0 + 131_000);
    assert.equal(second.buffer.buffered, 10);
    second.batch(0, messages.slice(0, 10).map((m, i) => ({ record: m.record, offset: 130 + i })), W0 + 131_500);
    assert.equal(second.buffer.buffered, 10, "the replayed records are already stored");
    assert.deepEqual([...store.docs.keys()].sort(), [`a:${W0}:0`, `a:${W0 + SPAN}:0`], "and nothing was written for them");
    second.stop();
    const counts = store.counts();
    assert.equal(counts.size, 130);
    assert.ok([...counts.values()].every((n) => n === 1), "each sample stored once");
  });

  it("commits up to the lowest offset still buffered per partition, past everything once nothing is", () => {
    const node = new Node(new FakeStore());
    const now = W0 + 10 * SPAN;
    node.batch(0, [{ record: rec("a", W0 + 1000, 1), offset: 10 }, { record: rec("b", W0 + 1000, 1), offset: 11 }, { record: rec("a", W0 + 2000, 2), offset: 12 }], now);
    node.batch(1, [{ record: rec("c", W0 + SPAN + 1000, 1), offset: 40 }], now);
    assert.deepEqual(node.buffer.commitPositions().map((p) => [p.partition, p.offset]), [[0, "10"], [1, "40"]]);
    // a's window is sealed by its stream (offset 13); b (offset 11) still holds partition 0 back.
    node.batch(0, [{ record: rec("a", W0 + SPAN, 3), offset: 13 }], now);
    assert.equal(node.committed.get(0), 11n);
    node.tick(now + GRACE + 1);
    assert.deepEqual(node.buffer.commitPositions().map((p) => [p.partition, p.offset]), [[0, "14"], [1, "41"]]);
  });

  it("drops what came from partitions it no longer owns after a rebalance, and forgets their windows", () => {
    const node = new Node(new FakeStore());
    const now = W0 + 10 * SPAN;
    node.batch(0, [{ record: rec("a", W0 + 1000, 1), offset: 5 }], now);
    node.batch(1, [{ record: rec("b", W0 + 1000, 1), offset: 7 }, { record: rec("b", W0 + 2000, 2), offset: 8 }], now);
    const dropped = node.buffer.retainPartitions((topic, partition) => topic === TOPIC && partition === 0);
    assert.equal(dropped, 2);
    assert.equal(node.buffer.buffered, 1);
    assert.deepEqual(node.buffer.commitPositions().map((p) => p.partition), [0], "nothing is committed for partition 1 any more");
    assert.deepEqual(node.buffer.pendingRecords("b", W0, W0 + SPAN), []);
    assert.deepEqual(node.buffer.windowsToLoad([rec("b", W0 + 3000, 3)]), [{ device: "b", start: W0 }], "b's window is loaded again if b comes back");
    assert.deepEqual(node.buffer.windowsToLoad([rec("a", W0 + 3000, 3)]), [], "a's is kept");
    // Records of a kept partition that kafkajs delivers again after the rejoin are not buffered twice.
    assert.equal(node.buffer.add(rec("a", W0 + 1000, 1), { topic: TOPIC, partition: 0, offset: "5" }, now), false);
  });

  it("reloads a window and writes only what is missing when another writer took the chunk id", () => {
    const store = new FakeStore();
    const now = W0 + 10 * SPAN;
    const a = new Node(store);
    const b = new Node(store); // a replica still finishing a batch of a partition that moved to `a`
    a.batch(0, [{ record: rec("d", W0 + 1000, 1), offset: 0 }, { record: rec("d", W0 + 2000, 2), offset: 1 }], now);
    b.batch(0, [{ record: rec("d", W0 + 2000, 2), offset: 1 }, { record: rec("d", W0 + 3000, 3), offset: 2 }], now);
    assert.deepEqual(ids(a.tick(now + GRACE + 1)), [`d:${W0}:0`]);
    const written = b.tick(now + GRACE + 1);
    assert.deepEqual(ids(written), [`d:${W0}:1`], "b collided on chunk 0, reloaded, and wrote the rest as chunk 1");
    assert.deepEqual(written[0].records.map((r) => r.seq), [3]);
    assert.ok([...store.counts().values()].every((n) => n === 1));
    assert.equal(store.counts().size, 3);
  });

  it("splits a window into chunks of at most maxSamplesPerChunk, and writes a full open window early", () => {
    const node = new Node(new FakeStore(), { ...OPTIONS, maxSamplesPerChunk: 2 });
    const now = W0 + 10 * SPAN;
    const first = node.batch(0, [0, 1, 2].map((i) => ({ record: rec("a", W0 + i, i), offset: i })), now);
    assert.deepEqual(ids(first), [`a:${W0}:0`, `a:${W0}:1`]);
    assert.deepEqual(first.map((p) => p.records.length), [2, 1]);
    assert.deepEqual(ids(node.batch(0, [{ record: rec("a", W0 + 5, 5), offset: 3 }], now)), [], "below the size: stays open");
    assert.deepEqual(ids(node.batch(0, [{ record: rec("a", W0 + 6, 6), offset: 4 }], now)), [`a:${W0}:2`]);
  });

  it("reports buffered records of a device within a range, for queries", () => {
    const node = new Node(new FakeStore());
    node.batch(0, [rec("a", W0 + 1000, 1), rec("a", W0 + 2000, 2), rec("b", W0 + 1000, 1)].map((record, i) => ({ record, offset: i })), W0 + 3000);
    assert.deepEqual(node.buffer.pendingRecords("a", W0 + 1500, W0 + SPAN).map((r) => r.seq), [2]);
    assert.deepEqual(node.buffer.pendingRecords("a", W0 - SPAN, W0 - 1), []);
  });

  it("keeps its knowledge bounded: windows well behind the stream and beyond the cap are forgotten", () => {
    const node = new Node(new FakeStore(), { ...OPTIONS, retainWindows: 2, maxKnownWindows: 6 });
    for (let w = 0; w < 10; w++) node.batch(0, [{ record: rec("a", W0 + w * SPAN, w), offset: w }], W0 + 20 * SPAN);
    assert.equal(node.buffer.knownWindows, 3, "the open window and the two before it");
    for (let d = 0; d < 10; d++) node.batch(0, [{ record: rec(`d${d}`, W0, 0), offset: 100 + d }], W0 + 20 * SPAN);
    assert.ok(node.buffer.knownWindows <= 10 + 3, "windows with buffered records are never forgotten");
    node.tick(W0 + 20 * SPAN + GRACE + 1);
    assert.ok(node.buffer.knownWindows <= 6, `at most the cap once written (${node.buffer.knownWindows})`);
    assert.equal(node.buffer.buffered, 0);
  });

  it("stores every record exactly once through replays, late resends, crashes and timer seals (randomized)", () => {
    for (let seed = 1; seed <= 30; seed++) {
      let state = seed;
      const random = () => ((state = (state * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
      // The log of one partition: 4 devices at 1 Hz over 5 windows, with PLC resends of earlier records.
      const log: TelemetryRecord[] = [];
      const seqs = new Map<string, number>();
      for (let t = 0; t < 300; t++) {
        for (const device of ["a", "b", "c", "d"]) {
          if (random() < 0.1) continue; // a PLC skipping a scan
          const seq = (seqs.get(device) ?? 0) + 1;
          seqs.set(device, seq);
          log.push(rec(device, W0 + t * 1000, seq));
        }
        if (random() < 0.05 && log.length > 20) log.push(...log.slice(log.length - 1 - Math.floor(random() * 20)).slice(0, 3)); // resend
      }
      const store = new FakeStore();
      let node = new Node(store);
      let position = 0; // next offset the consumer reads
      let clock = W0 + 1000;
      while (position < log.length) {
        const size = 1 + Math.floor(random() * 12);
        const messages = log.slice(position, position + size).map((record, i) => ({ record, offset: position + i }));
        clock = Math.max(clock, messages[messages.length - 1].record.ts + 500 + Math.floor(random() * 3000));
        node.batch(0, messages, clock);
        position += messages.length;
        if (random() < 0.3) node.tick((clock += Math.floor(random() * 8000)));
        const r = random();
        if (r < 0.05) {
          // Crash: memory lost, the consumer restarts at the committed offset.
          position = Number(node.committed.get(0) ?? 0n);
          const committed = node.committed;
          node = new Node(store);
          node.committed = committed;
        } else if (r < 0.08) {
          node.stop();
          position = Number(node.committed.get(0) ?? 0n);
          const committed = node.committed;
          node = new Node(store);
          node.committed = committed;
        }
      }
      node.stop();
      assert.equal(node.committed.get(0), BigInt(log.length), `seed ${seed}: everything committed at the end`);
      const expected = new Set(log.map((r) => `${r.device}/${sampleKey(r.ts, r.seq)}`));
      const counts = store.counts();
      assert.deepEqual([...counts.keys()].sort(), [...expected].sort(), `seed ${seed}: every record stored`);
      for (const [key, n] of counts) assert.equal(n, 1, `seed ${seed}: ${key} stored ${n} times`);
    }
  });
});

describe("historian raw tier: offset committer", () => {
  it("commits only forward, one commit at a time, coalescing requests made meanwhile", async () => {
    const commits: KafkaPosition[][] = [];
    let release: () => void = () => {};
    const committer = new OffsetCommitter(
      (positions) => {
        commits.push(positions);
        return new Promise<void>((resolve) => (release = resolve));
      },
      () => {},
    );
    committer.request([{ topic: TOPIC, partition: 0, offset: "10" }]);
    committer.request([{ topic: TOPIC, partition: 0, offset: "12" }, { topic: TOPIC, partition: 1, offset: "3" }]);
    committer.request([{ topic: TOPIC, partition: 0, offset: "11" }]);
    assert.equal(commits.length, 1);
    release();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(commits[1], [{ topic: TOPIC, partition: 0, offset: "12" }, { topic: TOPIC, partition: 1, offset: "3" }]);
    release();
    assert.equal(await committer.drain(100), true);
    committer.request([{ topic: TOPIC, partition: 0, offset: "12" }, { topic: TOPIC, partition: 1, offset: "2" }]);
    assert.equal(commits.length, 2, "nothing ahead of what is committed");
  });

  it("keeps a failed commit for the next request", async () => {
    let fail = true;
    const commits: KafkaPosition[][] = [];
    const errors: string[] = [];
    const committer = new OffsetCommitter(
      async (positions) => {
        commits.push(positions);
        if (fail) throw new Error("rebalancing");
      },
      (err) => errors.push(err.message),
    );
    committer.request([{ topic: TOPIC, partition: 0, offset: "10" }]);
    assert.equal(await committer.drain(100), false);
    assert.deepEqual(errors, ["rebalancing"]);
    fail = false;
    committer.request([]);
    assert.equal(await committer.drain(100), true);
    assert.deepEqual(commits.at(-1), [{ topic: TOPIC, partition: 0, offset: "10" }]);
  });

  it("forgets partitions it no longer owns", async () => {
    const commits: KafkaPosition[][] = [];
    const committer = new OffsetCommitter(async (positions) => void commits.push(positions), () => {});
    committer.request([{ topic: TOPIC, partition: 0, offset: "10" }, { topic: TOPIC, partition: 1, offset: "10" }]);
    await committer.drain(100);
    committer.retainPartitions((_, partition) => partition === 0);
    committer.request([{ topic: TOPIC, partition: 1, offset: "5" }]);
    await committer.drain(100);
    assert.deepEqual(commits.at(-1), [{ topic: TOPIC, partition: 1, offset: "5" }], "a partition owned again starts from what its new history says");
  });
});

describe("historian raw tier: serial queue and settings", () => {
  it("runs tasks one after the other in queue order, a failure only failing its own task", async () => {
    const queue = new SerialQueue();
    const events: string[] = [];
    const slow = queue.run(async () => {
      events.push("a start");
      await new Promise((resolve) => setTimeout(resolve, 5));
      events.push("a end");
    });
    const failing = queue.run(async () => {
      events.push("b");
      throw new Error("b failed");
    });
    const fast = queue.run(async () => void events.push("c"));
    await Promise.all([slow, failing.catch(() => {}), fast]);
    assert.deepEqual(events, ["a start", "a end", "b", "c"]);
    await assert.rejects(failing, /b failed/);
  });

  it("reads the seal grace from HISTORIAN_SEAL_GRACE_MS with a 5 s default and rejects bad values", () => {
    const config = loadConfig({});
    assert.equal(rawTierOptions(config).graceMs, 5_000);
    assert.equal(rawTierOptions(config).spanMs, config.bucketSpanMs);
    assert.equal(rawTierOptions(loadConfig({ HISTORIAN_SEAL_GRACE_MS: "2000" })).graceMs, 2_000);
    assert.throws(() => loadConfig({ HISTORIAN_SEAL_GRACE_MS: "soon" }), /HISTORIAN_SEAL_GRACE_MS/);
  });
});

describe("historian raw tier: chunk reads", () => {
  it("stops at the first missing chunk id", async () => {
    const found = await readWindowChunks("a", W0, async (id) => (id.endsWith(":0") ? { id } : null));
    assert.deepEqual(found, [{ id: `a:${W0}:0` }]);
  });
});
