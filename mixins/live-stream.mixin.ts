import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Consumer, EachBatchPayload, Kafka } from "kafkajs";
import type { Redis } from "ioredis";
import { Errors, type Context, type ServiceSchema } from "moleculer";
import type { GatewayResponse, IncomingRequest } from "moleculer-web";
import type { PlantwireConfig } from "../src/shared/config.ts";
import { createKafkaClient } from "./kafka.mixin.ts";
import { consumerGroupId, LIVE_STREAM_GROUP } from "../src/kafka/consumer-lag.ts";
import { ValidationError } from "../src/shared/errors.ts";
import type { HealthCheck } from "../src/shared/health.ts";
import { kafkaTopic } from "../src/shared/topics.ts";
import type { DeviceAddress, DeviceDocument, LatestValue } from "../src/shared/types.ts";
import { sseComment, sseFrame, sseRetry } from "../src/stream/sse.ts";
import type { StreamClient } from "../src/stream/stream-client.ts";
import { parseStreamQuery, subscriptionMatches, type StreamKind, type StreamSubscription } from "../src/stream/stream-filter.ts";
import { StreamHub, type StreamHubStats } from "../src/stream/stream-hub.ts";
import type { StreamOptions } from "../src/stream/stream-options.ts";

/** The live stream's path on the gateway (the `/api` route's `GET /stream` alias). */
export const STREAM_PATH = "/api/stream";

export interface StreamConsumerStats {
  groupId: string;
  /** joined: in its group, fetching; starting: connecting or joining; down: failed, retrying. */
  state: "starting" | "joined" | "down";
  partitions: number;
  lastFetchAt: number | null;
  lastError: string | null;
}

export interface StreamStats extends StreamHubStats {
  nodeID: string;
  consumer: StreamConsumerStats;
}

/** Devices per Redis pipeline when reading the snapshot. */
const SNAPSHOT_CHUNK = 500;
/** How long a snapshot waits for the address book's first fill from the registry. */
const SNAPSHOT_SEED_WAIT_MS = 2_000;
/** Devices per `devices.list` page when filling the address book. */
const SEED_PAGE = 1000;
/** A consumer that has not fetched for this long is unhealthy (it fetches every ~100 ms when idle). */
const FETCH_STALE_MS = 30_000;
const RETRY_MS = 2_000;
/** Records fanned out between two turns of the event loop. */
const FAN_OUT_SLICE = 100;
const TICK_MS = 1_000;
/** Reconnect delay suggested to EventSource clients. */
const CLIENT_RETRY_MS = 3_000;


class TopicsMissingError extends Error {
  readonly topics: string[];
  constructor(topics: string[]) {
    super(`the topics ${topics.join(", ")} do not exist yet`);
    this.name = "TopicsMissingError";
    this.topics = topics;
  }
}

/** The gateway alias of `GET /api/stream`: hands the request to the live-stream mixin. */
export function liveStreamAlias(req: IncomingRequest, res: GatewayResponse): void {
  (req.$service as unknown as { handleLiveStream(req: IncomingMessage, res: ServerResponse): void }).handleLiveStream(req, res);
}

function isStreamRequest(req: IncomingMessage): boolean {
  const path = (req.url ?? "").split("?")[0].replace(/\/+$/, "");
  return path === STREAM_PATH;
}

function invalidParameter(field: string, message: string): Errors.MoleculerClientError {
  // Shaped like the validator's errors: the gateway answers 400 naming the field.
  return new Errors.MoleculerClientError(message, 400, "VALIDATION_ERROR", [{ type: "stream", field, message }]);
}

/**
 * Live stream for the moleculer-web gateway: `GET /api/stream?filter=…&kinds=…` as Server-Sent
 * Events. Each replica reads the telemetry and alarms topics with its own consumer group from
 * the latest offsets (never committing, so every start is live) and fans records out to its
 * clients; a snapshot of the matching devices' latest values (Redis) comes first. See
 * docs/api.md "Live stream". Needs the redis mixin (`this.redis`, `this.redisKey`).
 */
