// Kafka consumer lag of plantwire's consumer groups, read with the admin API (committed offsets
// against the topics' end offsets). Served by `GET /api/system/kafka` (mixins/kafka-lag.mixin.ts).
import { KAFKA_TOPICS, kafkaTopic, type KafkaTopicKind } from "../shared/topics.ts";

/** The consumer groups the services run (each through the Kafka mixin's `kafkaConsume`) and the topics they read. */
export const CONSUMER_GROUPS = {
  historian: ["telemetry"],
  "anomaly-detector": ["telemetry", "events"],
  alarms: ["alarms"],
  "dead-letters": ["deadletter"],
} as const satisfies Record<string, readonly KafkaTopicKind[]>;

export type ConsumerGroupName = keyof typeof CONSUMER_GROUPS;

/** The live stream reads telemetry and alarms with one group per gateway process, under this suffix. */
export const LIVE_STREAM_GROUP = "api-stream";

/** A group id carries the Moleculer namespace, so test runs and deployments never share a group. */
export function consumerGroupId(namespace: string, group: string): string {
  return `${namespace}.${group}`;
}

/** The part of kafkajs' Admin this module uses (a fake in the unit tests). */
export interface LagAdmin {
  listGroups(): Promise<{ groups: { groupId: string }[] }>;
  describeGroups(groupIds: string[]): Promise<{ groups: { groupId: string; state: string; members: unknown[] }[] }>;
  fetchTopicOffsets(topic: string): Promise<{ partition: number; high: string; low: string }[]>;
  fetchOffsets(options: { groupId: string; topics: string[] }): Promise<{ topic: string; partitions: { partition: number; offset: string }[] }[]>;
}

export interface PartitionLag {
  partition: number;
  /** The next offset the group will read; null when it has committed nothing there. */
  committed: number | null;
  /** The partition's end offset (high watermark). */
  end: number;
  /** Records not yet committed: end − committed, or end − the log start while nothing is committed (groups start from the beginning). */
  lag: number;
}

export interface TopicLag {
  topic: string;
  lag: number;
  partitions: PartitionLag[];
}

export interface ConsumerGroupLag {
  /** `historian`, `anomaly-detector`, …, or `api-stream` for a gateway's live stream. */
  name: string;
  groupId: string;
  /** The broker's view of the group: Stable, PreparingRebalance, CompletingRebalance, Empty (no member) or Dead (unknown). */
  state: string;
  members: number;
  /**
   * False for the live stream: it reads from the latest offsets and never commits, so Kafka
   * cannot tell its lag (`lag` is null and `topics` empty then).
   */
  commits: boolean;
  lag: number | null;
  topics: TopicLag[];
}

export interface TopicOffsets {
  topic: string;
  /** Sum of the partitions' end offsets: records ever written (a rate when read twice). */
  end: number;
  partitions: { partition: number; start: number; end: number }[];
}

export interface KafkaLagReport {
  /** When Kafka was read (epoch ms); answers are cached for a moment. */
  at: number;
  groups: ConsumerGroupLag[];
  topics: TopicOffsets[];
}

export interface LagReaderOptions {
  namespace: string;
  topicPrefix: string;
  /** How long an answer is reused: a dashboard poll must not become a request to Kafka per viewer. */
  cacheMs: number;
  now?: () => number;
}

/** Reads the lag report through an admin client, at most once per `cacheMs`; concurrent callers share one read. */
export class ConsumerLagReader {
  readonly #admin: () => Promise<LagAdmin>;
  readonly #options: LagReaderOptions;
  readonly #now: () => number;
  #cached: { at: number; report: Promise<KafkaLagReport> } | null = null;

  constructor(admin: () => Promise<LagAdmin>, options: LagReaderOptions) {
    this.#admin = admin;
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  read(): Promise<KafkaLagReport> {
    const now = this.#now();
    if (this.#cached && now - this.#cached.at < this.#options.cacheMs) return this.#cached.report;
    const report = this.#admin().then((admin) => readLagReport(admin, this.#options.namespace, this.#options.topicPrefix, now));
    const cached = { at: now, report };
    this.#cached = cached;
    // A failed read is not cached: the next request tries Kafka again.
    report.catch(() => {
      if (this.#cached === cached) this.#cached = null;
    });
    return report;
  }
}

const toNumber = (offset: string): number => Number(offset);

/** One read of every plantwire group's committed offsets and the end offsets of the topics they read. */
export async function readLagReport(admin: LagAdmin, namespace: string, topicPrefix: string, at: number): Promise<KafkaLagReport> {
  const streamPrefix = consumerGroupId(namespace, `${LIVE_STREAM_GROUP}.`);
  const { groups: listed } = await admin.listGroups();
  const streamGroups = listed.map((g) => g.groupId).filter((id) => id.startsWith(streamPrefix)).sort();
  const named = (Object.keys(CONSUMER_GROUPS) as ConsumerGroupName[]).map((name) => ({ name, groupId: consumerGroupId(namespace, name), kinds: CONSUMER_GROUPS[name] as readonly KafkaTopicKind[] }));

  const [described, topics] = await Promise.all([
    admin.describeGroups([...named.map((g) => g.groupId), ...streamGroups]),
    Promise.all(
      (Object.keys(KAFKA_TOPICS) as KafkaTopicKind[]).map(async (kind): Promise<TopicOffsets> => {
        const topic = kafkaTopic(topicPrefix, kind);
        const partitions = (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, start: toNumber(p.low), end: toNumber(p.high) })).sort((a, b) => a.partition - b.partition);
        return { topic, end: partitions.reduce((sum, p) => sum + p.end, 0), partitions };
      }),
    ),
  ]);
  const byTopic = new Map(topics.map((t) => [t.topic, t]));
  const describe = (groupId: string) => described.groups.find((g) => g.groupId === groupId);

  const groups = await Promise.all(
    named.map(async ({ name, groupId, kinds: groupKinds }): Promise<ConsumerGroupLag> => {
      const names = groupKinds.map((kind) => kafkaTopic(topicPrefix, kind));
      const committed = await admin.fetchOffsets({ groupId, topics: names });
      const topicLags = names.map((topic): TopicLag => {
        const offsets = new Map((committed.find((c) => c.topic === topic)?.partitions ?? []).map((p) => [p.partition, toNumber(p.offset)]));
        const partitions = (byTopic.get(topic)?.partitions ?? []).map((p): PartitionLag => {
          const offset = offsets.get(p.partition);
          const next = offset !== undefined && offset >= 0 ? offset : null;
          return { partition: p.partition, committed: next, end: p.end, lag: Math.max(0, p.end - (next ?? p.start)) };
        });
        return { topic, lag: partitions.reduce((sum, p) => sum + p.lag, 0), partitions };
      });
      const info = describe(groupId);
      return { name, groupId, state: info?.state ?? "Dead", members: info?.members.length ?? 0, commits: true, lag: topicLags.reduce((sum, t) => sum + t.lag, 0), topics: topicLags };
    }),
  );
  const stream = streamGroups.map((groupId): ConsumerGroupLag => {
    const info = describe(groupId);
    return { name: LIVE_STREAM_GROUP, groupId, state: info?.state ?? "Dead", members: info?.members.length ?? 0, commits: false, lag: null, topics: [] };
  });
  return { at, groups: [...groups, ...stream], topics };
}
