// docs/api-reference.md, rendered from the OpenAPI document (`npm run docs:api`).
import type { OpenApiDocument } from "./openapi.ts";
import { flattenFields, operationsByTag, parameterRows, responseRows, type FieldRow } from "./schema-text.ts";

function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

function fieldTable(rows: FieldRow[]): string[] {
  return ["| name | required | type and constraints | description |", "|---|---|---|---|", ...rows.map((r) => `| \`${cell(r.name)}\`${r.location ? ` (${r.location})` : ""} | ${r.required ? "yes" : "no"} | ${cell(r.type)} | ${cell(r.description)} |`)];
}

/** The reference as Markdown: one section per service, one entry per route. Deterministic. */
export function renderReferenceMarkdown(doc: OpenApiDocument): string {
  const lines: string[] = [
    "# REST API reference",
    "",
    "<!-- Generated from the OpenAPI document by `npm run docs:api` (scripts/api-reference.ts); do not edit. -->",
    "",
    `${doc.info.title} ${doc.info.version}. The same document is served at \`GET /api/openapi.json\`, and as a page at \`GET /api/docs\`. A guide with curl examples: [api.md](api.md).`,
    "",
    doc.info.description,
    "",
  ];
  const groups = operationsByTag(doc);
  lines.push("| service | routes |", "|---|---|");
  for (const { tag, operations } of groups) lines.push(`| [${tag}](#${tag.toLowerCase().replace(/[^a-z0-9-]/g, "")}) | ${operations.map((o) => `\`${o.method} ${o.path}\``).join(", ")} |`);
  lines.push("");
  for (const { tag, operations } of groups) {
    lines.push(`## ${tag}`, "");
    for (const { method, path, operation } of operations) {
      lines.push(`### \`${method} ${path}\``, "", operation.summary === operation.operationId ? `\`${operation.operationId}\`` : `${operation.summary} (\`${operation.operationId}\`)`, "");
      if (operation.description) lines.push(operation.description, "");
      const role = operation["x-required-role"];
      if (role) lines.push(role === "public" ? "Public: no credentials needed." : `Needs the role \`${role}\` or higher.`, "");
      const parameters = parameterRows(operation.parameters);
      if (parameters.length > 0) lines.push("Parameters:", "", ...fieldTable(parameters), "");
      const body = operation.requestBody?.content["application/json"]?.schema;
      if (body) lines.push(`JSON body${operation.requestBody?.required ? "" : " (optional)"}:`, "", ...fieldTable(flattenFields(body)), "");
      lines.push("| status | answer |", "|---|---|");
      for (const r of responseRows(doc, operation)) lines.push(`| ${r.status} | ${cell(r.description)}${r.mediaType ? ` (\`${r.mediaType}\`)` : ""} |`);
      lines.push("");
    }
  }
  lines.push("## Errors", "", "Every error answer has this body:", "", "```json", JSON.stringify({ error: { type: "INVALID_PARAMETER", message: "…", fields: ["…"] } }), "```", "");
  return lines.join("\n");
}
