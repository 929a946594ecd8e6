import type { HealthCheck, ServiceHealth } from "./health.ts";

export interface SystemHealth {
  status: "ok" | "degraded";
  services: Record<string, { ok: boolean; instances: ServiceHealth[] }>;
  servers: Record<string, HealthCheck>;
}

/**
 * Folds every service instance's report into one answer: a service is up when at least one
 * instance is healthy; a server is up when every instance that uses it reaches it.
 */
export function summarizeHealth(expected: readonly string[], reports: readonly ServiceHealth[], ownChecks: Record<string, HealthCheck>): SystemHealth {
  const services: SystemHealth["services"] = {};
  for (const name of expected) services[name] = { ok: false, instances: [] };
  for (const report of reports) {
    const entry = (services[report.service] ??= { ok: false, instances: [] });
    entry.instances.push(report);
    entry.ok ||= report.ok;
  }
  const servers: Record<string, HealthCheck> = { ...ownChecks };
  for (const report of reports) {
    for (const [server, check] of Object.entries(report.checks)) {
      const known = servers[server];
      if (!known || (known.ok && !check.ok)) servers[server] = check.ok ? { ok: true } : { ok: false, detail: `${report.service}@${report.nodeID}: ${check.detail ?? "down"}` };
    }
  }
  const ok = Object.values(services).every((s) => s.ok) && Object.values(servers).every((s) => s.ok);
  return { status: ok ? "ok" : "degraded", services, servers };
}
