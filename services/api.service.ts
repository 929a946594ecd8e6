import { Errors, type Context, type ServiceSchema } from "moleculer";
import ApiGateway, { type ApiSettingsSchema } from "moleculer-web";
import type { ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";
import { gatewayAuthMixin, rateLimitKey } from "../mixins/gateway-auth.mixin.ts";
import { healthMixin } from "../mixins/health.mixin.ts";
import { kafkaLagMixin } from "../mixins/kafka-lag.mixin.ts";
import { liveStreamAlias, liveStreamMixin } from "../mixins/live-stream.mixin.ts";
import { openApiMixin } from "../mixins/openapi.mixin.ts";
import { redisMixin } from "../mixins/redis.mixin.ts";
import { ALL_SERVICES, type PlantwireConfig } from "../src/shared/config.ts";
import { summarizeHealth, type SystemHealth } from "../src/shared/health-summary.ts";
import type { HealthCheck, ServiceHealth } from "../src/shared/health.ts";

interface ErrorLike {
  name?: string;
  message: string;
  code?: number;
  type?: string;
  data?: unknown;
}

/** The JSON error body every client mistake gets: a status, a type and a message naming the field. */
export function errorResponse(err: ErrorLike): { status: number; body: { error: { type: string; message: string; fields?: string[] } } } {
  if (err.type === "VALIDATION_ERROR" || err.name === "ValidationError") {
    const fields = Array.isArray(err.data) ? (err.data as { field?: string; message?: string }[]) : [];
    const message = fields.length > 0 ? fields.map((f) => f.message ?? `${f.field} is invalid`).join("; ") : err.message;
    return { status: 400, body: { error: { type: "INVALID_PARAMETER", message, fields: fields.map((f) => f.field ?? "") } } };
  }
  const status = typeof err.code === "number" && err.code >= 400 && err.code < 600 ? err.code : 500;
  const message = status >= 500 && status !== 503 ? "internal error" : status === 429 ? "too many requests: wait for the rate-limit window (X-Rate-Limit-Reset)" : err.message;
  return { status, body: { error: { type: err.type ?? (status === 404 ? "NOT_FOUND" : status === 429 ? "RATE_LIMITED" : "ERROR"), message } } };
}

/** Deeper than any request body of the API (PATCH /devices/{id} nests 5 levels). */
export const MAX_PARAMS_DEPTH = 32;

/**
 * Whether a request's parameters nest deeper than `max` objects/arrays. Iterative: the point is to
 * refuse, before the call, a body that the transporter's JSON.stringify would overflow the stack on.
 */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (node === null || typeof node !== "object") continue;
    if (depth >= max) return true;
    for (const child of Object.values(node)) stack.push([child, depth + 1]);
  }
  return false;
}

/** moleculer-web gateway: the REST API on port 8000 (HTTPS with API_TLS_CERT/API_TLS_KEY). */
export default function createApiService(config: PlantwireConfig): ServiceSchema<ApiSettingsSchema> {
  return {
    name: "api",
    // Mixins stop in this order: the live stream first ends its open streams, which the gateway's
    // server.close() would otherwise wait for.
    mixins: [liveStreamMixin(config), ApiGateway, gatewayAuthMixin(config), redisMixin(config), healthMixin(), openApiMixin(), kafkaLagMixin(config)],

    settings: {
      rest: "/",
      port: config.apiPort,
      ip: config.apiHost,
      // HTTPS when API_TLS_CERT/API_TLS_KEY are set (moleculer-web serves https.createServer(settings.https)).
      ...(config.apiTls ? { https: config.apiTls } : {}),
      log4XXResponses: false,
      // The operator dashboard (scripts/build-dashboard.sh builds it): static files at "/", served
      // only for requests no route matched, so /api stays as it is.
      assets: { folder: fileURLToPath(new URL("../dashboard/dist", import.meta.url)) },
      routes: [
        {
          path: "/api",
          // Each service declares its own routes (`rest` on its actions, `settings.rest: "/"`);
          // the gateway picks them up from the registry as services come and go.
          mappingPolicy: "restrict",
          autoAliases: true,
          // Server-Sent Events, written by the live-stream mixin (docs/api.md "Live stream").
          aliases: { "GET /stream": liveStreamAlias },
          bodyParsers: { json: { limit: "64kb" }, urlencoded: false },
          // authenticate/authorize of the gateway-auth mixin: every route checks its action's `role`.
          authentication: true,
          authorization: true,
          ...(config.auth.rateLimit > 0 ? { rateLimit: { window: config.auth.rateWindowMs, limit: config.auth.rateLimit, headers: true, key: rateLimitKey(config) } } : {}),
          onBeforeCall(_ctx: Context, _route: unknown, req: { $params?: unknown }) {
            if (nestedDeeperThan(req.$params, MAX_PARAMS_DEPTH)) {
              const message = `the request nests deeper than ${MAX_PARAMS_DEPTH} levels`;
              throw new Errors.MoleculerClientError(message, 400, "VALIDATION_ERROR", [{ field: "body", message }]);
            }
          },
          onError(this: { logger: { error: (...args: unknown[]) => void } }, req: { method?: string; url?: string }, res: ServerResponse, err: ErrorLike) {
            const { status, body } = errorResponse(err);
            if (status >= 500) this.logger.error("request failed", { method: req.method, url: req.url, error: err.message, code: err.code });
            res.setHeader("Content-Type", "application/json; charset=utf-8");
            if (status === 401) res.setHeader("WWW-Authenticate", 'Bearer realm="plantwire"');
            res.writeHead(status);
            res.end(JSON.stringify(body));
          },
        },
      ],
    },

    actions: {
      // moleculer-web's own route listing (GET /api/list-aliases) needs a role like every route.
      listAliases: { role: "viewer", openapi: { summary: "The routes this gateway serves, as moleculer-web lists them" } },

      systemHealth: {
        rest: "GET /health",
        role: "public",
        openapi: { summary: "Every service and server with its status: 200 when all are up, 503 when degraded" },
        async handler(ctx: Context<unknown, { $statusCode?: number }>): Promise<SystemHealth> {
          const services = this.broker.registry.getServiceList({ onlyAvailable: true, skipInternal: true, withActions: true }) as unknown as {
            name: string;
            nodeID: string;
            actions: Record<string, unknown>;
          }[];
          const reports = await Promise.all(
            services
              .filter((s) => s.actions[`${s.name}.health`])
              .map((s) =>
                (ctx.call(`${s.name}.health`, {}, { nodeID: s.nodeID, timeout: 3_000, retries: 0 }) as Promise<ServiceHealth>).catch(
                  (err: Error): ServiceHealth => ({ service: s.name, nodeID: s.nodeID, ok: false, checks: { call: { ok: false, detail: err.message } } }),
                ),
              ),
          );
          const nats: HealthCheck = this.broker.transit?.connected ? { ok: true } : { ok: false, detail: "not connected to NATS" };
          const health = summarizeHealth(ALL_SERVICES, reports, { nats });
          if (health.status !== "ok") ctx.meta.$statusCode = 503;
          return health;
        },
      },
    },
  };
}
