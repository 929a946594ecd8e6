// Hostile and malformed HTTP requests generated from the gateway's OpenAPI document, for
// test/integration/rest-fuzz.spec.ts. Pure and deterministic: the same document, ids and seed give
// the same cases, so a failure names a request that can be sent again.
import fc from "fast-check";
import type { JsonSchema, OpenApiDocument, Operation, Parameter } from "../../src/api/openapi.ts";

/** Carried by every injected operator's operand, so a listener on MongoDB commands can recognise it. */
export const FUZZ_MARKER = "fuzzop";

export interface FuzzCase {
  /** "POST /api/alarms/{id}/ack": the operation it exercises. */
  operation: string;
  /** What is wrong with it, e.g. `query:limit=NaN`, `smuggle:device[$ne]`, `body-raw:malformed`. */
  label: string;
  method: string;
  /** Path and query string, already encoded. */
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** The path parameter as sent (decoded), when the operation has one. */
  pathId?: string;
}

/** Real ids per resource (the path segment after /api), so cases also reach past "not found". */
export type RealIds = Partial<Record<string, string[]>>;

export interface GenerateOptions {
  realIds: RealIds;
  seed: number;
  /** fast-check generated cases per operation, beside the fixed corpus. */
  randomPerOperation: number;
}

const TEN_KB = "x".repeat(10_240);

/** Strings that have broken parsers, filters and paths somewhere: sent as path and query values. */
export const HOSTILE_STRINGS: Record<string, string> = {
  // Valid-looking, so it reaches the database: the command listener must see it there as a plain value.
  marker: `${FUZZ_MARKER}-value`,
  empty: "",
  space: " ",
  "op-json-ne-null": '{"$ne": null}',
  "op-json-gt": `{"$gt": "${FUZZ_MARKER}"}`,
  where: `$where: function() { return true }`,
  dollar: "$ne",
  "sql-drop": "'; DROP TABLE devices; --",
  "path-traversal": "../../etc/passwd",
  "percent-00": "%00",
  nul: "a\u0000b",
  unicode: "zoné-温度-😀-\u202e",
  "proto-key": "__proto__",
  constructor: "constructor",
  "10kB": TEN_KB,
  NaN: "NaN",
  Infinity: "Infinity",
  "-Infinity": "-Infinity",
  negative: "-1",
  zero: "0",
  float: "1.5",
  huge: "99999999999999999999999",
  "1e400": "1e400",
  hex: "0x10",
  true: "true",
  null: "null",
  array: "[1,2]",
  object: "{}",
  "iso-garbage": "2024-13-45T99:99:99Z",
};

/** JSON values put in place of each body field. */
export const HOSTILE_JSON: Record<string, unknown> = {
  "number-as-string": "1",
  number: 1,
  negative: -1,
  huge: 1e308,
  float: 1.5,
  true: true,
  null: null,
  "empty-string": "",
  "10kB": TEN_KB,
  "empty-array": [],
  array: [1, "a"],
  "empty-object": {},
  "op-ne-null": { $ne: null },
  "op-gt": { $gt: FUZZ_MARKER },
  "op-where": { $where: FUZZ_MARKER },
  "op-regex": { $regex: FUZZ_MARKER },
  "op-in-array": [{ $ne: FUZZ_MARKER }],
  "proto-object": JSON.parse('{"__proto__": {"polluted": "fuzzop"}}') as unknown,
  "constructor-object": { constructor: { prototype: { polluted: FUZZ_MARKER } } },
  "NaN-string": "NaN",
  "Infinity-string": "Infinity",
};

