// System health: each service (its instances and their checks) and each server from
// GET /api/health, Kafka consumer lag per group from GET /api/system/kafka, the ingest rates, and
// dead letters where the gateway has them.
import type { KafkaLagReport } from "../../../src/kafka/consumer-lag.ts";
import type { SystemHealth } from "../../../src/shared/health-summary.ts";
import { api, type DeadLetterView, type StreamStats } from "../api.ts";
import { dateTime, h } from "../dom.ts";
import type { Screen } from "../main.ts";
import { LagWatch } from "../model.ts";

const POLL_MS = 5_000;
/** Longer than the historian's commit period (a 60 s time window plus grace), whose lag rises for that long and is normal. */
const LAG_WINDOW_MS = 120_000;
const LAG_TREND_TEXT = { normal: "", growing: "growing", "no-consumer": "no consumer" } as const;

/** `<prefix>scada.telemetry.v1` → `telemetry`. */
const topicLabel = (topic: string) => topic.replace(/^.*scada\.([a-z]+)\.v\d+$/, "$1");

const okCell = (ok: boolean) => h("td", { class: "ok", "data-ok": String(ok) }, ok ? "ok" : "DOWN");

export const renderHealth: Screen = (root) => {
  const status = h("span", { class: "state" });
  const services = h("tbody");
  const servers = h("tbody");
  const ingest = h("section", { class: "panel ingest" }, h("h2", {}, "Live ingest"));
  const lagState = h("span", { class: "muted" });
  const lagRows = h("tbody");
  const lag = h(
    "section",
    { class: "panel lag" },
    h("div", { class: "toolbar" }, h("h2", {}, "Kafka consumer lag"), lagState),
    h("table", { class: "compact" }, h("thead", {}, h("tr", {}, h("th", {}, "consumer group"), h("th", {}, "members"), h("th", { class: "num" }, "lag (records)"), h("th", {}, "per topic"), h("th", {}, ""))), lagRows),
  );
  const deadLetters = h("section", { class: "panel dead-letters", hidden: true });
  root.append(
    h("div", { class: "toolbar" }, h("h1", {}, "System health"), status),
    h(
      "div",
      { class: "health-grid" },
      h("div", { class: "main-column" }, h("section", { class: "panel" }, h("h2", {}, "Services"), h("table", { class: "compact services" }, h("thead", {}, h("tr", {}, h("th", {}, "service"), h("th", {}, "status"), h("th", {}, "instances and checks"))), services)), lag),
      h("div", { class: "side-column" }, h("section", { class: "panel" }, h("h2", {}, "Servers"), h("table", { class: "compact servers" }, h("thead", {}, h("tr", {}, h("th", {}, "server"), h("th", {}, "status"), h("th", {}, "detail"))), servers)), ingest),
    ),
    deadLetters,
  );

  const renderHealthReport = (health: SystemHealth) => {
    status.textContent = health.status;
    status.dataset.status = health.status === "ok" ? "running" : "faulted";
    services.replaceChildren(
      ...Object.entries(health.services).map(([name, s]) =>
        h(
          "tr",
          { "data-service": name },
          h("td", {}, name),
          okCell(s.ok),
          h("td", {}, s.instances.length === 0 ? h("span", { class: "abnormal" }, "no instance") : null, ...s.instances.map((i) => h("div", { class: "instance" }, h("span", { class: "muted" }, i.nodeID), ...Object.entries(i.checks).map(([check, c]) => h("span", { class: c.ok ? "check" : "check abnormal", title: c.detail ?? "" }, c.ok ? check : `${check}: ${c.detail ?? "down"}`))))),
        ),
      ),
    );
    servers.replaceChildren(...Object.entries(health.servers).map(([name, c]) => h("tr", { "data-server": name }, h("td", {}, name), okCell(c.ok), h("td", { class: "muted" }, c.detail ?? ""))));
  };

  const watch = new LagWatch(LAG_WINDOW_MS);
  let previousEnd: { at: number; end: number } | undefined;
  const renderLag = (report: KafkaLagReport) => {
    const telemetryEnd = report.topics.find((t) => topicLabel(t.topic) === "telemetry")?.end ?? 0;
    const rate = previousEnd && report.at > previousEnd.at ? ((telemetryEnd - previousEnd.end) * 1000) / (report.at - previousEnd.at) : null;
    if (!previousEnd || report.at > previousEnd.at) previousEnd = { at: report.at, end: telemetryEnd };
    lag.dataset.at = String(report.at);
    lagState.className = "muted";
    lagState.textContent = `read ${dateTime(report.at)} · telemetry into Kafka: ${rate === null ? "measuring…" : `${rate.toFixed(1)} records/s`}`;
    lagRows.replaceChildren(
      ...report.groups.map((g) => {
        const trend = g.lag === null ? "normal" : watch.take(g.groupId, report.at, g.lag, g.members);
        const perTopic = g.commits ? g.topics.map((t) => `${topicLabel(t.topic)} ${t.lag}`).join(" · ") : "reads from the latest offsets and never commits: Kafka cannot tell its lag";
        return h(
          "tr",
          { "data-group": g.name, "data-group-id": g.groupId, "data-lag": g.lag ?? "", "data-trend": trend },
          h("td", { title: g.groupId }, g.commits ? g.name : `live stream (${g.groupId.split(".").slice(-2, -1)[0] ?? ""})`),
          h("td", { class: "muted", title: g.state }, `${g.members} · ${g.state}`),
          h("td", { class: "num" }, g.lag === null ? "—" : String(g.lag)),
          h("td", { class: "muted" }, perTopic),
          h("td", { class: "trend" }, LAG_TREND_TEXT[trend]),
        );
      }),
    );
  };
  const renderLagError = (err: Error) => {
    lagState.className = "abnormal";
    lagState.textContent = err.message;
  };

  let previous: { at: number; stats: StreamStats } | undefined;
  const renderIngest = (stats: StreamStats) => {
    const now = Date.now();
    const rate = previous ? ((stats.records.telemetry - previous.stats.records.telemetry) * 1000) / (now - previous.at) : null;
    previous = { at: now, stats };
    const line = (label: string, value: string) => h("div", { class: "kpi" }, h("span", { class: "muted" }, label), h("strong", {}, value));
    ingest.replaceChildren(h("h2", {}, "Live ingest (this gateway's stream)"), line("telemetry records / s", rate === null ? "measuring…" : rate.toFixed(1)), line("stream clients", String(stats.clients)), line("events sent / dropped", `${stats.eventsSent} / ${stats.eventsDropped}`));
  };

  const renderDeadLetters = (answer: { total: number; items: DeadLetterView[] } | null) => {
    deadLetters.hidden = answer === null;
    if (!answer) return;
    deadLetters.replaceChildren(
      h("h2", {}, `Dead letters (${answer.total})`),
      h("table", { class: "compact" }, h("thead", {}, h("tr", {}, ...["at", "reason", "source", "device", "status"].map((c) => h("th", {}, c)))), h("tbody", {}, ...answer.items.map((d) => h("tr", {}, h("td", {}, dateTime(d.at)), h("td", {}, d.reason), h("td", { class: "muted" }, d.source), h("td", {}, d.device ?? ""), h("td", {}, d.status))))),
    );
  };

  const poll = () => {
    void api.health().then(renderHealthReport, (err: Error) => {
      status.textContent = `unreachable: ${err.message}`;
      status.dataset.status = "offline";
    });
    void api.streamStats().then(renderIngest, () => undefined);
    void api.kafkaLag().then(renderLag, renderLagError);
    void api.deadLetters().then(renderDeadLetters, () => renderDeadLetters(null));
  };
  poll();
  const timer = setInterval(poll, POLL_MS);
  return () => clearInterval(timer);
};
