import { strict as assert } from "node:assert";
import { canonicalJson, entryHash, findHead, GENESIS, nextEntry, verifyChain, type AuditEntry, type AuditInput } from "../../src/audit/chain.ts";

const T0 = Date.UTC(2025, 0, 1);

function input(i: number): AuditInput {
  return { action: "alarm.ack", subject: "alarm", subjectId: `a-${i}`, user: "alice", details: { comment: `entry ${i}`, n: i } };
}

/** A chain of `n` entries, built the way the appender builds it. */
function chain(n: number): AuditEntry[] {
  const entries: AuditEntry[] = [];
  let head = GENESIS;
  for (let i = 1; i <= n; i++) {
    const entry = nextEntry(head, input(i), T0 + i);
    entries.push(entry);
    head = { seq: entry.seq, hash: entry.hash };
  }
  return entries;
}

/** Recomputes an entry's own hash after an edit, as a careful forger would. */
function rehashed(entry: AuditEntry): AuditEntry {
  return { ...entry, hash: entryHash(entry) };
}

describe("audit: canonical serialization", () => {
  it("gives the same text whatever the key order, at every level", () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: 2, y: 3 }], c: null } }), canonicalJson({ a: { c: null, d: [1, { y: 3, z: 2 }] }, b: 1 }));
    assert.equal(canonicalJson({ b: 1, a: "x" }), '{"a":"x","b":1}');
  });

  it("drops undefined fields, so what MongoDB stores is what was hashed", () => {
    const entry = nextEntry(GENESIS, { ...input(1), details: { tag: undefined, value: 3, nested: { gone: undefined } } }, T0);
    assert.deepEqual(entry.details, { value: 3, nested: {} });
    assert.equal(entry.hash, entryHash(JSON.parse(JSON.stringify(entry)) as AuditEntry));
  });
});

describe("audit: the hash chain", () => {
  it("links each entry to the one before, from seq 1, with _id = seq", () => {
    const entries = chain(3);
    assert.deepEqual(entries.map((e) => [e._id, e.seq]), [[1, 1], [2, 2], [3, 3]]);
    assert.equal(entries[0].prevHash, GENESIS.hash);
    assert.equal(entries[1].prevHash, entries[0].hash);
    assert.match(entries[2].hash, /^[0-9a-f]{64}$/);
    assert.equal(entries[0].at, T0 + 1, "the time of appending when the input has none");
    assert.equal(nextEntry(GENESIS, { ...input(1), at: 42 }, T0).at, 42);
  });

  it("an untampered chain verifies, and so does an empty one", () => {
    const entries = chain(20);
    assert.deepEqual(verifyChain(entries), { ok: true, entries: 20, head: { seq: 20, hash: entries[19].hash } });
    assert.deepEqual(verifyChain([]), { ok: true, entries: 0, head: GENESIS });
  });

  it("detects an edited entry at its seq", () => {
    const entries = chain(10);
    entries[4] = { ...entries[4], user: "mallory" };
    const verdict = verifyChain(entries);
    assert.equal(verdict.ok, false);
    assert.equal(verdict.brokenAt, 5);
    assert.match(verdict.reason ?? "", /changed after it was written/);
    assert.deepEqual(verdict.head, { seq: 4, hash: entries[3].hash });
  });

  it("detects an edited entry whose own hash was recomputed, at the next link", () => {
    const entries = chain(10);
    entries[4] = rehashed({ ...entries[4], details: { comment: "nothing to see" } });
    const verdict = verifyChain(entries);
    assert.equal(verdict.brokenAt, 6);
    assert.match(verdict.reason ?? "", /does not link to seq 5/);
  });

  it("detects a deleted entry", () => {
    const entries = chain(10);
    entries.splice(6, 1);
    const verdict = verifyChain(entries);
    assert.equal(verdict.brokenAt, 7);
    assert.match(verdict.reason ?? "", /seq 7 is missing/);
  });

  it("detects entries deleted from the end, given the seq known to be written", () => {
    const entries = chain(10);
    assert.equal(verifyChain(entries.slice(0, 8), 10).brokenAt, 9);
    assert.match(verifyChain(entries.slice(0, 8), 10).reason ?? "", /deleted from its end/);
    assert.equal(verifyChain(entries, 10).ok, true);
  });

  it("detects reordered entries", () => {
    const entries = chain(10);
    [entries[3], entries[4]] = [entries[4], entries[3]];
    assert.equal(verifyChain(entries).brokenAt, 4);
    // Stored by _id, a swap shows as entries whose _id and seq disagree; renumbered, as broken links.
    const stored = chain(10);
    const swapped = [...stored];
    swapped[3] = { ...stored[4], _id: 4 };
    swapped[4] = { ...stored[3], _id: 5 };
    assert.equal(verifyChain(swapped).brokenAt, 4);
    assert.match(verifyChain(swapped).reason ?? "", /moved or edited/);
    const renumbered = [...stored];
    renumbered[3] = rehashed({ ...stored[4], _id: 4, seq: 4 });
    renumbered[4] = rehashed({ ...stored[3], _id: 5, seq: 5 });
    assert.equal(verifyChain(renumbered).brokenAt, 4);
  });

  it("detects an inserted entry, even one that links correctly to its predecessor", () => {
    const entries = chain(10);
    const forged = nextEntry({ seq: 5, hash: entries[4].hash }, { action: "device.updated", subject: "device", subjectId: "oven-01", user: "alice" }, T0);
    const withForged = [...entries.slice(0, 5), forged, ...entries.slice(5)];
    const verdict = verifyChain(withForged);
    assert.equal(verdict.brokenAt, 7);
    assert.match(verdict.reason ?? "", /seq 6 comes again after seq 6/);
    // Renumbering the rest to make room breaks the next link instead.
    const renumbered = [...entries.slice(0, 5), forged, ...entries.slice(5).map((e) => rehashed({ ...e, _id: e.seq + 1, seq: e.seq + 1 }))];
    assert.equal(verifyChain(renumbered).brokenAt, 7);
    assert.match(verifyChain(renumbered).reason ?? "", /does not link/);
  });

  it("reports a malformed entry instead of throwing", () => {
    const entries: unknown[] = chain(3);
    entries[1] = { _id: 2, seq: 2, note: "not an entry" };
    assert.deepEqual([verifyChain(entries).ok, verifyChain(entries).brokenAt], [false, 2]);
  });
});

describe("audit: finding the head by _id probes", () => {
  async function probe(head: number, hint?: number): Promise<{ found: number; probes: number }> {
    let probes = 0;
    const found = await findHead(async (seq) => {
      probes++;
      return seq >= 1 && seq <= head;
    }, hint);
    return { found, probes };
  }

  it("finds the last seq of a gap-free chain from any hint", async () => {
    for (const head of [0, 1, 2, 3, 31, 32, 33, 1000, 123_457]) {
      for (const hint of [0, Math.floor(head / 2), head, head + 5]) {
        assert.equal((await probe(head, hint)).found, head, `head ${head}, hint ${hint}`);
      }
    }
  });

  it("needs few probes: logarithmic without a hint, a handful from a recent one", async () => {
    assert.ok((await probe(123_457)).probes <= 40, "exponential + binary search");
    assert.ok((await probe(1000, 990)).probes <= 10, "forward from a recent marker");
  });
});
