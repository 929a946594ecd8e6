// The OpenAPI 3.0 document of the REST gateway, built from what the services declare: each
// action's `rest` route, its validator `params` and its `openapi` description. The gateway's
// route table is computed the way moleculer-web's autoAliases computes it, so the document and
// the served routes cannot drift apart (test/integration/openapi.spec.ts compares them).
import { readFileSync } from "node:fs";
import { isRouteRole, type RouteRole } from "../auth/roles.ts";

/**
 * What an action says about itself in the document, beside `rest`:
 * `openapi: { summary: "…", description: "…" } satisfies OpenApiActionInfo`.
 * Without it the action's name is the summary.
 */
export interface OpenApiActionInfo {
  summary: string;
  description?: string;
  /** The success status when it is not 200 (e.g. 202 for an accepted command). */
  status?: number;
  /** The success body's media type when it is not JSON (e.g. "text/csv"). */
  contentType?: string;
}

/** An action as the registry (or a created service's schema) describes it. */
export interface ActionDescription {
  name: string;
  rest?: unknown;
  params?: Record<string, unknown>;
  openapi?: OpenApiActionInfo;
  /** The lowest role the route needs (src/auth/roles.ts); the gateway refuses an action without one. */
  role?: unknown;
  visibility?: string;
}

export interface ServiceDescription {
  name: string;
  fullName?: string;
  settings?: { rest?: unknown; routes?: GatewayRoute[] } | null;
  actions?: Record<string, ActionDescription>;
}

/** The parts of a moleculer-web route the document needs. */
export interface GatewayRoute {
  path?: string;
  autoAliases?: boolean;
  aliases?: Record<string, unknown>;
}

/** One route the gateway serves: an action, or an alias with its own handler (`operation` describes it). */
export interface RestRoute {
  method: string;
  /** Full path in moleculer-web's form, e.g. `/api/devices/:id`. */
  path: string;
  service: string;
  action?: ActionDescription;
}

export interface JsonSchema {
  type?: "string" | "number" | "integer" | "boolean" | "array" | "object";
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  enum?: unknown[];
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  anyOf?: JsonSchema[];
  nullable?: boolean;
  default?: unknown;
  description?: string;
  $ref?: string;
}

export interface Parameter {
  name: string;
  in: "path" | "query";
  required: boolean;
  description?: string;
  schema: JsonSchema;
}

export interface Operation {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  parameters?: Parameter[];
  requestBody?: { required: boolean; content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: JsonSchema }> } | { $ref: string }>;
  /** Which credentials the operation takes; `[]` for a public one. */
  security?: Record<string, string[]>[];
  /** The lowest role that may call it, or "public" (docs/security.md, "Authentication and roles"). */
  "x-required-role"?: RouteRole | "undeclared";
}

export interface OpenApiDocument {
  openapi: "3.0.3";
  info: { title: string; version: string; description: string };
  tags: { name: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: {
    schemas: Record<string, JsonSchema>;
    responses: Record<string, { description: string; content: Record<string, { schema: JsonSchema }> }>;
    securitySchemes?: Record<string, Record<string, string>>;
  };
}

export const HTTP_METHODS = ["get", "post", "put", "patch", "delete"] as const;

/** Roles of the aliases that are handlers rather than actions, keyed by "METHOD /full/path". */
export const GATEWAY_ROLES: Record<string, RouteRole> = { "GET /api/stream": "viewer" };

/** Operations of aliases that are handlers rather than actions, keyed by "METHOD /full/path". */
export const GATEWAY_OPERATIONS: Record<string, Omit<Operation, "operationId" | "tags">> = {
  "GET /api/stream": {
    summary: "Live values and alarm transitions (Server-Sent Events)",
    description:
      "A snapshot of the latest values of the matching devices first, then their live telemetry and alarm records, as `text/event-stream`. See docs/api.md, \"Live stream\".",
    parameters: [
      { name: "filter", in: "query", required: true, description: "Unified-namespace topic filters (`plant1/+/line2/#`, URL-encoded); repeated or comma-separated.", schema: { type: "string" } },
      { name: "kinds", in: "query", required: false, description: "Comma-separated `telemetry`, `alarms`; both by default.", schema: { type: "string" } },
      {
        name: "access_token",
        in: "query",
        required: false,
        description: "The bearer token, for clients that cannot send headers (EventSource); accepted on this route only.",
        schema: { type: "string" },
      },
    ],
    responses: {
      "200": { description: "The event stream", content: { "text/event-stream": { schema: { type: "string" } } } },
      "400": { $ref: "#/components/responses/BadRequest" },
      "503": { $ref: "#/components/responses/Unavailable" },
    },
  },
};

const ERROR_SCHEMA: JsonSchema = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["type", "message"],
      properties: {
        type: { type: "string", description: "e.g. INVALID_PARAMETER, DEVICE_NOT_FOUND, NOT_FOUND" },
        message: { type: "string", description: "What is wrong, naming the field" },
        fields: { type: "array", items: { type: "string" }, description: "The parameters at fault (400 only)" },
      },
    },
  },
};

