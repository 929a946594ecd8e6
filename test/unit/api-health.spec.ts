import { strict as assert } from "node:assert";
import { errorResponse } from "../../services/api.service.ts";
import { summarizeHealth } from "../../src/shared/health-summary.ts";
import type { ServiceHealth } from "../../src/shared/health.ts";

describe("system health summary", () => {
  it("is ok only when every expected service has a healthy instance and every server answers", () => {
    const reports: ServiceHealth[] = [
      { service: "historian", nodeID: "n1", ok: true, checks: { kafka: { ok: true }, mongo: { ok: true } } },
      { service: "devices", nodeID: "n1", ok: true, checks: { mongo: { ok: true } } },
    ];
    const health = summarizeHealth(["historian", "devices"], reports, { nats: { ok: true } });
    assert.equal(health.status, "ok");
    assert.deepEqual(Object.keys(health.servers).sort(), ["kafka", "mongo", "nats"]);
  });

  it("names the missing service and the server an instance cannot reach", () => {
    const reports: ServiceHealth[] = [
      { service: "historian", nodeID: "n1", ok: false, checks: { kafka: { ok: true }, mongo: { ok: false, detail: "connection refused" } } },
      { service: "historian", nodeID: "n2", ok: true, checks: { kafka: { ok: true }, mongo: { ok: true } } },
    ];
    const health = summarizeHealth(["historian", "alarms"], reports, {});
    assert.equal(health.status, "degraded");
    assert.equal(health.services.historian.ok, true, "one healthy replica keeps the service up");
    assert.equal(health.services.alarms.ok, false);
    assert.deepEqual(health.servers.mongo, { ok: false, detail: "historian@n1: connection refused" });
  });
});

describe("API error responses", () => {
  it("turns validation errors into 400 naming the fields", () => {
    const { status, body } = errorResponse({ type: "VALIDATION_ERROR", message: "Parameters validation error!", code: 422, data: [{ field: "limit", message: "The 'limit' field must be a number." }] });
    assert.equal(status, 400);
    assert.deepEqual(body.error.fields, ["limit"]);
    assert.match(body.error.message, /'limit' field/);
  });

  it("keeps client error codes and hides internal error details", () => {
    assert.equal(errorResponse({ message: "device not registered", code: 404, type: "DEVICE_NOT_FOUND" }).status, 404);
    const internal = errorResponse({ message: "secret stack detail", code: 500 });
    assert.deepEqual([internal.status, internal.body.error.message], [500, "internal error"]);
    assert.equal(errorResponse({ message: "weird", code: 9999 }).status, 500);
  });
});
