// npm run docs:api — writes docs/api-reference.md from the OpenAPI document. The document comes
// from every service created (not started: no server is needed) with the default configuration,
// read the way the gateway reads the live registry; test/unit/openapi-reference.spec.ts fails when
// the committed file is stale, and test/integration/openapi.spec.ts checks it against a live gateway.
import { writeFileSync } from "node:fs";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import { buildOpenApiDocument, describeCreatedServices, packageVersion, restRoutes, type CreatedService, type GatewayRoute, type OpenApiDocument } from "../src/api/openapi.ts";
import { renderReferenceMarkdown } from "../src/api/reference.ts";
import { ALL_SERVICES, loadConfig, type PlantwireConfig } from "../src/shared/config.ts";

export const REFERENCE_FILE = new URL("../docs/api-reference.md", import.meta.url);

/** The document a gateway running every service serves, built without starting anything. */
export async function offlineOpenApiDocument(): Promise<OpenApiDocument> {
  // Defaults only: the reference must not depend on who generates it.
  const config = loadConfig({ SERVICES: ALL_SERVICES.join(","), LOG_LEVEL: "warn" });
  const broker = new ServiceBroker({ logger: false, transporter: null, cacher: null });
  for (const name of config.services) {
    const module = (await import(`../services/${name}.service.ts`)) as { default: (config: PlantwireConfig) => ServiceSchema };
    broker.createService(module.default(config));
  }
  const created = broker.services as unknown as CreatedService[];
  const api = created.find((s) => s.name === "api");
  const routes = ((api?.settings as { routes?: GatewayRoute[] } | undefined)?.routes ?? []).flatMap((route) => restRoutes(describeCreatedServices(created), route));
  return buildOpenApiDocument(routes, packageVersion());
}

export async function renderReference(): Promise<string> {
  return renderReferenceMarkdown(await offlineOpenApiDocument());
}

if (import.meta.main) {
  writeFileSync(REFERENCE_FILE, await renderReference());
  process.stdout.write(`wrote ${REFERENCE_FILE.pathname}\n`);
}
