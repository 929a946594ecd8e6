// JSON Web Tokens signed with HMAC-SHA-256 (RFC 7519, alg HS256), on node:crypto alone. Only HS256
// is accepted: a token naming another algorithm ("none", RS256 with the secret as a public key) is
// refused before its signature is looked at.
import { createHmac, timingSafeEqual } from "node:crypto";

export interface JwtClaims {
  /** Subject: the user's name. */
  sub: string;
  /** Issued at and expiry, in seconds since the epoch. */
  iat: number;
  exp: number;
  [claim: string]: unknown;
}

export class JwtError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "JwtError";
  }
}

/** Secrets shorter than this are refused: HS256 is only as strong as its key. */
export const MIN_SECRET_LENGTH = 32;

const HEADER = Buffer.from(JSON.stringify({ alg: "HS256", typ: "JWT" })).toString("base64url");

function signature(input: string, secret: string): Buffer {
  return createHmac("sha256", secret).update(input).digest();
}

export function signJwt(claims: JwtClaims, secret: string): string {
  if (secret.length < MIN_SECRET_LENGTH) throw new JwtError(`the signing secret must have at least ${MIN_SECRET_LENGTH} characters`);
  const input = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
  return `${input}.${signature(input, secret).toString("base64url")}`;
}

/** The claims of a token signed with `secret` that has not expired at `nowS`; throws JwtError otherwise. */
export function verifyJwt(token: string, secret: string, nowS = Math.floor(Date.now() / 1000)): JwtClaims {
  const parts = token.split(".");
  if (parts.length !== 3) throw new JwtError("malformed token");
  const [header, payload, sig] = parts;
  let alg: unknown;
  try {
    alg = (JSON.parse(Buffer.from(header, "base64url").toString("utf8")) as { alg?: unknown }).alg;
  } catch {
    throw new JwtError("malformed token header");
  }
  if (alg !== "HS256") throw new JwtError("unsupported token algorithm");
  const expected = signature(`${header}.${payload}`, secret);
  const given = Buffer.from(sig, "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new JwtError("invalid token signature");
  let claims: JwtClaims;
  try {
    claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as JwtClaims;
  } catch {
    throw new JwtError("malformed token payload");
  }
  if (claims === null || typeof claims !== "object" || typeof claims.sub !== "string" || typeof claims.exp !== "number" || typeof claims.iat !== "number") {
    throw new JwtError("the token lacks sub, iat or exp");
  }
  if (claims.exp <= nowS) throw new JwtError("the token has expired");
  return claims;
}
