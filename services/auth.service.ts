import { Errors, type Context, type ServiceSchema } from "moleculer";
import type { Collection, Db } from "mongodb";
import { auditMixin } from "../mixins/audit.mixin.ts";
import { healthMixin } from "../mixins/health.mixin.ts";
import { mongoMixin } from "../mixins/mongo.mixin.ts";
import { generateApiKey } from "../src/auth/credentials.ts";
import { signJwt } from "../src/auth/jwt.ts";
import { dummyHash, hashPassword, MIN_PASSWORD_LENGTH, verifyPassword, type PasswordHash } from "../src/auth/passwords.ts";
import { ROLES, type Role } from "../src/auth/roles.ts";
import type { PlantwireConfig } from "../src/shared/config.ts";
import type { ApiKeyView, AuthUser, LoginResult, UserView } from "../src/shared/types.ts";

/** `users`: one document per user, `_id` the name, so a login is an `_id` lookup. */
interface UserDocument {
  _id: string;
  role: Role;
  password: PasswordHash;
  createdAt: number;
  createdBy: string;
}

/** `api_keys`: `_id` is the key's SHA-256, so authenticating a key is an `_id` lookup; the key itself is never stored. */
interface ApiKeyDocument {
  _id: string;
  name: string;
  role: Role;
  createdAt: number;
  createdBy: string;
}

interface AuthMeta {
  user?: AuthUser | null;
  $statusCode?: number;
  $location?: string;
}

const NAME = { type: "string", pattern: /^[A-Za-z0-9_.@-]{1,64}$/ } as const;
const ROLE = { type: "enum", values: [...ROLES] } as const;
const KEY_ID = { type: "string", pattern: /^[0-9a-f]{64}$/ } as const;
const BOOTSTRAP_ADMIN = "admin";

function userView(u: UserDocument): UserView {
  return { name: u._id, role: u.role, createdAt: u.createdAt, createdBy: u.createdBy };
}

function keyView(k: ApiKeyDocument): ApiKeyView {
  return { id: k._id, name: k.name, role: k.role, createdAt: k.createdAt, createdBy: k.createdBy };
}

function actorOf(ctx: Context<unknown, AuthMeta>): string {
  return ctx.meta.user?.name ?? "anonymous";
}

function isDuplicateKey(err: unknown): boolean {
  return (err as { code?: number }).code === 11000;
}

/**
 * Users (password login, JWT) and API keys (machines) of the REST API; the gateway enforces the
 * roles (mixins/gateway-auth.mixin.ts). Creates `admin` from AUTH_ADMIN_PASSWORD when no user
 * exists. See docs/security.md, "Authentication and roles".
 */
