// API authentication and roles against the real servers, route by route from the OpenAPI document:
// what no credentials, a viewer key, an operator login, an engineer key and an admin may do; a
// revoked key; failed logins in the audit trail; the live stream's token; the rate limiter.
import { strict as assert } from "node:assert";
import type { ServiceBroker } from "moleculer";
import type { OpenApiDocument } from "../../src/api/openapi.ts";
import type { AuditEntry } from "../../src/audit/chain.ts";
import type { RouteRole } from "../../src/auth/roles.ts";
import type { CommandView } from "../../src/control/commands.ts";
import type { ApiKeyView, AuthUser, LoginResult } from "../../src/shared/types.ts";
import { authHeaders, cleanupRun, freePort, isolatedEnv, startServices, TEST_ADMIN_PASSWORD, testToken, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

interface Answer<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

/** One request; a live stream's status and headers are its answer (it never ends). */
async function request<T = unknown>(url: string, method = "GET", headers: Record<string, string> = {}, body?: unknown): Promise<Answer<T>> {
  const abort = new AbortController();
  try {
    const res = await fetch(url, {
      method,
      signal: abort.signal,
      headers: { ...headers, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const type = res.headers.get("content-type") ?? "";
    // The stream never ends; CSV and HTML answers are not parsed.
    const answer = type.startsWith("application/json") ? await res.json() : type.startsWith("text/event-stream") ? null : await res.text();
    return { status: res.status, headers: res.headers, body: answer as T };
  } finally {
    abort.abort();
  }
}

describe("API authentication and roles (real servers)", function () {
  this.timeout(180_000);
  let env: TestSystemEnv;
  let broker: ServiceBroker;
  let limited: ServiceBroker | undefined;
  let api: string;
  let doc: OpenApiDocument;
  const operations: { method: string; path: string; url: string; role: RouteRole }[] = [];
  const admin = authHeaders("admin");

  const createKey = async (name: string, role: string): Promise<ApiKeyView & { key: string }> => {
    const created = await request<ApiKeyView & { key: string }>(`${api}/auth/keys`, "POST", admin, { name, role });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    return created.body;
  };
  const auditOf = async (action: string): Promise<AuditEntry[]> =>
    (await request<{ entries: AuditEntry[] }>(`${api}/audit?subject=user&limit=1000`, "GET", admin)).body.entries.filter((e) => e.action === action);

  before(async () => {
    env = await isolatedEnv("auth", { PLC_COUNT: "1", PLC_SCAN_MS: "500" });
    api = `http://127.0.0.1:${env.API_PORT}/api`;
    broker = await startServices(env, ["devices", "plc-simulator", "preprocessor", "alarms", "control", "dead-letters", "auth", "api"]);
    await waitFor("a registered device", async () => (await request<{ total: number }>(`${api}/devices`, "GET", admin)).body?.total === 1, 60_000, 300);
    // The gateway picks up each service's routes as it appears in the registry.
    await waitFor("the auth routes", async () => (await request(`${api}/auth/me`, "GET", admin)).status === 200, 30_000, 250);
    doc = (await request<OpenApiDocument>(`${api}/openapi.json`)).body;
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        operations.push({ method: method.toUpperCase(), path, url: `${api.replace(/\/api$/, "")}${path.replace(/\{[^}]+\}/g, "no-such-id")}`, role: op["x-required-role"] as RouteRole });
      }
    }
    assert.ok(operations.length >= 30, `${operations.length} operations`);
  });

  after(async () => {
    await limited?.stop();
    await broker?.stop();
    if (env) await cleanupRun(env);
  });

  it("answers 401 on every non-public operation without credentials, and serves the public ones", async () => {
    for (const op of operations) {
      const res = await request<{ error: { type: string; message: string } }>(op.url, op.method, {}, op.method === "GET" ? undefined : {});
      if (op.role === "public") {
        assert.ok(res.status !== 401 && res.status !== 403, `${op.method} ${op.path}: ${res.status}`);
        continue;
      }
      assert.equal(res.status, 401, `${op.method} ${op.path}`);
      assert.equal(res.body.error.type, "UNAUTHORIZED", `${op.method} ${op.path}`);
      assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/);
    }
    assert.equal((await request(`${api}/devices`, "GET", { Authorization: "Bearer not.a.token" })).status, 401, "a bad token");
    assert.equal((await request(`${api}/devices`, "GET", { "X-API-Key": "pwk_made-up" })).status, 401, "an unknown key");
    assert.equal((await request(`${api}/devices?access_token=${testToken()}`)).status, 401, "the query token only counts on the live stream");
    const dashboard = await fetch(api.replace(/\/api$/, "/"));
    assert.equal(dashboard.status, 200, "the dashboard's files are public");
  });

  it("lets a viewer key read and refuses it (403) every write", async () => {
    const viewer = await createKey("wall display", "viewer");
    assert.match(viewer.key, /^pwk_/);
    const headers = { "X-API-Key": viewer.key };
    const me = await request<AuthUser>(`${api}/auth/me`, "GET", headers);
    assert.deepEqual(me.body, { name: "wall display", role: "viewer", kind: "key" });
    for (const op of operations) {
      const res = await request<{ error: { type: string } }>(op.url, op.method, headers, op.method === "GET" ? undefined : {});
      if (op.role === "public" || op.role === "viewer") assert.ok(res.status !== 401 && res.status !== 403, `${op.method} ${op.path}: ${res.status} ${JSON.stringify(res.body)}`);
      else {
        assert.equal(res.status, 403, `${op.method} ${op.path}`);
        assert.equal(res.body.error.type, "FORBIDDEN");
      }
      if (op.method !== "GET") assert.notEqual(op.role, "viewer", `${op.method} ${op.path} is a write a viewer may do`);
    }
  });

  it("lets an operator who logged in send commands and acknowledge, but not change devices; the real user is recorded", async () => {
    const created = await request(`${api}/auth/users`, "POST", admin, { name: "olga", role: "operator", password: "operator password 1" });
    assert.equal(created.status, 201);
    const login = await request<LoginResult>(`${api}/auth/login`, "POST", {}, { name: "olga", password: "operator password 1" });
    assert.equal(login.status, 200);
    assert.equal(login.body.tokenType, "Bearer");
    assert.ok(login.body.expiresAt > Date.now());
    const headers = { Authorization: `Bearer ${login.body.token}` };
    assert.deepEqual((await request<AuthUser>(`${api}/auth/me`, "GET", headers)).body, { name: "olga", role: "operator", kind: "user" });
    const { body: devices } = await request<{ devices: { _id: string }[] }>(`${api}/devices`, "GET", headers);
    const device = devices.devices[0]._id;
    const command = await request<CommandView>(`${api}/devices/${device}/commands`, "POST", headers, { action: "start" });
    assert.equal(command.status, 202, JSON.stringify(command.body));
    assert.equal(command.body.user, "olga", "the command records who sent it");
    const ack = await request(`${api}/alarms/no-such-alarm/ack`, "POST", headers, {});
    assert.equal(ack.status, 404, "authorized: the alarm does not exist");
    assert.equal((await request(`${api}/devices/${device}`, "PATCH", headers, { metadata: { note: "x" } })).status, 403);
    assert.equal((await request(`${api}/auth/keys`, "GET", headers)).status, 403);
  });

  it("lets an engineer change a device and an admin manage keys; a revoked key is refused", async () => {
    const engineer = await createKey("commissioning laptop", "engineer");
    const { body: devices } = await request<{ devices: { _id: string }[] }>(`${api}/devices`, "GET", admin);
    const patched = await request<{ overrides?: { updatedBy: string } }>(`${api}/devices/${devices.devices[0]._id}`, "PATCH", { "X-API-Key": engineer.key }, { metadata: { note: "by the engineer" } });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body.overrides?.updatedBy, "commissioning laptop");
    assert.equal((await request(`${api}/auth/users`, "GET", { "X-API-Key": engineer.key })).status, 403, "engineers do not manage users");

    const listed = await request<{ keys: ApiKeyView[] }>(`${api}/auth/keys`, "GET", admin);
    assert.ok(listed.body.keys.some((k) => k.id === engineer.id && k.role === "engineer"));
    assert.ok(!JSON.stringify(listed.body).includes(engineer.key), "the key itself is never shown again");
    assert.equal((await request(`${api}/auth/keys/${engineer.id}`, "DELETE", admin)).status, 200);
    const refused = await request<{ error: { type: string } }>(`${api}/devices`, "GET", { "X-API-Key": engineer.key });
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error.type, "UNAUTHORIZED");
  });

  it("refuses a wrong password with 401 and records failed and successful logins in the audit trail", async () => {
    const bad = await request<{ error: { type: string; message: string } }>(`${api}/auth/login`, "POST", {}, { name: "admin", password: "not the password" });
    assert.equal(bad.status, 401);
    assert.equal(bad.body.error.type, "INVALID_CREDENTIALS");
    assert.equal((await request(`${api}/auth/login`, "POST", {}, { name: "nobody", password: "x" })).status, 401);
    const good = await request<LoginResult>(`${api}/auth/login`, "POST", {}, { name: "admin", password: TEST_ADMIN_PASSWORD });
    assert.equal(good.status, 200, "the bootstrap admin from AUTH_ADMIN_PASSWORD");
    assert.equal(good.body.user.role, "admin");
    const failed = await auditOf("auth.loginFailed");
    assert.deepEqual(failed.map((e) => [e.subjectId, e.details.reason]).sort(), [["admin", "wrong password"], ["nobody", "unknown user"]]);
    assert.ok((await auditOf("auth.login")).some((e) => e.user === "admin"));
    assert.ok(!JSON.stringify(failed).includes("not the password"), "no password in the trail");
  });

  it("opens the live stream only with a viewer's token in the query", async () => {
    const none = await request<{ error: { type: string } }>(`${api}/stream?filter=%23`);
    assert.equal(none.status, 401);
    assert.equal(none.body.error.type, "UNAUTHORIZED");
    assert.equal((await request(`${api}/stream?filter=%23&access_token=garbage`)).status, 401);
    const open = await request(`${api}/stream?filter=%23&access_token=${testToken("viewer")}`);
    assert.equal(open.status, 200);
    assert.match(open.headers.get("content-type") ?? "", /^text\/event-stream/);
  });

  it("opens everything with the demo switch API_AUTH=off, recording writes as anonymous", async () => {
    const port = await freePort();
    const open = await startServices({ ...env, API_PORT: String(port), API_AUTH: "off", NODE_ID: `${env.MOLECULER_NAMESPACE}-open` }, ["api"]);
    try {
      await waitFor("the open gateway's routes", async () => (await open.call<{ fullPath: string }[], object>("api.listAliases", {}, { nodeID: open.nodeID })).some((a) => a.fullPath === "/api/devices/:id"));
      const base = `http://127.0.0.1:${port}/api`;
      const { body: devices } = await request<{ devices: { _id: string }[] }>(`${base}/devices`);
      assert.equal(devices.devices.length, 1, "read without credentials");
      const patched = await request<{ overrides?: { updatedBy: string } }>(`${base}/devices/${devices.devices[0]._id}`, "PATCH", {}, { metadata: { note: "demo" } });
      assert.equal(patched.status, 200);
      assert.equal(patched.body.overrides?.updatedBy, "anonymous");
    } finally {
      await open.stop();
    }
  });

  it("limits requests per user, key or address with 429 in the JSON error shape", async () => {
    const port = await freePort();
    limited = await startServices({ ...env, API_PORT: String(port), API_RATE_LIMIT: "5", API_RATE_WINDOW_MS: "60000", NODE_ID: `${env.MOLECULER_NAMESPACE}-limited` }, ["api"]);
    // Asked inside the broker: every request through this gateway would count.
    await waitFor("the new gateway's route to the devices", async () => {
      const aliases = await (limited as ServiceBroker).call<{ fullPath: string }[], object>("api.listAliases", {}, { nodeID: (limited as ServiceBroker).nodeID });
      return aliases.some((a) => a.fullPath === "/api/devices");
    });
    const url = `http://127.0.0.1:${port}/api/devices?limit=1`;
    const viewer = { Authorization: `Bearer ${testToken("viewer")}` };
    const answers: Answer<{ error: { type: string; message: string } }>[] = [];
    for (let i = 0; i < 6; i++) answers.push(await request(url, "GET", viewer));
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200, 429]);
    assert.equal(answers[0].headers.get("x-rate-limit-limit"), "5");
    assert.equal(answers[4].headers.get("x-rate-limit-remaining"), "0");
    assert.equal(answers[5].body.error.type, "RATE_LIMITED");
    assert.equal((await request(url, "GET", admin)).status, 200, "another user has a bucket of its own");
  });
});