function errorResponse(description: string) {
  return { description, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } };
}

// ---- fastest-validator rules → JSON Schema ----

/** Parses the shorthand `"number|integer|min:1|optional"` into a rule object. */
function parseShorthand(rule: string): Record<string, unknown> {
  const [type, ...flags] = rule.split("|").map((s) => s.trim());
  const parsed: Record<string, unknown> = { type };
  for (const flag of flags) {
    const [key, value] = flag.split(":");
    if (value === undefined) parsed[key] = true;
    else parsed[key] = value === "true" ? true : value === "false" ? false : Number.isNaN(Number(value)) ? value : Number(value);
  }
  return parsed;
}

function normalizeRule(rule: unknown): Record<string, unknown> {
  if (typeof rule === "string") return parseShorthand(rule);
  if (Array.isArray(rule)) return { type: "multi", rules: rule };
  if (rule && typeof rule === "object") return rule as Record<string, unknown>;
  return { type: "any" };
}

function patternSource(pattern: unknown): string | undefined {
  if (pattern instanceof RegExp) return pattern.source;
  // Over the transporter a RegExp arrives as `{}`: nothing left to describe.
  return typeof pattern === "string" ? pattern : undefined;
}

const num = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined);

/** Whether a rule lets the field be left out. */
export function isOptional(rule: unknown): boolean {
  const r = normalizeRule(rule);
  return r.optional === true || r.default !== undefined;
}

