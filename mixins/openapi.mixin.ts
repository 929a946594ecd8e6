import type { Context, ServiceSchema } from "moleculer";
import { renderDocsPage } from "../src/api/docs-page.ts";
import { buildOpenApiDocument, packageVersion, restRoutes, type GatewayRoute, type OpenApiDocument, type ServiceDescription } from "../src/api/openapi.ts";

/**
 * For the gateway: `GET /api/openapi.json`, the OpenAPI 3.0 document of every route it serves,
 * built on each request from the registry (services come and go), and `GET /api/docs`, that
 * document as an HTML page.
 */
export function openApiMixin(): Partial<ServiceSchema> {
  return {
    actions: {
      openapi: {
        rest: "GET /openapi.json",
        role: "public",
        openapi: { summary: "This document: every REST route, its parameters and answers (OpenAPI 3.0)" },
        params: {},
        handler(): OpenApiDocument {
          return this.openApiDocument();
        },
      },
      docs: {
        rest: "GET /docs",
        role: "public",
        openapi: { summary: "The API documentation as an HTML page", contentType: "text/html" },
        params: {},
        handler(ctx: Context<unknown, { $responseType?: string }>): string {
          ctx.meta.$responseType = "text/html; charset=utf-8";
          return renderDocsPage(this.openApiDocument());
        },
      },
    },

    methods: {
      openApiDocument(): OpenApiDocument {
        // The same listing moleculer-web builds its aliases from.
        const services = this.broker.registry.getServiceList({ withActions: true, grouping: true }) as unknown as ServiceDescription[];
        const routes = ((this.settings as { routes: GatewayRoute[] }).routes).flatMap((route) => restRoutes(services, route));
        return buildOpenApiDocument(routes, packageVersion());
      },
    },
  };
}
