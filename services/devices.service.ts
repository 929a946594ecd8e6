import type { Context, ServiceSchema } from "moleculer";
import { Errors } from "moleculer";
import type { Collection, Db, Filter } from "mongodb";
import { auditMixin } from "../mixins/audit.mixin.ts";
import { healthMixin } from "../mixins/health.mixin.ts";
import { mongoMixin } from "../mixins/mongo.mixin.ts";
import { requesterOf } from "../src/control/commands.ts";
import { applyDeviceUpdate, effectiveDevice } from "../src/devices/overrides.ts";
import type { PlantwireConfig } from "../src/shared/config.ts";
import type { DeviceAddress, DeviceDocument, DeviceUpdate, StatePayload } from "../src/shared/types.ts";

export type RegisterDeviceParams = DeviceAddress & StatePayload;

export interface ListDevicesParams {
  site?: string;
  area?: string;
  line?: string;
  state?: "online" | "offline";
  limit?: number;
  offset?: number;
}

export type UpdateDeviceParams = DeviceUpdate & { id: string };

const LEVEL = { type: "string", pattern: /^[A-Za-z0-9_.-]{1,64}$/ } as const;
const LIMIT = { type: "number", optional: true, nullable: true } as const;
const SEVERITY = { type: "enum", values: ["critical", "high", "medium", "low"], optional: true } as const;
const DELAY_MS = { type: "number", integer: true, min: 0, max: 86_400_000, optional: true, nullable: true } as const;
const TAG_OVERRIDE = {
  type: "object",
  strict: true,
  props: {
    lolo: LIMIT,
    lo: LIMIT,
    hi: LIMIT,
    hihi: LIMIT,
    alarm: {
      type: "object",
      optional: true,
      strict: true,
      props: {
        severity: { type: "object", optional: true, nullable: true, strict: true, props: { lolo: SEVERITY, lo: SEVERITY, hi: SEVERITY, hihi: SEVERITY, roc: SEVERITY, stuck: SEVERITY } },
        deadband: { type: "number", min: 0, optional: true, nullable: true },
        onDelayMs: DELAY_MS,
        offDelayMs: DELAY_MS,
        rocPerSecond: { type: "number", positive: true, optional: true, nullable: true },
        stuckAfterMs: { ...DELAY_MS, min: 1_000 },
      },
    },
  },
} as const;
/** Attempts at writing a change over a concurrent one before answering 409. */
const UPDATE_ATTEMPTS = 5;

function badParameter(field: string, message: string): Errors.MoleculerClientError {
  // Shaped like the validator's errors, so the gateway answers 400 naming the field.
  return new Errors.MoleculerClientError(message, 400, "VALIDATION_ERROR", [{ field, message }]);
}

function notRegistered(id: string): Errors.MoleculerClientError {
  return new Errors.MoleculerClientError(`device "${id}" is not registered`, 404, "DEVICE_NOT_FOUND", { id });
}