/** A fastest-validator rule as an OpenAPI 3.0 Schema Object (the constraints a client can see). */
export function ruleToSchema(rule: unknown): JsonSchema {
  const r = normalizeRule(rule);
  const schema: JsonSchema = {};
  switch (r.type) {
    case "string":
    case "email":
    case "url":
    case "uuid":
    case "date":
    case "objectID":
    case "mac":
    case "luhn":
    case "currency": {
      schema.type = "string";
      const format = { email: "email", url: "uri", uuid: "uuid", date: "date-time" }[r.type as string];
      if (format) schema.format = format;
      const pattern = patternSource(r.pattern);
      if (pattern !== undefined) schema.pattern = pattern;
      if (num(r.length) !== undefined) schema.minLength = schema.maxLength = num(r.length);
      if (num(r.min) !== undefined) schema.minLength = num(r.min);
      if (num(r.max) !== undefined) schema.maxLength = num(r.max);
      if (Array.isArray(r.enum)) schema.enum = [...r.enum];
      break;
    }
    case "number": {
      schema.type = r.integer ? "integer" : "number";
      if (num(r.min) !== undefined) schema.minimum = num(r.min);
      if (num(r.max) !== undefined) schema.maximum = num(r.max);
      if (r.positive) Object.assign(schema, { minimum: 0, exclusiveMinimum: true });
      if (r.negative) Object.assign(schema, { maximum: 0, exclusiveMaximum: true });
      if (num(r.equal) !== undefined) schema.enum = [r.equal];
      break;
    }
    case "boolean":
      schema.type = "boolean";
      break;
    case "enum": {
      const values = Array.isArray(r.values) ? [...r.values] : [];
      if (values.length > 0 && values.every((v) => typeof v === "string")) schema.type = "string";
      else if (values.length > 0 && values.every((v) => typeof v === "number")) schema.type = "number";
      schema.enum = values;
      break;
    }
    case "equal":
      schema.enum = [r.value];
      break;
    case "array":
    case "tuple": {
      schema.type = "array";
      if (r.items !== undefined) schema.items = ruleToSchema(r.items);
      if (num(r.length) !== undefined) schema.minItems = schema.maxItems = num(r.length);
      if (num(r.min) !== undefined) schema.minItems = num(r.min);
      if (num(r.max) !== undefined) schema.maxItems = num(r.max);
      if (r.unique) schema.uniqueItems = true;
      break;
    }
    case "object": {
      schema.type = "object";
      const props = (r.props ?? r.properties) as Record<string, unknown> | undefined;
      if (props) Object.assign(schema, objectSchema(props));
      if (props && r.strict === true) schema.additionalProperties = false;
      break;
    }
    case "record":
      schema.type = "object";
      schema.additionalProperties = r.value === undefined ? true : ruleToSchema(r.value);
      break;
    case "multi":
      schema.anyOf = (Array.isArray(r.rules) ? r.rules : []).map(ruleToSchema);
      break;
    default:
      // any, custom, class, function: no constraint a schema can state.
      break;
  }
  if (r.nullable === true) schema.nullable = true;
  if (r.default !== undefined && typeof r.default !== "function") schema.default = r.default;
  return schema;
}

/** The properties of an object rule (or of an action's params), with the required ones. */
export function objectSchema(props: Record<string, unknown>): { properties: Record<string, JsonSchema>; required?: string[] } {
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const [name, rule] of Object.entries(props)) {
    if (name.startsWith("$$") || normalizeRule(rule).type === "forbidden") continue;
    properties[name] = ruleToSchema(rule);
    if (!isOptional(rule)) required.push(name);
  }
  return required.length > 0 ? { properties, required } : { properties };
}

// ---- the gateway's routes ----

function trimSlashes(s: string): string {
  return s.replace(/^\/+|\/+$/g, "");
}

function joinPath(...parts: string[]): string {
  const joined = parts.map(trimSlashes).filter((p) => p !== "").join("/");
  return `/${joined}`.replace(/\/{2,}/g, "/");
}

/**
 * The routes a moleculer-web route with `autoAliases` serves, from the services' actions (as
 * moleculer-web's regenerateAutoAliases derives them), plus the route's explicit aliases.
 */
export function restRoutes(services: ServiceDescription[], route: GatewayRoute): RestRoute[] {
  const routePath = route.path ?? "";
  const routes: RestRoute[] = [];
  for (const [key, target] of Object.entries(route.aliases ?? {})) {
    const [method, path] = key.includes(" ") ? key.split(/\s+/) : ["*", key];
    const actionName = typeof target === "string" ? target : undefined;
    const owner = actionName ? services.find((s) => s.actions?.[actionName]) : undefined;
    routes.push({ method: method.toUpperCase(), path: joinPath(routePath, path), service: owner?.name ?? "gateway", action: owner?.actions?.[actionName as string] });
  }
  if (!route.autoAliases) return routes;
  const seen = new Set<string>();
  for (const service of services) {
    if (!service.settings) continue;
    const fullName = service.fullName ?? service.name;
    if (seen.has(fullName)) continue;
    seen.add(fullName);
    const rest = service.settings.rest;
    const bases = typeof rest === "string" ? [rest] : Array.isArray(rest) ? rest : [fullName.replace(/\./g, "/")];
    for (const base of bases) {
      const basePath = typeof base === "string" ? base : fullName.replace(/\./g, "/");
      for (const [rawName, action] of Object.entries(service.actions ?? {})) {
        if (!action?.rest || (action.visibility != null && action.visibility !== "published")) continue;
        for (const rule of Array.isArray(action.rest) ? action.rest : [action.rest]) {
          let method = "*";
          let path: string;
          if (typeof rule === "string") {
            if (rule.includes(" ")) [method, path] = rule.split(/\s+/);
            else path = rule;
            path = joinPath(routePath, basePath, path);
          } else if (rule && typeof rule === "object") {
            const r = rule as { method?: string; path?: string; basePath?: string };
            method = r.method ?? "*";
            path = joinPath(routePath, r.basePath ?? basePath, r.path ?? rawName.split(".").pop() ?? rawName);
          } else continue;
          routes.push({ method: method.toUpperCase(), path, service: service.name, action });
        }
      }
    }
  }
  return routes;
}

