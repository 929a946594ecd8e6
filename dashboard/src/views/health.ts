// System health: each service (its instances and their checks) and each server from
// GET /api/health, the live stream's ingest rate, and dead letters where the gateway has them.
import type { SystemHealth } from "../../../src/shared/health-summary.ts";
import { api, type DeadLetterView, type StreamStats } from "../api.ts";
import { dateTime, h } from "../dom.ts";
import type { Screen } from "../main.ts";

const POLL_MS = 5_000;

const okCell = (ok: boolean) => h("td", { class: "ok", "data-ok": String(ok) }, ok ? "ok" : "DOWN");

export const renderHealth: Screen = (root) => {
  const status = h("span", { class: "state" });
  const services = h("tbody");
  const servers = h("tbody");
  const ingest = h("section", { class: "panel ingest" }, h("h2", {}, "Live ingest"));
  const deadLetters = h("section", { class: "panel dead-letters", hidden: true });
  root.append(
    h("div", { class: "toolbar" }, h("h1", {}, "System health"), status),
    h(
      "div",
      { class: "health-grid" },
      h("section", { class: "panel" }, h("h2", {}, "Services"), h("table", { class: "compact services" }, h("thead", {}, h("tr", {}, h("th", {}, "service"), h("th", {}, "status"), h("th", {}, "instances and checks"))), services)),
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
    void api.deadLetters().then(renderDeadLetters, () => renderDeadLetters(null));
  };
  poll();
  const timer = setInterval(poll, POLL_MS);
  return () => clearInterval(timer);
};