/** Whole request bodies that are not what the route reads: raw text with its content type. */
export function rawBodies(valid: string): Record<string, { contentType?: string; body: string }> {
  return {
    malformed: { contentType: "application/json", body: '{"comment": "x",' },
    "single-quotes": { contentType: "application/json", body: "{'comment': 'x'}" },
    "NaN-literal": { contentType: "application/json", body: '{"durationMs": NaN}' },
    "not-an-object-array": { contentType: "application/json", body: "[1,2,3]" },
    "not-an-object-string": { contentType: "application/json", body: '"x"' },
    "not-an-object-number": { contentType: "application/json", body: "42" },
    "json-null": { contentType: "application/json", body: "null" },
    empty: { contentType: "application/json", body: "" },
    "proto-keys": { contentType: "application/json", body: `{"__proto__": {"polluted": "${FUZZ_MARKER}"}, "constructor": {"prototype": {"polluted": "${FUZZ_MARKER}"}}}` },
    "operator-keys": { contentType: "application/json", body: `{"$where": "${FUZZ_MARKER}", "$or": [{"_id": {"$ne": "${FUZZ_MARKER}"}}]}` },
    "deep-nesting": { contentType: "application/json", body: `${'{"a":'.repeat(5_000)}1${"}".repeat(5_000)}` },
    // Over the gateway's 64 kB JSON limit.
    oversized: { contentType: "application/json", body: JSON.stringify({ comment: "x".repeat(70_000) }) },
    "text-plain": { contentType: "text/plain", body: valid },
    "form-urlencoded": { contentType: "application/x-www-form-urlencoded", body: `ids[$ne]=${FUZZ_MARKER}&comment=x` },
    xml: { contentType: "application/xml", body: "<comment>x</comment>" },
    multipart: { contentType: "multipart/form-data; boundary=b", body: '--b\r\nContent-Disposition: form-data; name="comment"\r\n\r\nx\r\n--b--\r\n' },
    "no-content-type": { body: valid },
    "json-utf16-charset": { contentType: "application/json; charset=utf-16", body: valid },
  };
}

/** Query-string tricks that turn a scalar parameter into an object, an array or two values. */
export function smuggledQueries(name: string, valid: string): Record<string, string> {
  const v = encodeURIComponent(valid);
  return {
    [`${name}[$ne]`]: `${name}[$ne]=${FUZZ_MARKER}`,
    [`${name}[$gt]`]: `${name}[$gt]=`,
    [`${name}[$regex]`]: `${name}[$regex]=${FUZZ_MARKER}.*`,
    [`${name}[$where]`]: `${name}[$where]=${FUZZ_MARKER}`,
    [`${name}[]`]: `${name}[]=${v}&${name}[]=${FUZZ_MARKER}`,
    [`${name}-duplicated`]: `${name}=${v}&${name}=${v}`,
    [`${name}[__proto__]`]: `${name}[__proto__][polluted]=${FUZZ_MARKER}`,
  };
}

/** Parameters added to every operation: they smuggle operators into the names routes commonly read. */
const EXTRA_QUERY_NAMES = ["id", "device", "_id", "__proto__", "constructor"];

/** A value the schema accepts, so one field at a time can be made wrong. */
export function exampleValue(schema: JsonSchema, realId?: string): unknown {
  if (realId !== undefined) return realId;
  if (schema.enum && schema.enum.length > 0) return schema.enum[0];
  if (schema.anyOf && schema.anyOf.length > 0) return exampleValue(schema.anyOf[0]);
  switch (schema.type) {
    case "integer":
    case "number": {
      const min = schema.minimum ?? 1;
      const value = schema.exclusiveMinimum ? min + 1 : Math.max(min, 1);
      return schema.maximum === undefined ? value : Math.min(value, schema.maximum);
    }
    case "boolean":
      return true;
    case "array":
      return [exampleValue(schema.items ?? { type: "string" })];
    case "object":
      return Object.fromEntries((schema.required ?? []).map((name) => [name, exampleValue(schema.properties?.[name] ?? {})]));
    default: {
      if (schema.pattern === undefined) return "fuzz";
      const re = new RegExp(schema.pattern);
      return ["fuzz-1", "t:0:0", "a"].find((s) => re.test(s)) ?? "a";
    }
  }
}

