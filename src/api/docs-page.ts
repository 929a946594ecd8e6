// GET /api/docs: the OpenAPI document as one self-contained HTML page (no scripts, no CDN).
import type { OpenApiDocument } from "./openapi.ts";
import { flattenFields, operationsByTag, parameterRows, responseRows, type FieldRow } from "./schema-text.ts";

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string);
}

/** `code` spans in the document's descriptions, as HTML. */
function inline(text: string): string {
  return escapeHtml(text).replace(/`([^`]+)`/g, "<code>$1</code>");
}

function fieldTable(rows: FieldRow[]): string {
  const body = rows.map((r) => `<tr><td><code>${escapeHtml(r.name)}</code>${r.location ? ` (${r.location})` : ""}</td><td>${r.required ? "yes" : "no"}</td><td>${inline(r.type)}</td><td>${inline(r.description)}</td></tr>`).join("");
  return `<table><thead><tr><th>name</th><th>required</th><th>type and constraints</th><th>description</th></tr></thead><tbody>${body}</tbody></table>`;
}

const STYLE = `body{font:15px/1.5 system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}
h2{border-bottom:1px solid #ccc;margin-top:2em}section.op{border:1px solid #ddd;border-radius:6px;padding:.5em 1em;margin:1em 0}
.m{display:inline-block;min-width:4.5em;font-weight:bold;font-family:monospace}.get{color:#0a6}.post{color:#06c}.patch{color:#a60}.put{color:#a60}.delete{color:#c00}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}code{background:#f4f4f4;padding:0 .2em}`;

/** The page: an index of routes by service, then each route with its parameters, body and answers. */
export function renderDocsPage(doc: OpenApiDocument): string {
  const groups = operationsByTag(doc);
  const anchor = (method: string, path: string) => `${method}-${path}`.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  const index = groups
    .map(({ tag, operations }) => `<li><b>${escapeHtml(tag)}</b>: ${operations.map((o) => `<a href="#${anchor(o.method, o.path)}"><code>${o.method} ${escapeHtml(o.path)}</code></a>`).join(", ")}</li>`)
    .join("");
  const sections = groups
    .map(({ tag, operations }) => {
      const ops = operations
        .map(({ method, path, operation }) => {
          const parameters = parameterRows(operation.parameters);
          const body = operation.requestBody?.content["application/json"]?.schema;
          const responses = responseRows(doc, operation)
            .map((r) => `<tr><td>${r.status}</td><td>${inline(r.description)}</td><td>${escapeHtml(r.mediaType)}</td></tr>`)
            .join("");
          return [
            `<section class="op" id="${anchor(method, path)}">`,
            `<h3><span class="m ${method.toLowerCase()}">${method}</span> <code>${escapeHtml(path)}</code></h3>`,
            `<p>${inline(operation.summary)} <small>(<code>${escapeHtml(operation.operationId)}</code>)</small></p>`,
            operation.description ? `<p>${inline(operation.description)}</p>` : "",
            parameters.length > 0 ? `<h4>Parameters</h4>${fieldTable(parameters)}` : "",
            body ? `<h4>JSON body${operation.requestBody?.required ? "" : " (optional)"}</h4>${fieldTable(flattenFields(body))}` : "",
            `<h4>Answers</h4><table><thead><tr><th>status</th><th>meaning</th><th>type</th></tr></thead><tbody>${responses}</tbody></table>`,
            "</section>",
          ].join("");
        })
        .join("\n");
      return `<h2 id="tag-${escapeHtml(tag)}">${escapeHtml(tag)}</h2>\n${ops}`;
    })
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(doc.info.title)}</title><style>${STYLE}</style></head>
<body><h1>${escapeHtml(doc.info.title)} <small>${escapeHtml(doc.info.version)}</small></h1>
<p>${inline(doc.info.description)}</p>
<p>The machine-readable document: <a href="openapi.json"><code>/api/openapi.json</code></a> (OpenAPI ${escapeHtml(doc.openapi)}).</p>
<ul>${index}</ul>
${sections}
</body></html>
`;
}