/** `/api/devices/:id` → `/api/devices/{id}`. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)\??/g, "{$1}");
}

function pathParamNames(path: string): string[] {
  return [...path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]);
}

function actionOperation(route: RestRoute, action: ActionDescription, method: string): Operation {
  const info = action.openapi;
  const params = action.params ?? {};
  const inPath = new Set(pathParamNames(route.path));
  const parameters: Parameter[] = [...inPath].map((name) => ({ name, in: "path" as const, required: true, schema: params[name] === undefined ? { type: "string" } : ruleToSchema(params[name]) }));
  const rest = Object.fromEntries(Object.entries(params).filter(([name]) => !inPath.has(name)));
  const operation: Operation = { operationId: action.name, summary: info?.summary ?? action.name, tags: [route.service], responses: {} };
  if (info?.description) operation.description = info.description;
  const hasBody = method === "post" || method === "put" || method === "patch";
  if (hasBody) {
    const body = objectSchema(rest);
    if (Object.keys(body.properties).length > 0) {
      operation.requestBody = { required: (body.required?.length ?? 0) > 0, content: { "application/json": { schema: { type: "object", ...body } } } };
    }
  } else {
    for (const [name, rule] of Object.entries(rest)) {
      if (name.startsWith("$$") || normalizeRule(rule).type === "forbidden") continue;
      parameters.push({ name, in: "query", required: !isOptional(rule), schema: ruleToSchema(rule) });
    }
  }
  if (parameters.length > 0) operation.parameters = parameters;
  const status = String(info?.status ?? 200);
  operation.responses[status] = { description: status === "202" ? "Accepted" : "OK", content: { [info?.contentType ?? "application/json"]: { schema: {} } } };
  if (parameters.length > 0 || operation.requestBody) operation.responses["400"] = { $ref: "#/components/responses/BadRequest" };
  if (inPath.size > 0) operation.responses["404"] = { $ref: "#/components/responses/NotFound" };
  operation.responses["503"] = { $ref: "#/components/responses/Unavailable" };
  return operation;
}

/** Declares the operation's role, credentials and the answers authentication adds. */
function secure(operation: Operation, role: unknown): void {
  operation["x-required-role"] = isRouteRole(role) ? role : "undeclared";
  operation.responses["429"] = { $ref: "#/components/responses/TooManyRequests" };
  if (role === "public") {
    operation.security = [];
    return;
  }
  operation.security = [{ bearer: [] }, { apiKey: [] }];
  operation.responses["401"] = { $ref: "#/components/responses/Unauthorized" };
  operation.responses["403"] = { $ref: "#/components/responses/Forbidden" };
}

