import type { Context, ServiceSchema } from "moleculer";
import type { DeviceDocument, TagDefinition } from "../src/shared/types.ts";

/** How long a device the registry did not know stays known-unknown (a flood of unknown ids must not hammer the registry). */
const UNKNOWN_TTL_MS = 5_000;
const UNKNOWN_MAX = 10_000;

/**
 * A local copy of the registry's tag definitions, filled on demand from `devices.get` and kept
 * fresh by `device.registered` events, so the hot path does not call the registry per message.
 */
export function deviceCacheMixin(): Partial<ServiceSchema> {
  return {
    dependencies: ["devices"],

    events: {
      "device.registered"(ctx: Context<DeviceDocument>) {
        this.rememberDeviceTags(ctx.params._id, ctx.params.tags);
      },
    },

    methods: {
      rememberDeviceTags(device: string, tags: TagDefinition[]): void {
        (this.deviceTags as Map<string, TagDefinition[]>).set(device, tags);
        (this.unknownDevices as Map<string, number>).delete(device);
      },

      /** The device's tag definitions, or undefined when the registry does not know it. */
      async lookupDeviceTags(device: string): Promise<TagDefinition[] | undefined> {
        const cache = this.deviceTags as Map<string, TagDefinition[]>;
        const known = cache.get(device);
        if (known) return known;
        const unknown = this.unknownDevices as Map<string, number>;
        if ((unknown.get(device) ?? 0) > Date.now()) return undefined;
        try {
          const found: DeviceDocument = await this.broker.call("devices.get", { id: device });
          this.rememberDeviceTags(device, found.tags);
          return found.tags;
        } catch (err) {
          if ((err as { code?: number }).code !== 404) throw err;
          if (unknown.size >= UNKNOWN_MAX) unknown.clear();
          unknown.set(device, Date.now() + UNKNOWN_TTL_MS);
          return undefined;
        }
      },
    },

    created() {
      this.deviceTags = new Map<string, TagDefinition[]>();
      this.unknownDevices = new Map<string, number>();
    },
  };
}
