// Validates an OpenAPI 3.0 document against the official schema vendored in deploy/schema/.
import { readFileSync } from "node:fs";
import { Ajv } from "ajv";

type Json = Record<string, unknown>;

/** The schema is draft-04; ajv speaks draft-07, which differs in `id` and boolean `exclusiveMinimum`. */
function fromDraft04(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(fromDraft04);
  if (!node || typeof node !== "object") return node;
  const out: Json = {};
  for (const [key, value] of Object.entries(node as Json)) {
    if (key === "$schema" || key === "id") continue;
    out[key] = fromDraft04(value);
  }
  if (out.exclusiveMinimum === true && typeof out.minimum === "number") {
    out.exclusiveMinimum = out.minimum;
    delete out.minimum;
  }
  return out;
}

const schema = fromDraft04(JSON.parse(readFileSync(new URL("../../deploy/schema/openapi-3.0.json", import.meta.url), "utf8"))) as Json;
// Formats (uri-reference, email, regex) need ajv-formats, which is not a dependency: not checked.
const validate = new Ajv({ allErrors: true, strict: false, validateFormats: false }).compile(schema);

/** The schema's complaints about a document, one per line; empty when it is valid. */
export function openApiSchemaErrors(doc: unknown): string {
  return validate(doc) ? "" : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`).join("\n");
}