/** The package's version, as the document's `info.version`. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

/** The OpenAPI 3.0 document of the given routes; deterministic (paths, methods and tags sorted). */
export function buildOpenApiDocument(routes: RestRoute[], version: string): OpenApiDocument {
  const paths: Record<string, Record<string, Operation>> = {};
  const operationIds = new Set<string>();
  for (const route of routes) {
    // A method-less route ("*") answers every method; it is documented as GET.
    const method = route.method === "*" ? "get" : route.method.toLowerCase();
    const path = openApiPath(route.path);
    let operation: Operation;
    if (route.action) operation = actionOperation(route, route.action, method);
    else {
      const known = GATEWAY_OPERATIONS[`${method.toUpperCase()} ${route.path}`];
      const base = known ?? { summary: `${method.toUpperCase()} ${path}`, responses: { "200": { description: "OK" } } };
      operation = { operationId: `gateway.${method}${route.path.replace(/[^A-Za-z0-9]+/g, "_")}`, tags: [route.service], ...base, responses: { ...base.responses } };
    }
    secure(operation, route.action ? route.action.role : GATEWAY_ROLES[`${method.toUpperCase()} ${route.path}`]);
    // An action served on two routes gets one id per route.
    let id = operation.operationId;
    for (let n = 2; operationIds.has(id); n++) id = `${operation.operationId}_${n}`;
    operationIds.add(id);
    operation.operationId = id;
    (paths[path] ??= {})[method] = operation;
  }
  const sortedPaths: Record<string, Record<string, Operation>> = {};
  for (const path of Object.keys(paths).sort()) {
    sortedPaths[path] = Object.fromEntries(HTTP_METHODS.filter((m) => paths[path][m]).map((m) => [m, paths[path][m]]));
  }
  const tags = [...new Set(routes.map((r) => r.service))].sort().map((name) => ({ name }));
  return {
    openapi: "3.0.3",
    info: {
      title: "plantwire REST API",
      version,
      description:
        "Devices, values, history, alarms, commands and the live stream of a plantwire system. Every operation but health, this document, the docs page and the login needs credentials: `Authorization: Bearer <token>` from `POST /api/auth/login`, or `X-API-Key: <key>`; each names its lowest role (`x-required-role`: viewer < operator < engineer < admin). Errors are JSON `{\"error\": {\"type\", \"message\", \"fields\"?}}`: 400 for a bad parameter (naming it), 401 for missing or invalid credentials, 403 for too low a role, 404 for an unknown id or route, 429 when a client sent too many requests, 503 when a server or service the request needs is not reachable.",
    },
    tags,
    paths: sortedPaths,
    components: {
      schemas: { Error: ERROR_SCHEMA },
      responses: {
        BadRequest: errorResponse("A parameter is invalid; `fields` names it"),
        NotFound: errorResponse("Unknown id"),
        Unavailable: errorResponse("A server or service the request needs is not reachable"),
        Unauthorized: errorResponse("Credentials missing or invalid (unknown, expired or revoked)"),
        Forbidden: errorResponse("The credentials' role is below the operation's"),
        TooManyRequests: errorResponse("Too many requests from this user, key or address in the rate-limit window"),
      },
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: "A token from POST /api/auth/login" },
        apiKey: { type: "apiKey", in: "header", name: "X-API-Key", description: "An API key from POST /api/auth/keys" },
      },
    },
  };
}

/** A created (not necessarily started) Moleculer service, as far as the document needs it. */
export interface CreatedService {
  name: string;
  fullName?: string;
  settings?: ServiceDescription["settings"];
  schema: { actions?: Record<string, unknown> };
}

/** Describes created services the way the registry describes started ones (for the offline reference). */
export function describeCreatedServices(services: CreatedService[]): ServiceDescription[] {
  return services
    .filter((s) => !s.name.startsWith("$"))
    .map((s) => {
      const fullName = s.fullName ?? s.name;
      const actions: Record<string, ActionDescription> = {};
      for (const [rawName, def] of Object.entries(s.schema.actions ?? {})) {
        if (def === false) continue;
        actions[rawName] = typeof def === "function" ? { name: `${fullName}.${rawName}` } : { ...(def as Omit<ActionDescription, "name">), name: `${fullName}.${rawName}` };
      }
      return { name: s.name, fullName, settings: s.settings, actions };
    });
}
