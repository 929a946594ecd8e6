import type { IncomingMessage } from "node:http";
import { Errors, type Context, type ServiceSchema } from "moleculer";
import { GATEWAY_ROLES } from "../src/api/openapi.ts";
import { hashApiKey, requestCredentials } from "../src/auth/credentials.ts";
import { JwtError, verifyJwt } from "../src/auth/jwt.ts";
import { isRole, isRouteRole, roleAtLeast, type RouteRole } from "../src/auth/roles.ts";
import type { PlantwireConfig } from "../src/shared/config.ts";
import type { AuthUser } from "../src/shared/types.ts";
import { STREAM_PATH } from "./live-stream.mixin.ts";

/** How long a gateway trusts a verified API key without asking the auth service again (revocation is broadcast, so this only bounds a missed event). */
const KEY_CACHE_MS = 30_000;

interface GatewayRequest extends IncomingMessage {
  originalUrl?: string;
  $action?: { name?: string; role?: unknown };
}

interface GatewayAlias {
  method: string;
  fullPath: string;
}

function unauthorized(message: string): Errors.MoleculerClientError {
  return new Errors.MoleculerClientError(message, 401, "UNAUTHORIZED");
}

function forbidden(message: string): Errors.MoleculerClientError {
  return new Errors.MoleculerClientError(message, 403, "FORBIDDEN");
}

function isStreamPath(req: GatewayRequest): boolean {
  return (req.originalUrl ?? req.url ?? "").split("?")[0].replace(/\/+$/, "") === STREAM_PATH;
}

/** The role a route needs: its action's `role`, or the gateway alias's (GATEWAY_ROLES); null when it declares none. */
export function requiredRole(req: GatewayRequest, alias: GatewayAlias): RouteRole | null {
  const declared = req.$action ? req.$action.role : GATEWAY_ROLES[`${alias.method.toUpperCase()} ${alias.fullPath}`];
  return isRouteRole(declared) ? declared : null;
}

/**
 * The rate limiter's key: the user of a valid token, the hash of an API key, else the client's
 * address. The limiter runs before authentication, so the token is verified here (an HMAC, cheap);
 * a made-up key gets its own bucket, which guessing 256-bit keys does not profit from.
 */
export function rateLimitKey(config: PlantwireConfig): (req: GatewayRequest) => string {
  return (req) => {
    const credentials = requestCredentials(req.headers, req.originalUrl ?? req.url ?? "/", isStreamPath(req));
    if (credentials?.kind === "key") return `key:${hashApiKey(credentials.key)}`;
    if (credentials?.kind === "bearer" && config.auth.jwtSecret) {
      try {
        return `user:${verifyJwt(credentials.token, config.auth.jwtSecret).sub}`;
      } catch {
        // an invalid token counts against the address
      }
    }
    return `ip:${req.socket.remoteAddress ?? "unknown"}`;
  };
}

/**
 * moleculer-web's `authenticate` and `authorize` for the gateway's routes (docs/security.md,
 * "Authentication and roles"): a bearer JWT (people) or an X-API-Key (machines); `access_token`
 * in the query only on the live stream. Every action declares its lowest role (`role:` beside
 * `rest:`); one that does not is refused. API_AUTH=off lets everything through.
 */
export function gatewayAuthMixin(config: PlantwireConfig): Partial<ServiceSchema> {
  return {
    events: {
      "auth.keyRevoked"(ctx: Context<{ id: string }>) {
        (this.apiKeyCache as Map<string, unknown>).delete(ctx.params.id);
      },
      "auth.userDeleted"(ctx: Context<{ name: string; at: number }>) {
        (this.deletedUsers as Map<string, number>).set(ctx.params.name, ctx.params.at);
      },
    },

    methods: {
      async authenticate(_ctx: Context, _route: unknown, req: GatewayRequest, _res: unknown, alias: GatewayAlias): Promise<AuthUser | null> {
        if (!config.auth.enabled || requiredRole(req, alias) === "public") return null;
        const credentials = requestCredentials(req.headers, req.originalUrl ?? req.url ?? "/", isStreamPath(req));
        if (!credentials) {
          throw unauthorized(`credentials required: "Authorization: Bearer <token>" (POST /api/auth/login) or "X-API-Key: <key>"${isStreamPath(req) ? ", or access_token=<token> in the query" : ""}`);
        }
        return credentials.kind === "bearer" ? this.userOfToken(credentials.token) : this.userOfApiKey(credentials.key);
      },

      authorize(ctx: Context<unknown, { user?: AuthUser | null }>, _route: unknown, req: GatewayRequest, _res: unknown, alias: GatewayAlias): void {
        if (!config.auth.enabled) return;
        const need = requiredRole(req, alias);
        // Fail closed: a route nobody assigned a role is nobody's.
        if (need === null) throw forbidden(`${alias.method} ${alias.fullPath} declares no role and is refused`);
        if (need === "public") return;
        const user = ctx.meta.user;
        if (!user) throw unauthorized("credentials required");
        if (!roleAtLeast(user.role, need)) throw forbidden(`${alias.method} ${alias.fullPath} needs the role ${need} or higher; ${user.name} is ${user.role}`);
      },

      userOfToken(token: string): AuthUser {
        let claims;
        try {
          claims = verifyJwt(token, config.auth.jwtSecret as string);
        } catch (err) {
          if (err instanceof JwtError) throw unauthorized(`invalid token: ${err.message}`);
          throw err;
        }
        if (!isRole(claims.role)) throw unauthorized("invalid token: no known role");
        const deletedAt = (this.deletedUsers as Map<string, number>).get(claims.sub);
        if (deletedAt !== undefined && claims.iat * 1000 <= deletedAt) throw unauthorized("invalid token: the user was deleted");
        return { name: claims.sub, role: claims.role, kind: "user" };
      },

      async userOfApiKey(key: string): Promise<AuthUser> {
        const id = hashApiKey(key);
        const cache = this.apiKeyCache as Map<string, { user: AuthUser; until: number }>;
        const cached = cache.get(id);
        if (cached && cached.until > Date.now()) return cached.user;
        let user: AuthUser | null;
        try {
          user = await this.broker.call<AuthUser | null, { id: string }>("auth.verifyKey", { id }, { timeout: 5_000, retries: 0 });
        } catch (err) {
          this.logger.warn("API key check failed", { error: (err as Error).message });
          throw new Errors.MoleculerError("API keys cannot be checked: the auth service is not reachable", 503, "AUTH_UNAVAILABLE");
        }
        if (!user) {
          cache.delete(id);
          throw unauthorized("unknown or revoked API key");
        }
        cache.set(id, { user, until: Date.now() + KEY_CACHE_MS });
        return user;
      },
    },

    created() {
      this.apiKeyCache = new Map();
      // Not durable: after a restart a deleted user's token works until it expires (AUTH_TOKEN_TTL_S).
      this.deletedUsers = new Map();
    },

    started() {
      // Checked at start, not creation: the API reference creates every service without secrets.
      if (!config.auth.enabled) {
        this.logger.warn("!!! API_AUTH=off: the REST API and the live stream are open to anyone who can reach them, writes included (demo switch, docs/security.md) !!!");
      } else if (!config.auth.jwtSecret) throw new Error("the api service needs AUTH_JWT_SECRET (or API_AUTH=off)");
    },
  };
}
