// API keys and how a request carries its credentials. No I/O: the gateway and the auth service
// use these, the unit tests reach them directly.
import { createHash, randomBytes } from "node:crypto";

/** Prefix of every API key: recognisable in logs and secret scanners. */
export const API_KEY_PREFIX = "pwk_";

/** A new API key (32 random bytes) and the SHA-256 hex under which it is stored; the key itself is shown once. */
export function generateApiKey(): { key: string; hash: string } {
  const key = API_KEY_PREFIX + randomBytes(32).toString("base64url");
  return { key, hash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

export type RequestCredentials = { kind: "bearer"; token: string } | { kind: "key"; key: string };

/**
 * What a request presents: `Authorization: Bearer <jwt>`, `X-API-Key: <key>`, or, only where
 * `allowQueryToken` (the live stream: EventSource cannot send headers), `?access_token=<jwt>`.
 */
export function requestCredentials(headers: Record<string, string | string[] | undefined>, url: string, allowQueryToken: boolean): RequestCredentials | null {
  const key = headers["x-api-key"];
  if (typeof key === "string" && key !== "") return { kind: "key", key };
  const authorization = headers.authorization;
  if (typeof authorization === "string") {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return { kind: "bearer", token: match[1] };
  }
  if (allowQueryToken) {
    const token = new URL(url, "http://gateway").searchParams.get("access_token");
    if (token) return { kind: "bearer", token };
  }
  return null;
}
