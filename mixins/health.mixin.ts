import type { ServiceSchema } from "moleculer";
import type { HealthCheck, ServiceHealth } from "../src/shared/health.ts";

/**
 * Adds a `health` action. Each mixin and service contributes checks by defining a method whose
 * name starts with `healthCheck` (e.g. `healthCheckKafka`) returning a HealthCheck; the check's
 * name is the rest of the method name in lower case.
 */
export function healthMixin(): Partial<ServiceSchema> {
  return {
    actions: {
      health: {
        visibility: "public",
        async handler(): Promise<ServiceHealth> {
          const checks: Record<string, HealthCheck> = {};
          const methodNames = Object.keys(this).filter((key) => key.startsWith("healthCheck") && typeof this[key] === "function");
          await Promise.all(
            methodNames.map(async (key) => {
              checks[key.slice("healthCheck".length).toLowerCase()] = await (this[key] as () => Promise<HealthCheck>)();
            }),
          );
          return {
            service: this.name,
            nodeID: this.broker.nodeID,
            ok: Object.values(checks).every((c) => c.ok),
            checks,
          };
        },
      },
    },
  };
}
