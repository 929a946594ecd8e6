// The REST fuzzer's case generator, answer rules and MongoDB operator detector
// (test/fuzz/), checked on a small document without servers.
import { strict as assert } from "node:assert";
import type { OpenApiDocument } from "../../src/api/openapi.ts";
import { carriesMarker, operatorLeaks, operatorsInSource } from "../fuzz/mongo-operators.ts";
import { MAX_PARAMS_DEPTH, nestedDeeperThan } from "../../services/api.service.ts";
import { FUZZ_MARKER, generateCases, responseProblem, successContentTypes } from "../fuzz/rest-cases.ts";

const doc: OpenApiDocument = {
  openapi: "3.0.3",
  info: { title: "t", version: "1", description: "" },
  tags: [],
  components: { schemas: {}, responses: {} },
  paths: {
    "/api/devices/{id}/history": {
      get: {
        operationId: "history",
        summary: "",
        tags: [],
        parameters: [
          { name: "id", in: "path", required: true, schema: { type: "string", pattern: "^[A-Za-z0-9_.-]{1,64}$" } },
          { name: "tag", in: "query", required: true, schema: { type: "string" } },
          { name: "points", in: "query", required: false, schema: { type: "integer", minimum: 1, maximum: 100 } },
        ],
        responses: { "200": { description: "", content: { "text/csv": { schema: { type: "string" } } } } },
      },
    },
    "/api/alarms/{id}/shelve": {
      post: {
        operationId: "shelve",
        summary: "",
        tags: [],
        parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
        requestBody: { required: true, content: { "application/json": { schema: { type: "object", properties: { durationMs: { type: "integer", minimum: 1 }, comment: { type: "string" } }, required: ["durationMs", "comment"] } } } },
        responses: { "200": { description: "" } },
      },
    },
  },
};

const options = { realIds: { devices: ["oven-01"] }, seed: 7, randomPerOperation: 10 };

describe("REST fuzz cases", () => {
  it("are the same for the same seed, and differ for another", () => {
    assert.deepEqual(generateCases(doc, options), generateCases(doc, options));
    assert.notDeepEqual(generateCases(doc, options), generateCases(doc, { ...options, seed: 8 }));
  });

  it("cover every operation with valid, missing, mistyped, smuggled and generated requests", () => {
    const cases = generateCases(doc, options);
    const history = cases.filter((c) => c.operation === "GET /api/devices/{id}/history");
    const label = (l: string) => history.find((c) => c.label === l);
    assert.equal(label("valid-required-only")?.url, "/api/devices/oven-01/history?tag=fuzz", "the real id and a valid required parameter");
    assert.equal(label("missing:tag")?.url, "/api/devices/oven-01/history");
    assert.equal(label("query:points=above-maximum")?.url, "/api/devices/oven-01/history?tag=fuzz&points=101");
    assert.equal(label("smuggle:tag[$ne]")?.url, `/api/devices/oven-01/history?tag[$ne]=${FUZZ_MARKER}`);
    assert.equal(label("smuggle:points-duplicated")?.url, "/api/devices/oven-01/history?tag=fuzz&points=1&points=1");
    assert.equal(label("path:id=path-traversal")?.url, "/api/devices/..%2F..%2Fetc%2Fpasswd/history?tag=fuzz");
    assert.equal(label("path:id=path-traversal")?.pathId, "../../etc/passwd");
    assert.ok(label("smuggle-extra:device[$ne]"), "operator smuggling also under names the route does not declare");
    assert.equal(history.filter((c) => c.label.startsWith("generated#")).length, 10);
    assert.ok(history.every((c) => c.body === undefined && c.method === "GET"));
  });

  it("make each body field wrong in turn and send bodies of the wrong kind", () => {
    const shelve = generateCases(doc, options).filter((c) => c.operation === "POST /api/alarms/{id}/shelve");
    const label = (l: string) => shelve.find((c) => c.label === l);
    assert.equal(label("valid-required-only")?.body, '{"durationMs":1,"comment":"fuzz"}');
    assert.equal(label("missing:body.comment")?.body, '{"durationMs":1}');
    assert.equal(label("body:durationMs=op-gt")?.body, `{"durationMs":{"$gt":"${FUZZ_MARKER}"},"comment":"fuzz"}`);
    assert.ok((label("body-raw:oversized")?.body?.length ?? 0) > 64 * 1024, "over the gateway's JSON limit");
    assert.deepEqual(label("body-raw:text-plain")?.headers, { "Content-Type": "text/plain" });
    assert.deepEqual(label("body-raw:no-content-type")?.headers, {});
    assert.equal(label("smuggle-body-via-query:comment[$ne]")?.url, `/api/alarms/fuzz/shelve?comment[$ne]=${FUZZ_MARKER}`);
  });
});

