import type { Context, ServiceSchema } from "moleculer";
import type { DeviceDocument, TagDefinition } from "../src/shared/types.ts";

/**
 * A local copy of the registry's tag definitions, filled on demand from `devices.get` and kept
 * fresh by `device.registered` events, so the hot path does not call the registry per message.
 */
export function deviceCacheMixin(): Partial<ServiceSchema> {
  return {
    dependencies: ["devices"],

    events: {
      "device.registered"(ctx: Context<DeviceDocument>) {
        (this.deviceTags as Map<string, TagDefinition[]>).set(ctx.params._id, ctx.params.tags);
      },
    },

    methods: {
      rememberDeviceTags(device: string, tags: TagDefinition[]): void {
        (this.deviceTags as Map<string, TagDefinition[]>).set(device, tags);
      },

      /** The device's tag definitions, or undefined when the registry does not know it. */
      async lookupDeviceTags(device: string): Promise<TagDefinition[] | undefined> {
        const cache = this.deviceTags as Map<string, TagDefinition[]>;
        const known = cache.get(device);
        if (known) return known;
        try {
          const found: DeviceDocument = await this.broker.call("devices.get", { id: device });
          cache.set(device, found.tags);
          return found.tags;
        } catch (err) {
          if ((err as { code?: number }).code === 404) return undefined;
          throw err;
        }
      },
    },

    created() {
      this.deviceTags = new Map<string, TagDefinition[]>();
    },
  };
}