/** The device registry: seeded from the PLCs' birth messages, read through the Redis cacher. */
export default function createDevicesService(config: PlantwireConfig): ServiceSchema {
  return {
    name: "devices",
    mixins: [mongoMixin(config), auditMixin(), healthMixin()],

    settings: { rest: "/" },

    actions: {
      register: {
        params: {
          site: LEVEL,
          area: LEVEL,
          line: LEVEL,
          device: LEVEL,
          state: { type: "enum", values: ["online", "offline"] },
          ts: { type: "number", integer: true, positive: true },
          machineType: { type: "string", optional: true, max: 64 },
          tags: { type: "array", optional: true, max: 500, items: "object" },
        },
        async handler(ctx: Context<RegisterDeviceParams>): Promise<DeviceDocument> {
          const device = await this.upsertDevice(ctx.params);
          await this.broker.cacher?.clean("devices.**");
          // Broadcast: every replica of every service that caches device tags must hear it.
          ctx.broadcast("device.registered", device);
          return device;
        },
      },

      get: {
        rest: "GET /devices/:id",
        role: "viewer",
        openapi: { summary: "One device: its place in the plant, tags with units, ranges and limits (the engineer's changes merged in), metadata" },
        cache: { keys: ["id"] },
        params: { id: LEVEL },
        async handler(ctx: Context<{ id: string }>): Promise<DeviceDocument> {
          const device = await (this.devices as Collection<DeviceDocument>).findOne({ _id: ctx.params.id });
          if (!device) throw notRegistered(ctx.params.id);
          return effectiveDevice(device);
        },
      },

      update: {
        rest: "PATCH /devices/:id",
        role: "engineer",
        openapi: {
          summary: "Change a device's limits, alarm settings and descriptions",
          description: "Limits (`lolo ≤ lo < hi ≤ hihi`, inside the tag's engineering range; `null` removes one) and alarm settings of numeric tags, and free-text metadata. Kept over the PLC's next birth; recorded with who and when.",
        },
        params: {
          id: LEVEL,
          metadata: { type: "record", optional: true, key: { type: "string", pattern: /^[A-Za-z][A-Za-z0-9_-]{0,31}$/ }, value: { type: "string", max: 1000, nullable: true } },
          tags: { type: "record", optional: true, key: LEVEL, value: TAG_OVERRIDE },
        },
        async handler(ctx: Context<UpdateDeviceParams, { user?: unknown }>): Promise<DeviceDocument> {
          const { id, metadata, tags } = ctx.params;
          // Only what was given: the audit record keeps the change as sent.
          const change: DeviceUpdate = { ...(metadata ? { metadata } : {}), ...(tags ? { tags } : {}) };
          const device = await this.updateOverrides(id, change, requesterOf(ctx.meta.user));
          await this.broker.cacher?.clean("devices.**");
          // The same event as a birth: device caches and alarm conditions take the new limits.
          ctx.broadcast("device.registered", device);
          return device;
        },
      },

      list: {
        rest: "GET /devices",
        role: "viewer",
        openapi: { summary: "Registered devices, filtered by site, area, line and state, sorted by id, paginated" },
        cache: { keys: ["site", "area", "line", "state", "limit", "offset"] },
        params: {
          site: { ...LEVEL, optional: true },
          area: { ...LEVEL, optional: true },
          line: { ...LEVEL, optional: true },
          state: { type: "enum", values: ["online", "offline"], optional: true },
          limit: { type: "number", integer: true, min: 1, max: 1000, optional: true, convert: true },
          offset: { type: "number", integer: true, min: 0, optional: true, convert: true },
        },
        async handler(ctx: Context<ListDevicesParams>): Promise<{ total: number; devices: DeviceDocument[] }> {
          const { site, area, line, state, limit = 100, offset = 0 } = ctx.params;
          // Only whitelisted fields with validated string values reach the filter.
          const filter: Filter<DeviceDocument> = {};
          if (site) filter.site = site;
          if (area) filter.area = area;
          if (line) filter.line = line;
          if (state) filter.state = state;
          const collection = this.devices as Collection<DeviceDocument>;
          const [total, devices] = await Promise.all([
            collection.countDocuments(filter),
            collection.find(filter).sort({ _id: 1 }).skip(offset).limit(limit).toArray(),
          ]);
          return { total, devices: devices.map(effectiveDevice) };
        },
      },
    },

    methods: {
      async upsertDevice(params: RegisterDeviceParams): Promise<DeviceDocument> {
        const { site, area, line, device, state, ts, machineType, tags } = params;
        const collection = this.devices as Collection<DeviceDocument>;
        // A death message carries no tag list: keep the one from the birth.
        const set: Partial<DeviceDocument> = { site, area, line, state, updatedAt: ts };
        if (machineType !== undefined) set.machineType = machineType;
        if (tags !== undefined) set.tags = tags;
        const updated = await collection.findOneAndUpdate(
          // Ignore messages older than what is stored (retained births replayed after a death).
          { _id: device, $or: [{ updatedAt: { $lte: ts } }, { updatedAt: { $exists: false } }] },
          { $set: set, $setOnInsert: { ...(machineType === undefined ? { machineType: "unknown" } : {}), ...(tags === undefined ? { tags: [] } : {}) } },
          { upsert: true, returnDocument: "after" },
        ).catch(async (err: { code?: number }) => {
          // Duplicate key: the device exists with a newer update; keep it.
          if (err.code === 11000) return collection.findOne({ _id: device });
          throw err;
        });
        if (!updated) throw new Error(`device ${device} vanished during registration`);
        return effectiveDevice(updated);
      },

      /** Writes a change over the overrides it was checked against (retrying over a concurrent change); returns the effective device. */
      async updateOverrides(id: string, update: DeviceUpdate, user: string): Promise<DeviceDocument> {
        const collection = this.devices as Collection<DeviceDocument>;
        for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
          const stored = await collection.findOne({ _id: id });
          if (!stored) throw notRegistered(id);
          const checked = applyDeviceUpdate(stored, update, user, Date.now());
          if (!checked.ok) throw badParameter(checked.field, checked.message);
          const revision = stored.overrides?.revision;
          const updated = await collection.findOneAndUpdate(
            { _id: id, ...(revision === undefined ? { overrides: { $exists: false } } : { "overrides.revision": revision }) },
            { $set: { overrides: checked.value } },
            { returnDocument: "after" },
          );
          if (!updated) continue;
          await this.appendAudit({ action: "device.updated", subject: "device", subjectId: id, user, at: checked.value.updatedAt, details: { change: update, revision: checked.value.revision } });
          return effectiveDevice(updated);
        }
        throw new Errors.MoleculerClientError(`device "${id}" is being changed by someone else; try again`, 409, "CONFLICT", { id });
      },
    },

    async started() {
      this.devices = (this.db as Db).collection<DeviceDocument>("devices");
      await this.devices.createIndex({ site: 1, area: 1, line: 1 });
    },
  };
}
