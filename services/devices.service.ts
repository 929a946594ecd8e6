import type { Context, ServiceSchema } from "moleculer";
import { Errors } from "moleculer";
import type { Collection, Db, Filter } from "mongodb";
import { healthMixin } from "../mixins/health.mixin.ts";
import { mongoMixin } from "../mixins/mongo.mixin.ts";
import type { PlantwireConfig } from "../src/shared/config.ts";
import type { DeviceAddress, DeviceDocument, StatePayload } from "../src/shared/types.ts";

export type RegisterDeviceParams = DeviceAddress & StatePayload;

export interface ListDevicesParams {
  site?: string;
  area?: string;
  line?: string;
  state?: "online" | "offline";
  limit?: number;
  offset?: number;
}

const LEVEL = { type: "string", pattern: /^[A-Za-z0-9_.-]{1,64}$/ } as const;

/** The device registry: seeded from the PLCs' birth messages, read through the Redis cacher. */
export default function createDevicesService(config: PlantwireConfig): ServiceSchema {
  return {
    name: "devices",
    mixins: [mongoMixin(config), healthMixin()],

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
        cache: { keys: ["id"] },
        params: { id: LEVEL },
        async handler(ctx: Context<{ id: string }>): Promise<DeviceDocument> {
          const device = await (this.devices as Collection<DeviceDocument>).findOne({ _id: ctx.params.id });
          if (!device) throw new Errors.MoleculerClientError(`device "${ctx.params.id}" is not registered`, 404, "DEVICE_NOT_FOUND", { id: ctx.params.id });
          return device;
        },
      },

      list: {
        rest: "GET /devices",
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
          return { total, devices };
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
        return updated;
      },
    },

    async started() {
      this.devices = (this.db as Db).collection<DeviceDocument>("devices");
      await this.devices.createIndex({ site: 1, area: 1, line: 1 });
    },
  };
}