function queryValue(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function buildQuery(values: Record<string, unknown>): string {
  return Object.entries(values)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(queryValue(v))}`)
    .join("&");
}

function boundaries(schema: JsonSchema): Record<string, string> {
  const out: Record<string, string> = {};
  if (schema.type !== "integer" && schema.type !== "number") return out;
  if (schema.minimum !== undefined) out["below-minimum"] = String(schema.minimum - 1);
  if (schema.maximum !== undefined) out["above-maximum"] = String(schema.maximum + 1);
  out["2^53+1"] = "9007199254740993";
  out["-0"] = "-0";
  out["exponent"] = "1e3";
  return out;
}

/** Every case for one operation. */
function operationCases(method: string, path: string, op: Operation, opts: GenerateOptions, rng: number): FuzzCase[] {
  const operation = `${method.toUpperCase()} ${path}`;
  const resource = path.split("/")[2] ?? "";
  const params = op.parameters ?? [];
  const pathParams = params.filter((p) => p.in === "path");
  const queryParams = params.filter((p) => p.in === "query");
  const bodySchema = op.requestBody?.content["application/json"]?.schema;
  const realId = opts.realIds[resource]?.[0];
  const validPath = Object.fromEntries(pathParams.map((p) => [p.name, String(exampleValue(p.schema, realId))]));
  const requiredQuery = Object.fromEntries(queryParams.filter((p) => p.required).map((p) => [p.name, exampleValue(p.schema)]));
  const allQuery = Object.fromEntries(queryParams.map((p) => [p.name, exampleValue(p.schema)]));
  const validBody = bodySchema ? (exampleValue(bodySchema) as Record<string, unknown>) : undefined;
  const validBodyText = validBody === undefined ? undefined : JSON.stringify(validBody);

  const cases: FuzzCase[] = [];
  const add = (label: string, p: { path?: Record<string, string>; query?: string; body?: string; contentType?: string | null }) => {
    const pathValues = p.path ?? validPath;
    const url = path.replace(/\{([^}]+)\}/g, (_, name: string) => encodeURIComponent(pathValues[name] ?? ""));
    const query = p.query ?? buildQuery(requiredQuery);
    const body = p.body ?? validBodyText;
    const contentType = p.contentType === undefined ? (body === undefined ? undefined : "application/json") : p.contentType;
    cases.push({
      operation,
      label,
      method: method.toUpperCase(),
      url: query === "" ? url : `${url}?${query}`,
      headers: contentType ? { "Content-Type": contentType } : {},
      ...(body === undefined ? {} : { body }),
      ...(pathParams.length > 0 ? { pathId: pathValues[pathParams[0].name] } : {}),
    });
  };
  const withQuery = (name: string, raw: string) => buildQuery(Object.fromEntries(Object.entries(requiredQuery).filter(([k]) => k !== name))) + (Object.keys(requiredQuery).some((k) => k !== name) ? "&" : "") + raw;

  add("valid-required-only", {});
  add("valid-all-params", { query: buildQuery(allQuery) });

  // Path ids: real, unknown, hostile.
  for (const p of pathParams) {
    for (const [label, value] of Object.entries(HOSTILE_STRINGS)) add(`path:${p.name}=${label}`, { path: { ...validPath, [p.name]: value } });
  }

  // Query parameters: each missing, each wrong, each smuggled.
  for (const p of queryParams) {
    if (p.required) add(`missing:${p.name}`, { query: buildQuery(Object.fromEntries(Object.entries(requiredQuery).filter(([k]) => k !== p.name))) });
    const values = { ...HOSTILE_STRINGS, ...boundaries(p.schema) };
    for (const [label, value] of Object.entries(values)) add(`query:${p.name}=${label}`, { query: withQuery(p.name, `${encodeURIComponent(p.name)}=${encodeURIComponent(value)}`) });
    for (const [label, raw] of Object.entries(smuggledQueries(p.name, queryValue(exampleValue(p.schema))))) add(`smuggle:${label}`, { query: withQuery(p.name, raw) });
  }
  for (const name of EXTRA_QUERY_NAMES.filter((n) => !queryParams.some((p: Parameter) => p.name === n))) {
    for (const [label, raw] of Object.entries(smuggledQueries(name, "x"))) add(`smuggle-extra:${label}`, { query: withQuery(name, raw) });
  }

  // Bodies: each field missing or wrong, then whole bodies of the wrong kind.
  if (bodySchema && validBody && validBodyText) {
    add("missing:body", { body: "", contentType: null });
    for (const name of bodySchema.required ?? []) {
      const { [name]: _, ...rest } = validBody;
      add(`missing:body.${name}`, { body: JSON.stringify(rest) });
    }
    for (const name of Object.keys(bodySchema.properties ?? {})) {
      for (const [label, value] of Object.entries(HOSTILE_JSON)) add(`body:${name}=${label}`, { body: JSON.stringify({ ...validBody, [name]: value }) });
      // Query parameters override the body's in moleculer-web's merge: an operator could come that way.
      add(`smuggle-body-via-query:${name}[$ne]`, { query: `${encodeURIComponent(name)}[$ne]=${FUZZ_MARKER}` });
    }
    for (const [label, raw] of Object.entries(rawBodies(validBodyText))) add(`body-raw:${label}`, { body: raw.body, contentType: raw.contentType ?? null });
  }

  // Generated: arbitrary strings and JSON values in a random place.
  const targets = [...pathParams.map((p) => ({ where: "path", name: p.name })), ...queryParams.map((p) => ({ where: "query", name: p.name })), ...Object.keys(bodySchema?.properties ?? {}).map((name) => ({ where: "body", name }))];
  if (targets.length > 0) {
    const arbitrary = fc.record({
      target: fc.constantFrom(...targets),
      value: fc.oneof(fc.string({ unit: "binary", maxLength: 80 }), fc.jsonValue({ maxDepth: 3 }), fc.double().map(String), fc.bigInt().map(String)),
    });
    const samples = fc.sample(arbitrary, { seed: opts.seed + rng, numRuns: opts.randomPerOperation });
    samples.forEach(({ target, value }, i) => {
      const label = `generated#${i}:${target.where}.${target.name}`;
      if (target.where === "path") add(label, { path: { ...validPath, [target.name]: queryValue(value) } });
      else if (target.where === "query") add(label, { query: withQuery(target.name, `${encodeURIComponent(target.name)}=${encodeURIComponent(queryValue(value))}`) });
      else add(label, { body: JSON.stringify({ ...validBody, [target.name]: value }) });
    });
  }
  return cases;
}

