// Fuzzes every route of the OpenAPI document of a running system (test/fuzz/rest-cases.ts): missing,
// mistyped, boundary and hostile values, operator smuggling, oversized and malformed bodies. No
// answer may be a 5xx, every 4xx is the JSON error shape, nothing leaks a stack trace, the system
// stays healthy, and no query operator from a request reaches MongoDB: the services that use
// MongoDB run in this process with command monitoring on, so every command they send is inspected
// (test/fuzz/mongo-operators.ts), and the data the operators could have reached is compared after.
import { strict as assert } from "node:assert";
import { readdirSync, readFileSync } from "node:fs";
import type { ServiceBroker } from "moleculer";
import { MongoClient, type CommandStartedEvent } from "mongodb";
import { SYSTEM_USER } from "../../src/alarms/alarm-state-machine.ts";
import type { OpenApiDocument } from "../../src/api/openapi.ts";
import type { CommandDocument } from "../../src/control/commands.ts";
import { mapWithConcurrency } from "../../src/shared/concurrency.ts";
import type { SystemHealth } from "../../src/shared/health-summary.ts";
import type { AlarmDocument, AlarmEvent, DeviceDocument, LatestValue } from "../../src/shared/types.ts";
import { carriesMarker, operatorLeaks, operatorsInSource, type OperatorLeak } from "../fuzz/mongo-operators.ts";
import { generateCases, responseProblem, successContentTypes, type FuzzCase } from "../fuzz/rest-cases.ts";
import { apiFetch, cleanupRun, connectMqtt, getJson, isolatedEnv, startPlantwire, startServices, waitHealthy, type RunningProcess, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

const SEED = 20_240_601;
const PLC_COUNT = 4;
/** The services that talk to MongoDB: in this process, so their commands can be watched. */
const MONGO_SERVICES = ["devices", "historian", "anomaly-detector", "alarms", "control", "dead-letters", "auth"];
const CONCURRENCY = 8;

interface Answer {
  status: number;
  contentType: string;
  text: string;
}

/** Sends one case; a live stream's headers are its answer (it never ends). */
async function send(api: string, c: FuzzCase): Promise<Answer> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 20_000);
  try {
    const res = await apiFetch(api + c.url, { method: c.method, headers: c.headers, body: c.body, signal: abort.signal });
    const contentType = res.headers.get("content-type") ?? "";
    const text = contentType.startsWith("text/event-stream") ? "" : await res.text();
    return { status: res.status, contentType, text };
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

function errorType(text: string): string {
  try {
    return String((JSON.parse(text) as { error?: { type?: unknown } }).error?.type);
  } catch {
    return "?";
  }
}

/** The operators the code itself names, so only foreign ones count as injected. */
function ownOperators(): Set<string> {
  const files = ["services", "src", "mixins"].flatMap((dir) =>
    readdirSync(new URL(`../../${dir}/`, import.meta.url), { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".ts"))
      .map((f) => new URL(`../../${dir}/${f}`, import.meta.url)),
  );
  return operatorsInSource(files.map((f) => readFileSync(f, "utf8")).join("\n"));
}

describe("REST fuzzing from the OpenAPI document", function () {
  this.timeout(240_000);
  let env: TestSystemEnv;
  let system: RunningProcess;
  let broker: ServiceBroker;
  let mongo: MongoClient;
  let api: string;
  let doc: OpenApiDocument;
  const commands: Record<string, unknown>[] = [];
  let watching = false;

  /** The device and alarm the fuzzer names literally, and a bystander of each it never names. */
  let target: { device: string; alarm: string; command: string; deadLetter: string };
  let bystander: { device: string; overrides: DeviceDocument["overrides"]; alarm: AlarmDocument };
  let deviceIds: string[];

  const call = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await apiFetch(`${api}/api${path}`, { method, headers: body === undefined ? {} : { "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as T };
  };

  /** Lowers a numeric tag's hi limit under its current value, so the detector raises an hi alarm. */
  async function raiseAlarm(device: DeviceDocument): Promise<AlarmDocument> {
    const latest = await waitFor(`values of ${device._id}`, async () => {
      const { status, body } = await call<{ values: Record<string, LatestValue> }>("GET", `/devices/${device._id}/latest`);
      return status === 200 && Object.keys(body.values).length > 0 ? body.values : undefined;
    }, 30_000, 250);
    const tag = device.tags.find((t) => t.type === "number" && t.min !== undefined && typeof latest[t.name]?.v === "number" && (latest[t.name].v as number) > t.min + 1e-6);
    assert.ok(tag && tag.min !== undefined, `${device._id} has a numeric tag above its minimum`);
    const hi = (tag.min + (latest[tag.name].v as number)) / 2;
    const patched = await call("PATCH", `/devices/${device._id}`, { tags: { [tag.name]: { lolo: null, lo: null, hi, hihi: null, alarm: { onDelayMs: 0, deadband: 0 } } } });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    return waitFor(`an hi alarm on ${device._id}.${tag.name}`, async () => (await mongo.db().collection<AlarmDocument>("alarms").findOne({ device: device._id, tag: tag.name, kind: "hi" })) ?? undefined, 60_000, 250);
  }

  before(async () => {
    env = await isolatedEnv("restfuzz", { PLC_COUNT: String(PLC_COUNT), PLC_SCAN_MS: "200", COMMAND_TIMEOUT_MS: "2000" });
    // Command monitoring from the URL: every MongoClient of the in-process services reports its commands.
    env.MONGO_URL += "?monitorCommands=true";
    api = `http://127.0.0.1:${env.API_PORT}`;
    system = startPlantwire({ ...env, SERVICES: "api,plc-simulator,preprocessor" });
    broker = await startServices(env, MONGO_SERVICES);
    for (const service of broker.services) {
      const client = (service as unknown as { mongoClient?: MongoClient }).mongoClient;
      client?.on("commandStarted", (event: CommandStartedEvent) => {
        if (watching) commands.push(event.command);
      });
    }
    mongo = new MongoClient(env.MONGO_URL);
    await waitHealthy(env, system);

    const devices = await waitFor("every PLC registered", async () => {
      const { body } = await call<{ total: number; devices: DeviceDocument[] }>("GET", "/devices");
      return body.total === PLC_COUNT ? body.devices : undefined;
    }, 60_000, 250);
    deviceIds = devices.map((d) => d._id).sort();
    const [first, second] = devices;
    const targetAlarm = await raiseAlarm(first);
    const bystanderAlarm = await raiseAlarm(second);
    const stored = await mongo.db().collection<DeviceDocument>("devices").findOne({ _id: second._id });
    bystander = { device: second._id, overrides: stored?.overrides, alarm: bystanderAlarm };

    const sent = await call<{ _id: string }>("POST", `/devices/${first._id}/commands`, { action: "start" });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));

    // A dead letter: telemetry of a device no birth registered.
    const plc = await connectMqtt(env, { clientId: `${env.MOLECULER_NAMESPACE}-ghost` });
    await plc.publishAsync(`${env.MQTT_TOPIC_ROOT}/plant1/a/l/ghost/telemetry`, JSON.stringify({ ts: Date.now(), seq: 0, values: { x: 1 } }), { qos: 1 });
    await plc.endAsync();
    const [letter] = await waitFor("a dead letter", async () => {
      const { body } = await call<{ items: { _id: string }[] }>("GET", "/dead-letters");
      return body.items.length > 0 ? body.items : undefined;
    }, 30_000, 250);
    target = { device: first._id, alarm: targetAlarm._id, command: sent.body._id, deadLetter: letter._id };

    doc = (await getJson<OpenApiDocument>(`${api}/api/openapi.json`)).body;
  });

  after(async () => {
    await mongo?.close();
    await system?.stop();
    await broker?.stop();
    if (env) await cleanupRun(env);
  });

  it("answers every generated case without a 5xx, with the error shape, leaking nothing, and lets no operator reach MongoDB", async () => {
    const cases = generateCases(doc, {
      realIds: { devices: [target.device], alarms: [target.alarm], commands: [target.command], "dead-letters": [target.deadLetter] },
      seed: SEED,
      randomPerOperation: 12,
    });
    const operations = new Map<string, { successTypes: string[]; cases: number; outcomes: Map<string, number> }>();
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) operations.set(`${method.toUpperCase()} ${path}`, { successTypes: successContentTypes(op), cases: 0, outcomes: new Map() });
    }
    assert.equal(new Set(cases.map((c) => c.operation)).size, operations.size, "every operation has cases");

    watching = true;
    const started = Date.now();
    const problems = (
      await mapWithConcurrency(cases, CONCURRENCY, async (c) => {
        const op = operations.get(c.operation);
        assert.ok(op, c.operation);
        let answer: Answer;
        try {
          answer = await send(api, c);
        } catch (err) {
          return `${c.method} ${c.url.slice(0, 200)} [${c.label}]: no answer (${(err as Error).message})`;
        }
        op.cases++;
        const outcome = answer.status >= 400 ? `${answer.status}:${errorType(answer.text)}` : String(answer.status);
        op.outcomes.set(outcome, (op.outcomes.get(outcome) ?? 0) + 1);
        const problem = responseProblem(answer, op.successTypes);
        return problem && `${c.method} ${c.url.slice(0, 200)} [${c.label}]: ${problem}: ${answer.text.slice(0, 300)}`;
      })
    ).filter((p): p is string => p !== null);
    // Let commands sent by the last requests arrive before the listener stops.
    await new Promise((resolve) => setImmediate(resolve));
    watching = false;

    const table = [...operations].map(([name, o]) => `${String(o.cases).padStart(5)}  ${name}  ${[...o.outcomes].sort(([a], [b]) => a.localeCompare(b)).map(([s, n]) => `${s}×${n}`).join(" ")}`);
    process.stdout.write(`      ${cases.length} cases in ${((Date.now() - started) / 1000).toFixed(1)} s, ${commands.length} MongoDB commands watched\n      ${table.join("\n      ")}\n`);
    // The gateway logs why it answered a 5xx; the answer itself says only "internal error".
    const causes = system.output().split("\n").filter((line) => line.includes("request failed")).slice(-10);
    assert.deepEqual(problems.slice(0, 40), [], `${problems.length} bad answers; the gateway logged:\n${causes.join("\n")}`);

    const own = ownOperators();
    const leaks: (OperatorLeak & { command: string })[] = commands.flatMap((command) => operatorLeaks(command, own).map((leak) => ({ ...leak, command: JSON.stringify(command).slice(0, 300) })));
    assert.deepEqual(leaks.slice(0, 20), [], "query operators from requests reached MongoDB");
    // The listener saw the fuzzed values arrive as plain values: it would have seen them as operators.
    assert.ok(commands.filter(carriesMarker).length > 0, "no command carried a fuzzed value: the listener watched nothing");
  });

  it("leaves the data the injected operators could have reached as it was", async () => {
    const db = mongo.db();
    assert.deepEqual((await db.collection<DeviceDocument>("devices").find({}).toArray()).map((d) => d._id).sort(), deviceIds, "no device added or removed");

    const { acked, shelvedUntil, outOfService } = (await db.collection<AlarmDocument>("alarms").findOne({ _id: bystander.alarm._id })) ?? {};
    assert.deepEqual({ acked, shelvedUntil, outOfService }, { acked: false, shelvedUntil: null, outOfService: false }, "the alarm never named is untouched");
    const operatorEvents = await db.collection<AlarmEvent>("alarm_events").find({ alarmId: { $ne: target.alarm }, user: { $ne: SYSTEM_USER } }).toArray();
    assert.deepEqual(operatorEvents.map((e) => [e.alarmId, e.action]), [], "no operator action on an alarm the fuzzer did not name");

    const sentTo = new Set((await db.collection<CommandDocument>("commands").find({}).toArray()).map((c) => c.device));
    assert.deepEqual([...sentTo], [target.device], "commands reached only the device named in the path");

    const stored = await db.collection<DeviceDocument>("devices").findOne({ _id: bystander.device });
    assert.ok(bystander.overrides, "the bystander has limits of its own");
    assert.deepEqual(stored?.overrides, bystander.overrides, "the device never named keeps its limits");
  });

  it("is still healthy, with every service alive", async () => {
    await waitHealthy(env, system, 30_000);
    const { status, body } = await getJson<SystemHealth>(`${api}/api/health`);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.status, "ok");
    assert.deepEqual(Object.entries(body.services).filter(([, s]) => !s.ok).map(([name]) => name), [], "every service alive");
    assert.equal(system.child.exitCode, null, "the child process runs");
  });
});