export function liveStreamMixin(config: PlantwireConfig, options: StreamOptions = config.stream): Partial<ServiceSchema> {
  const topics: Record<string, StreamKind> = {
    [kafkaTopic(config.kafkaTopicPrefix, "telemetry")]: "telemetry",
    [kafkaTopic(config.kafkaTopicPrefix, "alarms")]: "alarms",
  };
  return {
    actions: {
      /** This replica's live-stream figures: clients, events sent and dropped, the consumer. */
      streamStats: {
        rest: "GET /stream/stats",
        role: "viewer",
        params: {},
        handler(): StreamStats {
          return { nodeID: this.broker.nodeID, ...(this.streamHub as StreamHub).stats(), consumer: { ...(this.streamConsumerStats as StreamConsumerStats) } };
        },
      },
    },

    events: {
      "device.registered"(ctx: Context<DeviceDocument>) {
        (this.streamHub as StreamHub).learnAddress({ site: ctx.params.site, area: ctx.params.area, line: ctx.params.line, device: ctx.params._id });
      },
    },

    methods: {
      /** `GET /api/stream`: validates, opens the event stream, writes the snapshot, then live events. */
      handleLiveStream(req: IncomingMessage & { originalUrl?: string }, res: ServerResponse): void {
        const hub = this.streamHub as StreamHub;
        let subscription: StreamSubscription;
        try {
          subscription = parseStreamQuery(new URL(req.originalUrl ?? req.url ?? "/", "http://gateway").searchParams, config.topicRoot, options.maxFilters);
        } catch (err) {
          if (!(err instanceof ValidationError)) throw err;
          this.sendError(req, res, invalidParameter(err.field ?? "filter", err.message));
          return;
        }
        if (this.streamStopping) {
          this.sendError(req, res, new Errors.MoleculerError("the live stream is stopping on this replica", 503, "STREAM_UNAVAILABLE"));
          return;
        }
        if (hub.size >= options.maxClients) {
          this.sendError(req, res, new Errors.MoleculerError(`this replica serves at most ${options.maxClients} live-stream clients`, 503, "STREAM_FULL"));
          return;
        }
        req.socket.setNoDelay(true);
        req.socket.setTimeout(0);
        req.socket.setKeepAlive(true, 30_000);
        res.writeHead(200, {
          "Content-Type": "text/event-stream; charset=utf-8",
          "Cache-Control": "no-cache, no-transform",
          Connection: "keep-alive",
          // Proxies (nginx) must not buffer the stream.
          "X-Accel-Buffering": "no",
        });
        const client = hub.connect(subscription, {
          write: (chunk) => res.write(chunk),
          end: () => res.end(),
          destroy: () => res.destroy(),
        });
        res.on("drain", () => client.drained());
        res.on("close", () => hub.disconnect(client));
        res.on("error", () => hub.disconnect(client));
        client.writeDirect(sseRetry(CLIENT_RETRY_MS) + sseComment(`plantwire live stream ${this.broker.nodeID} client ${client.id}`));
        this.writeStreamSnapshot(client, subscription)
          .catch((err: Error) => {
            this.logger.warn("live stream: the snapshot failed", { client: client.id, error: err.message });
            client.writeDirect(sseFrame("snapshot-complete", JSON.stringify({ devices: 0, error: "the latest values are unavailable" })));
          })
          .finally(() => client.release());
      },

      /** One `snapshot` event per matching device with latest values in Redis, then `snapshot-complete`. */
      async writeStreamSnapshot(client: StreamClient, subscription: StreamSubscription): Promise<void> {
        const hub = this.streamHub as StreamHub;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([this.streamSeeded as Promise<void>, new Promise((resolve) => (timer = setTimeout(resolve, SNAPSHOT_SEED_WAIT_MS)))]).finally(() => clearTimeout(timer));
        const devices = hub.knownAddresses().filter((address) => subscriptionMatches(subscription, address, "telemetry"));
        devices.sort((a, b) => a.device.localeCompare(b.device));
        const redis = this.redis as Redis;
        let sent = 0;
        for (let i = 0; i < devices.length && !client.closed; i += SNAPSHOT_CHUNK) {
          const chunk = devices.slice(i, i + SNAPSHOT_CHUNK);
          const pipeline = redis.pipeline();
          for (const address of chunk) pipeline.hgetall(this.redisKey("latest", address.device));
          const results = (await pipeline.exec()) ?? [];
          let frames = "";
          chunk.forEach((address: DeviceAddress, index: number) => {
            const [err, stored] = results[index] ?? [null, null];
            if (err) throw err;
            const fields = (stored ?? {}) as Record<string, string>;
            if (Object.keys(fields).length === 0) return;
            const values: Record<string, LatestValue> = {};
            for (const [tag, json] of Object.entries(fields)) values[tag] = JSON.parse(json) as LatestValue;
            frames += sseFrame("snapshot", JSON.stringify({ ...address, values }));
            sent++;
          });
          if (frames) client.writeDirect(frames);
        }
        client.writeDirect(sseFrame("snapshot-complete", JSON.stringify({ devices: sent })));
      },

      /** Fills the address book from the registry once (telemetry and registrations keep it fresh). */
      async seedStreamAddresses(): Promise<void> {
        const hub = this.streamHub as StreamHub;
        while (!this.streamStopping) {
          try {
            await this.broker.waitForServices(["devices"], 5_000);
            for (let offset = 0; ; offset += SEED_PAGE) {
              const page = await this.broker.call<{ devices: DeviceDocument[] }, { limit: number; offset: number }>("devices.list", { limit: SEED_PAGE, offset });
              for (const d of page.devices) hub.learnAddress({ site: d.site, area: d.area, line: d.line, device: d._id });
              if (page.devices.length < SEED_PAGE) return;
            }
          } catch (err) {
            this.logger.debug("live stream: the device registry is not available yet", { error: (err as Error).message });
            await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
          }
        }
      },

      /** Keeps this replica's consumer running: (re)creates it until it joins, and after it fails. */
      async runStreamConsumer(): Promise<void> {
        const stats = this.streamConsumerStats as StreamConsumerStats;
        while (!this.streamStopping) {
          try {
            await this.startStreamConsumer();
            return;
          } catch (err) {
            stats.state = "down";
            stats.lastError = (err as Error).message;
            if (!(err instanceof TopicsMissingError)) this.logger.warn("live stream: the Kafka consumer could not start; retrying", { error: stats.lastError });
            else if (!this.streamToldTopicsMissing) this.logger.info("live stream: waiting for the Kafka topics", { topics: err.topics });
            this.streamToldTopicsMissing ||= err instanceof TopicsMissingError;
            const consumer = this.streamConsumer as Consumer | null;
            this.streamConsumer = null;
            await consumer?.disconnect().catch(() => undefined);
            await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
          }
        }
      },

      async startStreamConsumer(): Promise<void> {
        const stats = this.streamConsumerStats as StreamConsumerStats;
        const hub = this.streamHub as StreamHub;
        stats.state = "starting";
        // The services that own the topics create them; subscribing before would only fill the log.
        const admin = (this.streamKafka as Kafka).admin();
        await admin.connect();
        try {
          const existing = new Set(await admin.listTopics());
          const missing = Object.keys(topics).filter((t) => !existing.has(t));
          if (missing.length > 0) throw new TopicsMissingError(missing);
        } finally {
          await admin.disconnect();
        }
        const consumer = (this.streamKafka as Kafka).consumer({
          groupId: stats.groupId,
          // Never create a topic with the broker's defaults (a deleted one must come back with its partitions).
          allowAutoTopicCreation: false,
          sessionTimeout: 10_000,
          heartbeatInterval: 1_000,
          rebalanceTimeout: 10_000,
          maxWaitTimeInMs: 100,
          retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: 5_000 },
        });
        this.streamConsumer = consumer;
        consumer.on(consumer.events.GROUP_JOIN, (event) => {
          stats.partitions = Object.values(event.payload.memberAssignment).reduce((sum, p) => sum + p.length, 0);
        });
        // "joined" once the first fetch after the join ran: offsets are resolved to the latest by then.
        consumer.on(consumer.events.FETCH, () => {
          stats.lastFetchAt = Date.now();
          if (stats.state === "starting") {
            stats.state = "joined";
            stats.lastError = null;
            this.logger.info("live stream: consuming", { groupId: stats.groupId, partitions: stats.partitions });
          }
        });
        consumer.on(consumer.events.CRASH, (event) => {
          stats.lastError = event.payload.error.message;
          if (event.payload.restart) {
            stats.state = "starting";
            return;
          }
          stats.state = "down";
          this.logger.error("live stream: the Kafka consumer crashed; recreating it", { error: stats.lastError });
          if (!this.streamStopping) void consumer.disconnect().catch(() => undefined).then(() => this.runStreamConsumer());
        });
        await consumer.connect();
        // Never committed and from the latest offsets: a live stream has no business replaying history.
        await consumer.subscribe({ topics: Object.keys(topics), fromBeginning: false });
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: true,
          partitionsConsumedConcurrently: 1,
          eachBatch: async ({ batch }: EachBatchPayload) => {
            const kind = topics[batch.topic];
            const messages = batch.messages;
            for (let start = 0; start < messages.length; start += FAN_OUT_SLICE) {
              // Between slices of a large batch (a burst, a consumer catching up) sockets get the
              // event loop to drain, so a burst larger than a queue drops only for slow clients.
              if (start > 0) await new Promise((resolve) => setImmediate(resolve));
              const now = Date.now();
              for (const message of messages.slice(start, start + FAN_OUT_SLICE)) {
                if (message.value) hub.handleRecord(kind, message.value.toString(), message.key?.toString() ?? null, now);
              }
              hub.flush(now);
            }
          },
        });
      },

      async healthCheckStream(): Promise<HealthCheck> {
        const stats = this.streamConsumerStats as StreamConsumerStats;
        if (stats.state !== "joined") return { ok: false, detail: `live-stream consumer ${stats.state}${stats.lastError ? `: ${stats.lastError}` : ""}` };
        const age = Date.now() - (stats.lastFetchAt ?? 0);
        if (age > FETCH_STALE_MS) return { ok: false, detail: `live-stream consumer has not fetched for ${Math.round(age / 1000)} s` };
        return { ok: true };
      },
    },

    created() {
      // Live-stream requests last as long as their clients stay: a graceful stop must not wait for
      // them (it waits for tracked requests before stopped() runs, which ends the streams).
      const settings = this.settings as { rootCallOptions?: unknown };
      const previous = settings.rootCallOptions;
      settings.rootCallOptions = function (this: unknown, callOptions: Record<string, unknown>, req: IncomingMessage, res: ServerResponse) {
        if (typeof previous === "function") previous.call(this, callOptions, req, res);
        else if (previous && typeof previous === "object") Object.assign(callOptions, previous);
        if (isStreamRequest(req)) callOptions.tracking = false;
      };
      this.streamHub = new StreamHub(options);
      this.streamStopping = false;
      this.streamConsumer = null;
      this.streamToldTopicsMissing = false;
      this.streamConsumerStats = {
        // Unique per process: a restarted replica never shares a group with its own ghost.
        groupId: consumerGroupId(config.namespace, `${LIVE_STREAM_GROUP}.${this.broker.nodeID}.${randomUUID().slice(0, 8)}`),
        state: "starting",
        partitions: 0,
        lastFetchAt: null,
        lastError: null,
      } satisfies StreamConsumerStats;
      this.streamKafka = createKafkaClient(config, `${config.namespace}-${this.name}-stream-${this.broker.nodeID}`, this.logger, "kafka (live stream)");
    },

    started() {
      // Neither waits: the gateway serves REST while Kafka or the registry are still away.
      this.streamSeeded = this.seedStreamAddresses();
      void this.runStreamConsumer();
      this.streamTimer = setInterval(() => (this.streamHub as StreamHub).tick(Date.now()), TICK_MS);
      this.streamTimer.unref();
    },

    async stopped() {
      this.streamStopping = true;
      clearInterval(this.streamTimer);
      (this.streamHub as StreamHub).closeAll();
      await (this.streamConsumer as Consumer | null)?.disconnect().catch(() => undefined);
    },
  };
}
