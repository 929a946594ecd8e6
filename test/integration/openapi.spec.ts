// The OpenAPI document against the routes a full system really serves: every alias the gateway
// exposes is in the document with its method and path, every documented route answers, and the
// document is valid OpenAPI 3.0 and the one docs/api-reference.md was generated from.
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import type { OpenApiDocument } from "../../src/api/openapi.ts";
import { renderReferenceMarkdown } from "../../src/api/reference.ts";
import { offlineOpenApiDocument, REFERENCE_FILE } from "../../scripts/api-reference.ts";
import { openApiSchemaErrors } from "../helpers/openapi-schema.ts";
import { apiFetch, cleanupRun, getJson, isolatedEnv, startPlantwire, waitHealthy, type RunningProcess, type TestSystemEnv } from "../helpers/system.ts";

interface AliasInfo {
  actionName: string | null;
  fullPath: string;
  methods: string;
}

describe("OpenAPI document of a running system", function () {
  this.timeout(180_000);
  let env: TestSystemEnv;
  let system: RunningProcess;
  let api: string;
  let doc: OpenApiDocument;

  before(async () => {
    env = await isolatedEnv("openapi", { PLC_COUNT: "2" });
    api = `http://127.0.0.1:${env.API_PORT}`;
    system = startPlantwire(env);
    await waitHealthy(env, system);
    const res = await getJson<OpenApiDocument>(`${api}/api/openapi.json`);
    assert.equal(res.status, 200);
    doc = res.body;
  });

  after(async () => {
    await system?.stop();
    if (env) await cleanupRun(env);
  });

  it("is valid OpenAPI 3.0 (deploy/schema/openapi-3.0.json)", () => {
    assert.equal(openApiSchemaErrors(doc), "");
  });

  it("holds every alias the gateway exposes, with its method and path", async () => {
    const { status, body: aliases } = await getJson<AliasInfo[]>(`${api}/api/list-aliases`);
    assert.equal(status, 200);
    assert.ok(aliases.length >= 20, `${aliases.length} aliases`);
    const documented = new Set(Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`)));
    const served = aliases.map((a) => `${a.methods === "*" ? "GET" : a.methods.toUpperCase()} ${a.fullPath.replace(/:([A-Za-z0-9_]+)/g, "{$1}")}`);
    assert.deepEqual(served.filter((s) => !documented.has(s)), [], "served but not documented");
    assert.deepEqual([...documented].filter((d) => !served.includes(d)), [], "documented but not served");
  });

  it("every documented route answers something other than route-not-found", async () => {
    const unknownRoute = await apiFetch(`${api}/api/no-such-route`);
    const notFound = await unknownRoute.text();
    assert.equal(unknownRoute.status, 404);
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const method of Object.keys(methods)) {
        const url = `${api}${path.replace(/\{[^}]+\}/g, "no-such-id")}`;
        // The live stream never ends: its headers are the answer.
        const abort = new AbortController();
        const res = await apiFetch(url, { method: method.toUpperCase(), signal: abort.signal, ...(method === "get" ? {} : { headers: { "Content-Type": "application/json" }, body: "{}" }) });
        const text = res.headers.get("content-type")?.startsWith("text/event-stream") ? "" : await res.text();
        abort.abort();
        assert.ok(res.status !== 404 || text !== notFound, `${method.toUpperCase()} ${path}: ${res.status} ${text}`);
        assert.ok(res.status < 500 || res.status === 503, `${method.toUpperCase()} ${path}: ${res.status} ${text}`);
      }
    }
  });

  it("is the document docs/api-reference.md is generated from", async () => {
    assert.deepEqual(doc, JSON.parse(JSON.stringify(await offlineOpenApiDocument())), "the live registry and the created services describe the same routes");
    assert.equal(readFileSync(REFERENCE_FILE, "utf8"), renderReferenceMarkdown(doc), "docs/api-reference.md is stale: run `npm run docs:api`");
  });

  it("serves the docs page as HTML with every route", async () => {
    const res = await apiFetch(`${api}/api/docs`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
    const html = await res.text();
    for (const path of Object.keys(doc.paths)) assert.ok(html.includes(path), path);
  });
});
