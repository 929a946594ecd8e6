// The hash-chained audit trail against the real servers: concurrent appenders on FerretDB, the
// entries the REST writes produce (alarm ack, command, device change), and tampering done directly
// in MongoDB, found by GET /api/audit/verify and by `npm run audit:verify`.
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import type { ServiceBroker } from "moleculer";
import { MongoClient, type Db } from "mongodb";
import { applyInput, newAlarm } from "../../src/alarms/alarm-state-machine.ts";
import { AuditLog, verifyStoredChain } from "../../src/audit/audit-store.ts";
import type { AuditEntry, ChainVerdict } from "../../src/audit/chain.ts";
import type { CommandView } from "../../src/control/commands.ts";
import type { AlarmDocument, DeviceDocument } from "../../src/shared/types.ts";
import { apiFetch, cleanupRun, isolatedEnv, startServices, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

const REPO = fileURLToPath(new URL("../..", import.meta.url));

type Entry = Omit<AuditEntry, "_id">;

/** `npm run audit:verify` against a database, with this test's Node on the PATH. */
function auditVerifyCli(mongoUrl: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env, MONGO_URL: mongoUrl, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}` };
    execFile("npm", ["run", "--silent", "audit:verify"], { cwd: REPO, env, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, output: stdout + stderr });
    });
  });
}

describe("audit trail against MongoDB (FerretDB) and the REST API", function () {
  this.timeout(120_000);
  let env: TestSystemEnv;
  let broker: ServiceBroker;
  let mongo: MongoClient;
  let db: Db;
  let api: string;

  async function call<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await apiFetch(`${api}${path}`, { method, headers: body === undefined ? {} : { "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as T };
  }

  const auditOf = async (subject: string, subjectId: string) =>
    (await call<{ entries: Entry[] }>("GET", `/audit?subject=${subject}&limit=1000`)).body.entries.filter((e) => e.subjectId === subjectId);

  before(async () => {
    env = await isolatedEnv("audit", { PLC_COUNT: "2", PLC_SCAN_MS: "200" });
    api = `http://127.0.0.1:${env.API_PORT}/api`;
    broker = await startServices(env, ["devices", "plc-simulator", "preprocessor", "alarms", "control", "api"]);
    mongo = new MongoClient(env.MONGO_URL);
    await mongo.connect();
    db = mongo.db();
    await waitFor("2 registered devices", async () => (await call<{ total: number }>("GET", "/devices")).body.total === 2, 60_000, 300);
  });

  after(async () => {
    await broker?.stop();
    await mongo?.close();
    if (env) await cleanupRun(env);
  });

  it("concurrent appenders on separate connections produce one gap-free chain", async () => {
    const url = `${env.MONGO_URL}chain`;
    const clients = await Promise.all([0, 1, 2].map(() => new MongoClient(url).connect()));
    try {
      const logs = clients.map((c) => new AuditLog(c.db()));
      // Each replica appends 30 entries at once; all three race for every seq.
      await Promise.all(logs.flatMap((log, r) => Array.from({ length: 30 }, (_, i) => log.append({ action: "test.appended", subject: "test", subjectId: `r${r}-${i}`, user: `replica-${r}` }))));
      const entries = await clients[0].db().collection<AuditEntry>("audit").find({}).sort({ _id: 1 }).toArray();
      assert.deepEqual(entries.map((e) => e.seq), Array.from({ length: 90 }, (_, i) => i + 1), "seq 1..90 without gaps");
      assert.equal(new Set(entries.map((e) => e.subjectId)).size, 90, "every append exactly once");
      const verdict = await verifyStoredChain(clients[0].db());
      assert.deepEqual([verdict.ok, verdict.entries, verdict.head.seq], [true, 90, 90], JSON.stringify(verdict));
      // A fresh appender (a replica that starts later) finds the head and continues the chain.
      const late = await new AuditLog(clients[1].db()).append({ action: "test.appended", subject: "test", subjectId: "late", user: "replica-3" });
      assert.equal(late?.seq, 91);
      assert.equal((await verifyStoredChain(clients[1].db())).ok, true);
    } finally {
      await clients[0].db().dropDatabase();
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  it("an alarm ack, a command and a device change through the REST API each leave who, what and when", async () => {
    const start = Date.now();
    const { body: listing } = await call<{ devices: DeviceDocument[] }>("GET", "/devices");
    const device = listing.devices[0];

    const patched = await call("PATCH", `/devices/${device._id}`, { metadata: { note: "audited" } });
    assert.equal(patched.status, 200);
    const [change] = await waitFor("the device change's entry", async () => {
      const found = await auditOf("device", device._id);
      return found.length > 0 && found;
    });
    assert.equal(change.action, "device.updated");
    assert.equal(change.user, "admin");
    assert.deepEqual(change.details.change, { metadata: { note: "audited" } });
    assert.ok(change.at >= start && change.at <= Date.now());

    const sent = await call<CommandView>("POST", `/devices/${device._id}/commands`, { action: "reset" });
    assert.equal(sent.status, 202);
    const steps = await waitFor("the command's sent and outcome entries", async () => {
      const found = await auditOf("command", sent.body.id);
      return found.length >= 2 && found;
    });
    assert.deepEqual(steps.map((e) => e.action).sort(), ["command.rejected", "command.sent"], "a running PLC rejects a reset");
    assert.ok(steps.every((e) => e.user === "admin" && e.details.device === device._id && e.details.action === "reset" && e.at >= start));

    const raised = applyInput(newAlarm({ alarmId: `${device._id}:temp:hi`, device: device._id, tag: "temp", kind: "hi", severity: "high", limit: 90 }, start), { type: "condition", active: true, suppressed: false, value: 95, limit: 90, message: null }, { user: "system", at: start });
    assert.ok(raised.ok);
    await db.collection<AlarmDocument>("alarms").insertOne(raised.alarm);
    const acked = await call<AlarmDocument>("POST", `/alarms/${encodeURIComponent(raised.alarm._id)}/ack`, { comment: "seen it" });
    assert.equal(acked.status, 200);
    const [ack] = await auditOf("alarm", raised.alarm._id);
    assert.deepEqual([ack.action, ack.user, ack.details.comment, ack.details.state], ["alarm.ack", "admin", "seen it", "active-acked"]);
    assert.ok(ack.at >= start);

    const { body: newest } = await call<{ entries: Entry[] }>("GET", "/audit?limit=2");
    assert.equal(newest.entries.length, 2);
    assert.ok(newest.entries[0].seq > newest.entries[1].seq, "newest first");
    const { body: verdict } = await call<ChainVerdict>("GET", "/audit/verify");
    assert.equal(verdict.ok, true, JSON.stringify(verdict));
    assert.ok(verdict.entries >= 4);
  });

  it("refuses bad query parameters with 400 naming the field", async () => {
    for (const [query, field] of [["limit=0", "limit"], ["limit=abc", "limit"], ["subject=%24where", "subject"], ["from=yesterday", "from"], ["from=2000&to=1000", "to"]]) {
      const res = await call<{ error: { fields?: string[] } }>("GET", `/audit?${query}`);
      assert.equal(res.status, 400, query);
      assert.deepEqual(res.body.error.fields, [field], query);
    }
  });

  it("an entry edited or deleted directly in MongoDB is reported by GET /api/audit/verify and npm run audit:verify", async () => {
    const entries = db.collection<AuditEntry>("audit");
    const before = await call<ChainVerdict>("GET", "/audit/verify");
    assert.equal(before.body.ok, true);
    assert.ok(before.body.entries >= 3, "needs three entries to tamper with");
    const cliIntact = await auditVerifyCli(env.MONGO_URL);
    assert.equal(cliIntact.code, 0, cliIntact.output);
    assert.match(cliIntact.output, /intact/);

    const second = await entries.findOne({ _id: 2 });
    assert.ok(second);
    await entries.updateOne({ _id: 2 }, { $set: { user: "mallory" } });
    const edited = (await call<ChainVerdict>("GET", "/audit/verify")).body;
    assert.deepEqual([edited.ok, edited.brokenAt], [false, 2], JSON.stringify(edited));
    assert.match(edited.reason ?? "", /changed after it was written/);
    const cliEdited = await auditVerifyCli(env.MONGO_URL);
    assert.equal(cliEdited.code, 1, cliEdited.output);
    assert.match(cliEdited.output, /BROKEN at seq 2/);

    await entries.updateOne({ _id: 2 }, { $set: { user: second.user } });
    assert.equal((await call<ChainVerdict>("GET", "/audit/verify")).body.ok, true, "undoing the edit restores the chain");

    await entries.deleteOne({ _id: 3 });
    const deleted = (await call<ChainVerdict>("GET", "/audit/verify")).body;
    assert.deepEqual([deleted.ok, deleted.brokenAt], [false, 3], JSON.stringify(deleted));
    assert.match(deleted.reason ?? "", /missing/);
    const cliDeleted = await auditVerifyCli(env.MONGO_URL);
    assert.equal(cliDeleted.code, 1, cliDeleted.output);
    assert.match(cliDeleted.output, /BROKEN at seq 3/);
  });
});