export default function createAuthService(config: PlantwireConfig): ServiceSchema {
  return {
    name: "auth",
    mixins: [mongoMixin(config), auditMixin(), healthMixin()],

    settings: { rest: "/" },

    actions: {
      login: {
        rest: "POST /auth/login",
        role: "public",
        openapi: { summary: "Log in with name and password: a bearer token (JWT) for the Authorization header" },
        params: { name: { type: "string", min: 1, max: 64 }, password: { type: "string", min: 1, max: 1024 } },
        async handler(ctx: Context<{ name: string; password: string }, AuthMeta>): Promise<LoginResult> {
          const { name, password } = ctx.params;
          if (!this.jwtSecret) throw new Errors.MoleculerError("logins are off (API_AUTH=off without AUTH_JWT_SECRET)", 503, "AUTH_DISABLED");
          const user = await (this.users as Collection<UserDocument>).findOne({ _id: name });
          // An unknown name costs a hash too: the answer's timing does not tell which names exist.
          const ok = await verifyPassword(password, user?.password ?? (await dummyHash()));
          if (!user || !ok) {
            await this.appendAudit({ action: "auth.loginFailed", subject: "user", subjectId: name, user: name, details: { reason: user ? "wrong password" : "unknown user" } });
            throw new Errors.MoleculerClientError("the name or the password is wrong", 401, "INVALID_CREDENTIALS");
          }
          const iat = Math.floor(Date.now() / 1000);
          const exp = iat + config.auth.tokenTtlS;
          const token = signJwt({ sub: user._id, role: user.role, iat, exp }, this.jwtSecret as string);
          await this.appendAudit({ action: "auth.login", subject: "user", subjectId: user._id, user: user._id, details: { role: user.role } });
          return { token, tokenType: "Bearer", expiresAt: exp * 1000, user: { name: user._id, role: user.role, kind: "user" } };
        },
      },

      me: {
        rest: "GET /auth/me",
        role: "viewer",
        openapi: { summary: "Who the request's credentials belong to: name, role and kind (user or key)" },
        params: {},
        handler(ctx: Context<unknown, AuthMeta>): AuthUser | null {
          return ctx.meta.user ?? null;
        },
      },

      listUsers: {
        rest: "GET /auth/users",
        role: "admin",
        openapi: { summary: "Every user with its role" },
        params: {},
        async handler(): Promise<{ users: UserView[] }> {
          const users = await (this.users as Collection<UserDocument>).find({}, { projection: { password: 0 } }).sort({ _id: 1 }).toArray();
          return { users: users.map(userView) };
        },
      },

      createUser: {
        rest: "POST /auth/users",
        role: "admin",
        openapi: { summary: `Create a user with a role and a password of at least ${MIN_PASSWORD_LENGTH} characters`, status: 201 },
        params: { name: NAME, role: ROLE, password: { type: "string", min: MIN_PASSWORD_LENGTH, max: 1024 } },
        async handler(ctx: Context<{ name: string; role: Role; password: string }, AuthMeta>): Promise<UserView> {
          const { name, role, password } = ctx.params;
          const user: UserDocument = { _id: name, role, password: await hashPassword(password), createdAt: Date.now(), createdBy: actorOf(ctx) };
          try {
            await (this.users as Collection<UserDocument>).insertOne(user);
          } catch (err) {
            if (isDuplicateKey(err)) throw new Errors.MoleculerClientError(`user "${name}" exists`, 409, "CONFLICT", { name });
            throw err;
          }
          await this.appendAudit({ action: "user.created", subject: "user", subjectId: name, user: user.createdBy, details: { role } });
          ctx.meta.$statusCode = 201;
          ctx.meta.$location = `/api/auth/users/${encodeURIComponent(name)}`;
          return userView(user);
        },
      },

      deleteUser: {
        rest: "DELETE /auth/users/:name",
        role: "admin",
        openapi: { summary: "Delete a user; the tokens it holds stop working (the last admin cannot be deleted)" },
        params: { name: NAME },
        async handler(ctx: Context<{ name: string }, AuthMeta>): Promise<{ deleted: string }> {
          const users = this.users as Collection<UserDocument>;
          const user = await users.findOne({ _id: ctx.params.name }, { projection: { password: 0 } });
          if (!user) throw new Errors.MoleculerClientError(`user "${ctx.params.name}" does not exist`, 404, "USER_NOT_FOUND", { name: ctx.params.name });
          if (user.role === "admin" && (await users.countDocuments({ role: "admin" })) <= 1) {
            throw new Errors.MoleculerClientError("the last admin cannot be deleted", 409, "CONFLICT", { name: user._id });
          }
          await users.deleteOne({ _id: user._id });
          ctx.broadcast("auth.userDeleted", { name: user._id, at: Date.now() });
          await this.appendAudit({ action: "user.deleted", subject: "user", subjectId: user._id, user: actorOf(ctx), details: { role: user.role } });
          return { deleted: user._id };
        },
      },

      listKeys: {
        rest: "GET /auth/keys",
        role: "admin",
        openapi: { summary: "Every API key with its name and role (never the key itself)" },
        params: {},
        async handler(): Promise<{ keys: ApiKeyView[] }> {
          const keys = await (this.keys as Collection<ApiKeyDocument>).find({}).sort({ createdAt: 1 }).toArray();
          return { keys: keys.map(keyView) };
        },
      },

      createKey: {
        rest: "POST /auth/keys",
        role: "admin",
        openapi: { summary: "Create an API key for a machine: the answer's `key` is shown this once, send it as X-API-Key", status: 201 },
        params: { name: { type: "string", min: 1, max: 100 }, role: ROLE },
        async handler(ctx: Context<{ name: string; role: Role }, AuthMeta>): Promise<ApiKeyView & { key: string }> {
          const { key, hash } = generateApiKey();
          const doc: ApiKeyDocument = { _id: hash, name: ctx.params.name, role: ctx.params.role, createdAt: Date.now(), createdBy: actorOf(ctx) };
          await (this.keys as Collection<ApiKeyDocument>).insertOne(doc);
          await this.appendAudit({ action: "apikey.created", subject: "apikey", subjectId: hash, user: doc.createdBy, details: { name: doc.name, role: doc.role } });
          ctx.meta.$statusCode = 201;
          ctx.meta.$location = `/api/auth/keys/${hash}`;
          return { ...keyView(doc), key };
        },
      },

      deleteKey: {
        rest: "DELETE /auth/keys/:id",
        role: "admin",
        openapi: { summary: "Revoke an API key: it is refused from then on" },
        params: { id: KEY_ID },
        async handler(ctx: Context<{ id: string }, AuthMeta>): Promise<{ revoked: string }> {
          const key = await (this.keys as Collection<ApiKeyDocument>).findOneAndDelete({ _id: ctx.params.id });
          if (!key) throw new Errors.MoleculerClientError(`API key "${ctx.params.id}" does not exist`, 404, "KEY_NOT_FOUND", { id: ctx.params.id });
          // Every gateway drops the key from its cache now rather than when the cache entry ages out.
          ctx.broadcast("auth.keyRevoked", { id: key._id });
          await this.appendAudit({ action: "apikey.revoked", subject: "apikey", subjectId: key._id, user: actorOf(ctx), details: { name: key.name, role: key.role } });
          return { revoked: key._id };
        },
      },

      /** For the gateway: the holder of an API key, by the key's SHA-256; null for an unknown or revoked key. */
      verifyKey: {
        visibility: "public",
        params: { id: KEY_ID },
        async handler(ctx: Context<{ id: string }>): Promise<AuthUser | null> {
          const key = await (this.keys as Collection<ApiKeyDocument>).findOne({ _id: ctx.params.id });
          return key ? { name: key.name, role: key.role, kind: "key" } : null;
        },
      },
    },

    methods: {
      /** Creates `admin` when no user exists and AUTH_ADMIN_PASSWORD is set (the first start). */
      async bootstrapAdmin(): Promise<void> {
        const users = this.users as Collection<UserDocument>;
        if ((await users.findOne({})) !== null) return;
        const password = config.auth.adminPassword;
        if (!password) {
          this.logger.warn("no API user exists and AUTH_ADMIN_PASSWORD is not set: nobody can log in until it is");
          return;
        }
        try {
          await users.insertOne({ _id: BOOTSTRAP_ADMIN, role: "admin", password: await hashPassword(password), createdAt: Date.now(), createdBy: "bootstrap" });
        } catch (err) {
          // Another replica created it first.
          if (isDuplicateKey(err)) return;
          throw err;
        }
        await this.appendAudit({ action: "user.created", subject: "user", subjectId: BOOTSTRAP_ADMIN, user: "bootstrap", details: { role: "admin" } });
        this.logger.info(`created the user "${BOOTSTRAP_ADMIN}" from AUTH_ADMIN_PASSWORD`);
      },
    },

    created() {
      this.jwtSecret = config.auth.jwtSecret;
    },

    async started() {
      // Checked at start, not creation: the API reference creates every service without secrets.
      if (config.auth.enabled && !this.jwtSecret) throw new Error("the auth service needs AUTH_JWT_SECRET (or API_AUTH=off)");
      this.users = (this.db as Db).collection<UserDocument>("users");
      this.keys = (this.db as Db).collection<ApiKeyDocument>("api_keys");
      await this.bootstrapAdmin();
    },
  };
}
