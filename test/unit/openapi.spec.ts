import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { renderDocsPage } from "../../src/api/docs-page.ts";
import { buildOpenApiDocument, restRoutes, ruleToSchema, type ServiceDescription } from "../../src/api/openapi.ts";
import { renderReferenceMarkdown } from "../../src/api/reference.ts";
import { offlineOpenApiDocument, REFERENCE_FILE, renderReference } from "../../scripts/api-reference.ts";
import { openApiSchemaErrors } from "../helpers/openapi-schema.ts";

const ID = { type: "string", pattern: /^[A-Za-z0-9_.-]{1,64}$/ };

const services: ServiceDescription[] = [
  {
    name: "devices",
    settings: { rest: "/" },
    actions: {
      "devices.get": { name: "devices.get", rest: "GET /devices/:id", params: { id: ID }, openapi: { summary: "One device" } },
      "devices.list": { name: "devices.list", rest: "GET /devices", params: { limit: { type: "number", integer: true, min: 1, max: 1000, optional: true, convert: true }, site: "string|optional|max:64" } },
      "devices.update": {
        name: "devices.update",
        rest: "PATCH /devices/:id",
        params: { id: ID, tags: { type: "record", optional: true, key: ID, value: { type: "object", strict: true, props: { hi: { type: "number", optional: true, nullable: true } } } } },
      },
      "devices.register": { name: "devices.register", params: { device: ID } },
    },
  },
  { name: "control", settings: { rest: "/" }, actions: { "control.send": { name: "control.send", rest: "POST /devices/:id/commands", params: { id: ID, action: { type: "enum", values: ["start", "stop"] } }, openapi: { summary: "Send", status: 202 } } } },
  // Without settings.rest, moleculer-web uses the service name as the base path.
  { name: "misc", settings: {}, actions: { "misc.ping": { name: "misc.ping", rest: { method: "GET", path: "/ping" } }, "misc.hidden": { name: "misc.hidden", rest: "GET /hidden", visibility: "protected" } } },
  { name: "$node", settings: null, actions: { "$node.list": { name: "$node.list" } } },
];
const route = { path: "/api", autoAliases: true, aliases: { "GET /stream": () => undefined } };

