// Properties plantwire adds to Moleculer's action schemas (the template project's way: augment, do not cast).
import type { OpenApiActionInfo } from "../src/api/openapi.ts";
import type { RouteRole } from "../src/auth/roles.ts";

declare module "moleculer" {
  interface ActionSchema {
    /** How the action's REST route reads in the OpenAPI document and the API reference (src/api/openapi.ts). */
    openapi?: OpenApiActionInfo;
    /** The lowest role that may call the action's REST route, or "public"; a REST action without one is refused (src/auth/roles.ts). */
    role?: RouteRole;
    /** The action's own request timeout in ms, which Moleculer's timeout middleware honours (missing from its types). */
    timeout?: number;
  }
}
