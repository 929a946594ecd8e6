// Starts one plantwire process: a Moleculer broker with the services named in SERVICES.
import { createServer, type Server } from "node:http";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import { brokerOptions } from "../moleculer.config.ts";
import { ConfigError } from "./shared/errors.ts";
import { loadConfig, requireSecrets, type PlantwireConfig } from "./shared/config.ts";
import type { ServiceHealth } from "./shared/health.ts";

type ServiceFactory = (config: PlantwireConfig) => ServiceSchema;

/** Creates a broker with the configured services; the caller starts it. */
export async function createPlantwireBroker(config: PlantwireConfig): Promise<ServiceBroker> {
  const broker = new ServiceBroker(brokerOptions(config));
  for (const name of config.services) {
    const module = (await import(`../services/${name}.service.ts`)) as { default: ServiceFactory };
    broker.createService(module.default(config));
  }
  return broker;
}

/**
 * Liveness (`/live`: the process and its broker run) and readiness (`/ready`: every local service
 * reaches its servers) for orchestrators, on HEALTH_PORT.
 */
function startHealthEndpoint(broker: ServiceBroker, port: number): Server {
  const server = createServer(async (req, res) => {
    let status = 404;
    let body: unknown = { error: "not found" };
    if (req.url === "/live") {
      status = broker.started ? 200 : 503;
      body = { live: broker.started, nodeID: broker.nodeID };
    } else if (req.url === "/ready") {
      const local = broker.services.filter((s) => s.name && !s.name.startsWith("$"));
      const reports = await Promise.all(
        local.map((s) => broker.call<ServiceHealth, Record<string, never>>(`${s.name}.health`, {}, { nodeID: broker.nodeID }).catch((err: Error) => ({ service: s.name, ok: false, error: err.message }))),
      );
      const ready = broker.started && reports.every((r) => r.ok);
      status = ready ? 200 : 503;
      body = { ready, services: reports };
    }
    res.writeHead(status, { "Content-Type": "application/json" });
    res.end(JSON.stringify(body));
  });
  server.listen(port);
  return server;
}

async function main(): Promise<void> {
  let config: PlantwireConfig;
  try {
    config = loadConfig();
    requireSecrets(config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`plantwire: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const broker = await createPlantwireBroker(config);
  const health = config.healthPort > 0 ? startHealthEndpoint(broker, config.healthPort) : undefined;
  broker.localBus.on("$broker.stopped", () => health?.close());
  await broker.start();
  broker.logger.info("plantwire services started", { services: config.services, api: config.services.includes("api") ? `http://${config.apiHost}:${config.apiPort}/api` : undefined });
}

if (import.meta.main ?? process.argv[1] === new URL(import.meta.url).pathname) {
  main().catch((err: Error) => {
    process.stderr.write(`plantwire: failed to start: ${err.stack ?? err.message}\n`);
    process.exit(1);
  });
}
