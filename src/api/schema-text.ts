// Plain-text descriptions of the OpenAPI document's schemas, shared by the docs page and the
// generated Markdown reference.
import type { JsonSchema, OpenApiDocument, Operation, Parameter } from "./openapi.ts";

/** A one-line description of a schema: type and constraints, e.g. "integer, 1..1000". */
export function schemaSummary(schema: JsonSchema): string {
  if (schema.$ref) return schema.$ref.split("/").pop() ?? schema.$ref;
  if (schema.anyOf) return schema.anyOf.map(part).join(" or ");
  const parts: string[] = [];
  if (schema.enum) parts.push(`one of ${schema.enum.map((v) => JSON.stringify(v)).join(", ")}`);
  else if (schema.type === "array") parts.push(`array of ${schema.items ? part(schema.items) : "any"}`);
  else if (schema.type === "object" && schema.additionalProperties && typeof schema.additionalProperties === "object") parts.push(`map of name → ${schema.additionalProperties.properties ? "object" : part(schema.additionalProperties)}`);
  else parts.push(schema.type ?? "any");
  if (schema.format) parts.push(schema.format);
  if (schema.pattern) parts.push(`pattern \`${schema.pattern}\``);
  if (schema.minLength !== undefined || schema.maxLength !== undefined) parts.push(`${schema.minLength ?? 0}..${schema.maxLength ?? "∞"} chars`);
  if (schema.minimum !== undefined || schema.maximum !== undefined) {
    const low = schema.minimum === undefined ? "" : `${schema.minimum}${schema.exclusiveMinimum ? " (excl.)" : ""}`;
    const high = schema.maximum === undefined ? "" : `${schema.maximum}${schema.exclusiveMaximum ? " (excl.)" : ""}`;
    parts.push(`${low}..${high}`);
  }
  if (schema.minItems !== undefined || schema.maxItems !== undefined) parts.push(`${schema.minItems ?? 0}..${schema.maxItems ?? "∞"} items`);
  if (schema.nullable) parts.push("or null");
  if (schema.default !== undefined) parts.push(`default ${JSON.stringify(schema.default)}`);
  return parts.join(", ");
}

/** A nested summary, parenthesized when it has constraints of its own. */
function part(schema: JsonSchema): string {
  const text = schemaSummary(schema);
  return text.includes(",") ? `(${text})` : text;
}

export interface FieldRow {
  name: string;
  /** Where a parameter goes: path or query. */
  location?: string;
  required: boolean;
  type: string;
  description: string;
}

/** An object schema's fields, nested ones with dotted names (`tags.{name}.hi`), depth-first. */
export function flattenFields(schema: JsonSchema, prefix = "", depth = 0): FieldRow[] {
  const rows: FieldRow[] = [];
  const required = new Set(schema.required ?? []);
  for (const [name, field] of Object.entries(schema.properties ?? {})) {
    const path = `${prefix}${name}`;
    rows.push({ name: path, required: required.has(name), type: schemaSummary(field), description: field.description ?? "" });
    if (depth < 4) rows.push(...nestedFields(field, path, depth));
  }
  return rows;
}

function nestedFields(field: JsonSchema, path: string, depth: number): FieldRow[] {
  if (field.properties) return flattenFields(field, `${path}.`, depth + 1);
  if (field.additionalProperties && typeof field.additionalProperties === "object" && field.additionalProperties.properties) {
    return flattenFields(field.additionalProperties, `${path}.{name}.`, depth + 1);
  }
  if (field.items?.properties) return flattenFields(field.items, `${path}[].`, depth + 1);
  return [];
}

export function parameterRows(parameters: Parameter[] = []): FieldRow[] {
  return parameters.map((p) => ({ name: p.name, location: p.in, required: p.required, type: schemaSummary(p.schema), description: p.description ?? "" }));
}

export interface OperationEntry {
  method: string;
  path: string;
  operation: Operation;
}

/** Operations grouped by tag (service), tags and paths in the document's order. */
export function operationsByTag(doc: OpenApiDocument): { tag: string; operations: OperationEntry[] }[] {
  return doc.tags.map(({ name }) => ({
    tag: name,
    operations: Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods)
        .filter(([, operation]) => operation.tags.includes(name))
        .map(([method, operation]) => ({ method: method.toUpperCase(), path, operation })),
    ),
  }));
}

/** A response's description, following `#/components/responses/...` references. */
export function responseRows(doc: OpenApiDocument, operation: Operation): { status: string; description: string; mediaType: string }[] {
  return Object.entries(operation.responses).map(([status, response]) => {
    const resolved = "$ref" in response ? doc.components.responses[response.$ref.split("/").pop() ?? ""] : response;
    const mediaType = Object.keys(resolved?.content ?? {})[0] ?? "";
    return { status, description: resolved?.description ?? "", mediaType };
  });
}
