import { strict as assert } from "node:assert";
import { createHmac } from "node:crypto";
import { offlineOpenApiDocument } from "../../scripts/api-reference.ts";
import { API_KEY_PREFIX, generateApiKey, hashApiKey, requestCredentials } from "../../src/auth/credentials.ts";
import { JwtError, signJwt, verifyJwt } from "../../src/auth/jwt.ts";
import { hashPassword, verifyPassword } from "../../src/auth/passwords.ts";
import { isRouteRole, roleAtLeast, ROLES } from "../../src/auth/roles.ts";
import { errorResponse } from "../../services/api.service.ts";

const SECRET = "s".repeat(32);
const NOW = 1_700_000_000;

describe("API authentication", () => {
  describe("JWT (HS256)", () => {
    const claims = { sub: "ann", role: "operator", iat: NOW, exp: NOW + 60 };

    it("verifies what it signed, until it expires", () => {
      const token = signJwt(claims, SECRET);
      assert.deepEqual(verifyJwt(token, SECRET, NOW + 59), claims);
      assert.throws(() => verifyJwt(token, SECRET, NOW + 60), /expired/);
    });

    it("matches an independent HS256 implementation (RFC 7519 layout)", () => {
      const [header, payload, sig] = signJwt(claims, SECRET).split(".");
      assert.deepEqual(JSON.parse(Buffer.from(header, "base64url").toString()), { alg: "HS256", typ: "JWT" });
      assert.equal(sig, createHmac("sha256", SECRET).update(`${header}.${payload}`).digest("base64url"));
    });

    it("refuses another secret, an edited payload, alg none and garbage", () => {
      const token = signJwt(claims, SECRET);
      assert.throws(() => verifyJwt(token, "t".repeat(32), NOW), (err: Error) => err instanceof JwtError && /signature/.test(err.message));
      const [header, , sig] = token.split(".");
      const admin = Buffer.from(JSON.stringify({ ...claims, role: "admin" })).toString("base64url");
      assert.throws(() => verifyJwt(`${header}.${admin}.${sig}`, SECRET, NOW), /signature/);
      const none = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url");
      assert.throws(() => verifyJwt(`${none}.${admin}.`, SECRET, NOW), /algorithm/);
      for (const bad of ["", "a.b", "a.b.c", "..."]) assert.throws(() => verifyJwt(bad, SECRET, NOW), JwtError, bad);
    });

    it("refuses a short secret", () => {
      assert.throws(() => signJwt(claims, "short"), /at least 32/);
    });
  });

  describe("passwords (scrypt, salt per user)", () => {
    it("verifies the right password only, and salts every hash", async function () {
      this.timeout(20_000);
      const a = await hashPassword("correct horse battery");
      const b = await hashPassword("correct horse battery");
      assert.equal(a.alg, "scrypt");
      assert.notEqual(a.salt, b.salt);
      assert.notEqual(a.hash, b.hash);
      assert.equal(await verifyPassword("correct horse battery", a), true);
      assert.equal(await verifyPassword("correct horse batterY", a), false);
      assert.equal(await verifyPassword("", a), false);
    });
  });

  describe("API keys and credentials", () => {
    it("makes random 32-byte keys stored as their SHA-256", () => {
      const { key, hash } = generateApiKey();
      assert.ok(key.startsWith(API_KEY_PREFIX));
      assert.equal(Buffer.from(key.slice(API_KEY_PREFIX.length), "base64url").length, 32);
      assert.match(hash, /^[0-9a-f]{64}$/);
      assert.equal(hashApiKey(key), hash);
      assert.notEqual(generateApiKey().key, key);
    });

    it("reads a bearer token or an API key from the headers, the query token only where allowed", () => {
      assert.deepEqual(requestCredentials({ authorization: "Bearer abc.def.ghi" }, "/api/devices", false), { kind: "bearer", token: "abc.def.ghi" });
      assert.deepEqual(requestCredentials({ "x-api-key": "pwk_x" }, "/api/devices", false), { kind: "key", key: "pwk_x" });
      assert.equal(requestCredentials({ authorization: "Basic abc" }, "/api/devices", false), null);
      assert.equal(requestCredentials({}, "/api/devices?access_token=abc", false), null);
      assert.deepEqual(requestCredentials({}, "/api/stream?filter=%23&access_token=abc", true), { kind: "bearer", token: "abc" });
    });
  });

  describe("roles", () => {
    it("orders viewer < operator < engineer < admin; public needs nothing", () => {
      assert.deepEqual([...ROLES], ["viewer", "operator", "engineer", "admin"]);
      assert.ok(roleAtLeast("admin", "engineer") && roleAtLeast("operator", "operator") && roleAtLeast("viewer", "public"));
      assert.ok(!roleAtLeast("viewer", "operator") && !roleAtLeast("operator", "engineer") && !roleAtLeast("engineer", "admin"));
      assert.ok(isRouteRole("public") && !isRouteRole("root") && !isRouteRole(undefined));
    });

    it("every action with a REST route declares its role (an undeclared one is refused)", async function () {
      this.timeout(30_000);
      const doc = await offlineOpenApiDocument();
      const undeclared = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).filter(([, op]) => !isRouteRole(op["x-required-role"])).map(([m]) => `${m.toUpperCase()} ${path}`));
      assert.deepEqual(undeclared, []);
      const publicOps = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).filter(([, op]) => op["x-required-role"] === "public").map(([m]) => `${m.toUpperCase()} ${path}`));
      assert.deepEqual(publicOps.sort(), ["GET /api/docs", "GET /api/health", "GET /api/openapi.json", "POST /api/auth/login"]);
      assert.equal(doc.paths["/api/devices/{id}"].patch["x-required-role"], "engineer");
      assert.equal(doc.paths["/api/devices/{id}/commands"].post["x-required-role"], "operator");
      assert.equal(doc.paths["/api/auth/keys"].post["x-required-role"], "admin");
    });
  });

  it("answers 401, 403 and 429 in the JSON error shape", () => {
    assert.deepEqual(errorResponse({ message: "credentials required", code: 401, type: "UNAUTHORIZED" }), { status: 401, body: { error: { type: "UNAUTHORIZED", message: "credentials required" } } });
    assert.equal(errorResponse({ message: "x", code: 403, type: "FORBIDDEN" }).status, 403);
    const limited = errorResponse({ name: "RateLimitExceeded", message: "Rate limit exceeded", code: 429 });
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error.type, "RATE_LIMITED");
  });
});