describe("REST fuzz answer rules", () => {
  const json = "application/json; charset=utf-8";
  it("accept a documented success and a 4xx with the error shape", () => {
    assert.equal(responseProblem({ status: 200, contentType: "text/csv", text: "ts,x" }, ["text/csv"]), null);
    assert.equal(responseProblem({ status: 400, contentType: json, text: '{"error":{"type":"INVALID_PARAMETER","message":"limit must be a number"}}' }, []), null);
  });

  it("refuse a 5xx, another error shape, an undocumented content type and a stack trace", () => {
    assert.match(responseProblem({ status: 500, contentType: json, text: '{"error":{"type":"ERROR","message":"internal error"}}' }, []) ?? "", /answers 500/);
    assert.match(responseProblem({ status: 404, contentType: json, text: '{"name":"NotFoundError","message":"Not found"}' }, []) ?? "", /without \{error/);
    assert.match(responseProblem({ status: 413, contentType: "text/html", text: "too large" }, []) ?? "", /content type/);
    assert.match(responseProblem({ status: 200, contentType: "text/plain", text: "x" }, ["application/json"]) ?? "", /documented application\/json/);
    const trace = '{"error":{"type":"E","message":"x\\n    at handler (/work/main/services/alarms.service.ts:12:3)"}}';
    assert.match(responseProblem({ status: 400, contentType: json, text: trace }, []) ?? "", /stack trace/);
  });

  it("read the documented success content types, JSON by default", () => {
    assert.deepEqual(successContentTypes(doc.paths["/api/devices/{id}/history"].get), ["text/csv"]);
    assert.deepEqual(successContentTypes(doc.paths["/api/alarms/{id}/shelve"].post), ["application/json"]);
  });
});

describe("MongoDB operator detector", () => {
  const own = operatorsInSource('find({ at: { $gte: from, $lt: to } }); updateOne(q, { $set: x }); { $or: [] }; { $ne: "replayed" }');

  it("learns the code's own operators from its source", () => {
    assert.deepEqual([...own].sort(), ["$gte", "$lt", "$ne", "$or", "$set"]);
  });

  it("passes the code's own commands, with fuzzed text as plain values and stored data", () => {
    assert.deepEqual(operatorLeaks({ find: "alarms", filter: { _id: `{"$ne": null}${FUZZ_MARKER}`, at: { $gte: 1, $lt: 2 } }, $db: "x" }, own), []);
    assert.deepEqual(operatorLeaks({ update: "devices", updates: [{ q: { _id: "a" }, u: { $set: { overrides: { metadata: { note: FUZZ_MARKER } } } } }] }, own), []);
    const counted = { aggregate: "alarms", pipeline: [{ $match: { device: FUZZ_MARKER } }, { $skip: 0 }, { $group: { _id: 1, n: { $sum: 1 } } }] };
    assert.deepEqual(operatorLeaks(counted, own), [], "the driver's countDocuments");
  });

  it("finds an operator carrying the marker, and one the code never uses, wherever it is", () => {
    assert.deepEqual(operatorLeaks({ find: "alarms", filter: { device: { $ne: FUZZ_MARKER } } }, own), [{ path: "filter.device.$ne", operator: "$ne", why: "operand carries the fuzz marker" }]);
    assert.deepEqual(operatorLeaks({ aggregate: "alarms", pipeline: [{ $match: { $or: [{ _id: { $gt: "" } }] } }, { $group: { _id: 1, n: { $sum: 1 } } }] }, own), [{ path: "pipeline.0.$match.$or.0._id.$gt", operator: "$gt", why: "operator plantwire never uses" }]);
    assert.deepEqual(operatorLeaks({ update: "devices", updates: [{ q: { _id: "a" }, u: { $set: { metadata: { $where: "x" } } } }] }, own).map((l) => l.path), ["updates.0.u.$set.metadata.$where"]);
    assert.deepEqual(operatorLeaks({ delete: "alarms", deletes: [{ q: { $where: "1" } }] }, own).map((l) => l.operator), ["$where"]);
  });

  it("tells whether a command carries fuzzed text at all", () => {
    assert.equal(carriesMarker({ find: "devices", filter: { _id: `x${FUZZ_MARKER}` } }), true);
    assert.equal(carriesMarker({ find: "devices", filter: { _id: "x" }, comment: FUZZ_MARKER }), false);
  });
});

describe("gateway nesting limit (found by the fuzzer: a 5000-level body overflowed the transporter's JSON.stringify)", () => {
  it("measures nesting without recursing, objects and arrays alike", () => {
    const deep = JSON.parse(`${'{"a":['.repeat(50_000)}1${"]}".repeat(50_000)}`) as unknown;
    assert.equal(nestedDeeperThan(deep, MAX_PARAMS_DEPTH), true);
    assert.equal(nestedDeeperThan({ tags: { zone_temp: { alarm: { severity: { hi: "high" } } } } }, MAX_PARAMS_DEPTH), false, "the deepest real body");
    assert.equal(nestedDeeperThan({ a: { b: {} } }, 2), true);
    assert.equal(nestedDeeperThan({ a: { b: 1 } }, 2), false);
    assert.equal(nestedDeeperThan(undefined, 1), false);
  });
});