describe("OpenAPI document", () => {
  describe("fastest-validator rules as JSON Schema", () => {
    it("converts strings, numbers, enums, booleans, arrays, objects, records and multi rules", () => {
      assert.deepEqual(ruleToSchema({ type: "string", pattern: /^a+$/, min: 1, max: 5 }), { type: "string", pattern: "^a+$", minLength: 1, maxLength: 5 });
      assert.deepEqual(ruleToSchema({ type: "number", integer: true, min: 0, max: 9 }), { type: "integer", minimum: 0, maximum: 9 });
      assert.deepEqual(ruleToSchema({ type: "number", positive: true }), { type: "number", minimum: 0, exclusiveMinimum: true });
      assert.deepEqual(ruleToSchema({ type: "enum", values: ["a", "b"] }), { type: "string", enum: ["a", "b"] });
      assert.deepEqual(ruleToSchema("boolean|optional"), { type: "boolean" });
      assert.deepEqual(ruleToSchema({ type: "array", items: "string", min: 1, max: 3 }), { type: "array", items: { type: "string" }, minItems: 1, maxItems: 3 });
      assert.deepEqual(ruleToSchema({ type: "object", strict: true, props: { a: "number", b: { type: "string", optional: true } } }), {
        type: "object",
        properties: { a: { type: "number" }, b: { type: "string" } },
        required: ["a"],
        additionalProperties: false,
      });
      assert.deepEqual(ruleToSchema({ type: "record", value: { type: "number", nullable: true } }), { type: "object", additionalProperties: { type: "number", nullable: true } });
      assert.deepEqual(ruleToSchema({ type: "multi", rules: [{ type: "number", integer: true }, { type: "string", max: 40 }] }), { anyOf: [{ type: "integer" }, { type: "string", maxLength: 40 }] });
      // A pattern that crossed the transporter arrives as {}: left out, not invented.
      assert.deepEqual(ruleToSchema({ type: "string", pattern: {} }), { type: "string" });
    });
  });

  describe("routes as moleculer-web's autoAliases derives them", () => {
    it("prefixes the route path and service base, skips unpublished actions and keeps explicit aliases", () => {
      const routes = restRoutes(services, route).map((r) => `${r.method} ${r.path} ${r.action?.name ?? "-"}`);
      assert.deepEqual(routes.sort(), [
        "GET /api/devices devices.list",
        "GET /api/devices/:id devices.get",
        "GET /api/misc/ping misc.ping",
        "GET /api/stream -",
        "PATCH /api/devices/:id devices.update",
        "POST /api/devices/:id/commands control.send",
      ]);
    });
  });

  describe("the document", () => {
    const doc = buildOpenApiDocument(restRoutes(services, route), "1.2.3");

    it("puts path parameters in the path, others in the query for GET and in a JSON body otherwise", () => {
      const get = doc.paths["/api/devices/{id}"].get;
      assert.deepEqual(get.parameters, [{ name: "id", in: "path", required: true, schema: { type: "string", pattern: "^[A-Za-z0-9_.-]{1,64}$" } }]);
      assert.equal(get.summary, "One device");
      assert.deepEqual(Object.keys(get.responses), ["200", "400", "401", "403", "404", "429", "503"]);
      const list = doc.paths["/api/devices"].get;
      assert.deepEqual(list.parameters?.map((p) => [p.name, p.in, p.required, p.schema.type]), [["limit", "query", false, "integer"], ["site", "query", false, "string"]]);
      assert.equal(list.summary, "devices.list", "the action name without an openapi summary");
      const patch = doc.paths["/api/devices/{id}"].patch;
      assert.deepEqual(patch.parameters?.map((p) => p.name), ["id"]);
      assert.deepEqual(patch.requestBody?.content["application/json"].schema.properties?.tags.additionalProperties, {
        type: "object",
        properties: { hi: { type: "number", nullable: true } },
        additionalProperties: false,
      });
      assert.ok(doc.paths["/api/devices/{id}/commands"].post.responses["202"], "the declared success status");
      assert.equal(doc.paths["/api/stream"].get.responses["200"].hasOwnProperty("content"), true, "the live stream described");
      assert.deepEqual(Object.keys(doc.paths), [...Object.keys(doc.paths)].sort());
    });

    it("declares the credentials and the role of every operation", () => {
      assert.deepEqual(Object.keys(doc.components.securitySchemes ?? {}), ["bearer", "apiKey"]);
      assert.equal(doc.paths["/api/stream"].get["x-required-role"], "viewer", "the live stream's role (GATEWAY_ROLES)");
      assert.ok(doc.paths["/api/stream"].get.parameters?.some((p) => p.name === "access_token"), "the stream documents its query token");
      assert.equal(doc.paths["/api/devices/{id}"].get["x-required-role"], "undeclared", "an action without a role is shown as such");
      assert.deepEqual(doc.paths["/api/devices/{id}"].get.security, [{ bearer: [] }, { apiKey: [] }]);
      const pub = buildOpenApiDocument(restRoutes([{ name: "x", settings: { rest: "/" }, actions: { "x.a": { name: "x.a", rest: "GET /a", role: "public" } } }], route), "1");
      assert.deepEqual(pub.paths["/api/a"].get.security, [], "public: no credentials");
      assert.equal(pub.paths["/api/a"].get.responses["401"], undefined);
    });

    it("is a valid OpenAPI 3.0 document (official schema, deploy/schema/openapi-3.0.json)", () => {
      assert.equal(openApiSchemaErrors(doc), "");
      assert.match(openApiSchemaErrors({ ...doc, paths: { "no-slash": {} } }), /paths/, "the check can fail");
    });

    it("renders a self-contained HTML page with every route, escaped", () => {
      const html = renderDocsPage(doc);
      for (const path of Object.keys(doc.paths)) assert.ok(html.includes(path), path);
      assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3)/, "no scripts, nothing fetched from elsewhere");
      assert.ok(html.includes("^[A-Za-z0-9_.-]{1,64}$"));
      const hostile = renderDocsPage({ ...doc, info: { ...doc.info, description: "<img src=x onerror=alert(1)>" } });
      assert.ok(!hostile.includes("<img"));
    });

    it("renders the same Markdown for the same routes in any order", () => {
      const reversed = buildOpenApiDocument(restRoutes([...services].reverse(), route).reverse(), "1.2.3");
      assert.equal(renderReferenceMarkdown(reversed), renderReferenceMarkdown(doc));
    });
  });

  describe("every service's routes (services created, not started)", () => {
    it("make a valid document with a summary and an error schema on every operation", async function () {
      this.timeout(30_000);
      const doc = await offlineOpenApiDocument();
      assert.equal(openApiSchemaErrors(doc), "");
      assert.ok(doc.paths["/api/devices/{id}"].patch, "PATCH /api/devices/{id}");
      for (const path of ["/api/openapi.json", "/api/docs", "/api/health", "/api/stream"]) assert.ok(doc.paths[path]?.get, path);
      for (const methods of Object.values(doc.paths)) for (const op of Object.values(methods)) assert.ok(op.summary && op.responses, op.operationId);
    });

    it("docs/api-reference.md is up to date (regenerate with `npm run docs:api`)", async function () {
      this.timeout(30_000);
      assert.equal(readFileSync(REFERENCE_FILE, "utf8"), await renderReference(), "docs/api-reference.md is stale: run `npm run docs:api`");
    });
  });
});
