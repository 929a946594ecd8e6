import type { StreamClientOptions } from "./stream-client.ts";

/** Live-stream settings of an api replica (from the validated configuration, `config.stream`). */
export interface StreamOptions extends StreamClientOptions {
  /** Clients per api replica at most; more get 503. */
  maxClients: number;
  /** `filter` parameters per client at most. */
  maxFilters: number;
}