/** The cases of every operation of the document, in document order. */
export function generateCases(doc: OpenApiDocument, opts: GenerateOptions): FuzzCase[] {
  const cases: FuzzCase[] = [];
  let index = 0;
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) cases.push(...operationCases(method, path, op, opts, index++));
  }
  return cases;
}

/** A stack frame, a source location or an internal path in a response body. */
const STACK_TRACE = /\n\s+at \S|\bat [\w.<>$]+ \([^)]*:\d+:\d+\)|node:internal|node_modules\/|\.[cm]?[jt]s:\d+:\d+/;

/** The media types an operation documents for its success responses (JSON when it names none). */
export function successContentTypes(op: Operation): string[] {
  const types = Object.entries(op.responses)
    .filter(([status]) => status.startsWith("2"))
    .flatMap(([, response]) => ("content" in response && response.content ? Object.keys(response.content) : []));
  return types.length > 0 ? types : ["application/json"];
}

/**
 * What is wrong with an answer to a fuzz case, or null: never a 5xx; every 4xx is the JSON error
 * shape `{error: {type, message}}`; a success has a documented content type; no stack trace.
 */
export function responseProblem(answer: { status: number; contentType: string; text: string }, successTypes: string[]): string | null {
  const { status, contentType, text } = answer;
  const mediaType = contentType.split(";")[0].trim().toLowerCase();
  if (STACK_TRACE.test(text)) return `leaks a stack trace or source path (${status})`;
  if (status >= 500) return `answers ${status}`;
  if (status >= 400) {
    if (mediaType !== "application/json") return `${status} with content type "${contentType}"`;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return `${status} with a body that is not JSON`;
    }
    const error = (body as { error?: { type?: unknown; message?: unknown } } | null)?.error;
    if (typeof error?.type !== "string" || typeof error.message !== "string") return `${status} without {error: {type, message}}`;
    return null;
  }
  if (status >= 200 && status < 300 && !successTypes.includes(mediaType)) return `${status} with content type "${contentType}", documented ${successTypes.join(", ")}`;
  return null;
}
