// Alarm console: alarms sorted by priority, acknowledge / shelve / comment with a comment, filters,
// the selected alarm's journal, and the alarm-system KPIs (docs/alarms.md).
import type { AlarmKpis } from "../../../src/alarms/alarm-kpis.ts";
import type { AlarmDocument } from "../../../src/shared/types.ts";
import { api } from "../api.ts";
import { confirmDialog, dateTime, duration, h, time } from "../dom.ts";
import type { Screen } from "../main.ts";
import { compareAlarmPriority } from "../model.ts";
import { may, needsRole } from "../session.ts";

/** Console views and the `state` queries behind them. */
const VIEWS: Record<string, { label: string; states: (string | undefined)[] }> = {
  attention: { label: "Active and unacknowledged", states: ["active", "rtn-unack"] },
  unacknowledged: { label: "Unacknowledged", states: ["unacknowledged"] },
  hidden: { label: "Shelved, suppressed, out of service", states: ["hidden"] },
  all: { label: "All (history)", states: [undefined] },
};
const SHELVE_OPTIONS: [string, string][] = [
  ["900000", "15 min"],
  ["3600000", "1 h"],
  ["28800000", "8 h"],
];

export const renderAlarms: Screen = (root, feed) => {
  const viewSelect = h("select", { "aria-label": "view", "data-role": "view" }, ...Object.entries(VIEWS).map(([value, v]) => h("option", { value }, v.label)));
  const severitySelect = h("select", { "aria-label": "severity", "data-role": "severity" }, h("option", { value: "" }, "any severity"), ...["critical", "high", "medium", "low"].map((s) => h("option", { value: s }, s)));
  const deviceInput = h("input", { type: "search", placeholder: "device or tag", "aria-label": "device or tag", "data-role": "text-filter" });
  const rows = h("tbody");
  const totalEl = h("span", { class: "muted" });
  const journal = h("section", { class: "panel journal" }, h("h2", {}, "Journal"), h("p", { class: "muted" }, "Select an alarm to see its journal."));
  const kpis = h("section", { class: "panel kpis" }, h("h2", {}, "Alarm KPIs (24 h)"));
  root.append(
    h("div", { class: "toolbar" }, h("h1", {}, "Alarms"), viewSelect, severitySelect, deviceInput, totalEl),
    h(
      "div",
      { class: "alarm-grid" },
      h("section", { class: "panel console" }, h("table", { class: "compact alarms" }, h("thead", {}, h("tr", {}, ...["priority", "device", "tag", "condition", "state", "value", "activated", "message", ""].map((c) => h("th", {}, c)))), rows)),
      h("div", { class: "side-column" }, journal, kpis),
    ),
  );

  let selected: string | undefined;
  let alarms: AlarmDocument[] = [];

  const showJournal = async (id: string) => {
    selected = id;
    for (const tr of rows.querySelectorAll("tr")) tr.classList.toggle("selected", tr.dataset.alarmId === id);
    const { alarm, journal: page } = await api.alarm(id);
    journal.replaceChildren(
      h("h2", {}, `Journal · ${alarm._id}`),
      h("ol", { class: "journal-entries" }, ...page.entries.map((e) => h("li", { "data-action": e.action }, h("span", { class: "muted" }, time(e.at)), ` ${e.action} `, h("span", { class: "muted" }, `${e.from} → ${e.to} by ${e.user}`), e.comment ? h("div", { class: "comment" }, e.comment) : null))),
      page.total > page.entries.length ? h("p", { class: "muted" }, `${page.entries.length} of ${page.total} entries`) : "",
    );
  };

  const act = async (alarm: AlarmDocument, action: "ack" | "shelve" | "unshelve" | "comment") => {
    const fields =
      action === "shelve"
        ? [{ name: "durationMs", label: "for", options: SHELVE_OPTIONS, value: "3600000" }, { name: "comment", label: "reason (required)", required: true }]
        : [{ name: "comment", label: action === "comment" ? "comment" : "comment (optional)", required: action === "comment" }];
    const values = await confirmDialog(`${action === "ack" ? "Acknowledge" : action[0].toUpperCase() + action.slice(1)} ${alarm._id}`, alarm.message ?? "", fields, action === "ack" ? "Acknowledge" : "OK");
    if (!values) return;
    try {
      if (action === "ack") await api.ack(alarm._id, values.comment ?? "");
      else if (action === "shelve") await api.shelve(alarm._id, Number(values.durationMs), values.comment ?? "");
      else if (action === "unshelve") await api.unshelve(alarm._id, values.comment ?? "");
      else await api.comment(alarm._id, values.comment ?? "");
    } catch (err) {
      totalEl.textContent = `${action} failed: ${(err as Error).message}`;
      totalEl.classList.add("abnormal");
      return;
    }
    await reload();
    await showJournal(alarm._id);
    void loadKpis().catch(() => undefined);
  };

  const render = () => {
    const text = deviceInput.value.trim().toLowerCase();
    const shown = alarms.filter((a) => !text || a.device.toLowerCase().includes(text) || a.tag.toLowerCase().includes(text)).sort(compareAlarmPriority);
    totalEl.classList.remove("abnormal");
    totalEl.textContent = `${shown.length} alarm${shown.length === 1 ? "" : "s"}`;
    rows.replaceChildren(
      ...shown.map((a) => {
        const button = (label: string, action: "ack" | "shelve" | "unshelve" | "comment", enabled = true) =>
          h("button", { type: "button", class: "secondary small", "data-act": action, disabled: !enabled || !may("operator"), title: may("operator") ? undefined : needsRole("operator"), onclick: (e: Event) => (e.stopPropagation(), void act(a, action)) }, label);
        const tr = h(
          "tr",
          { "data-alarm-id": a._id, "data-severity": a.active ? a.severity : "", "data-acked": String(a.acked), "data-state": a.state, class: a._id === selected ? "selected" : undefined },
          h("td", { class: "priority" }, h("span", { class: `sev sev-${a.severity}` }, a.severity)),
          h("td", {}, h("a", { href: `#/device/${encodeURIComponent(a.device)}` }, a.device)),
          h("td", {}, a.tag),
          h("td", {}, a.kind),
          h("td", { class: "state" }, a.state),
          h("td", { class: "num" }, `${a.lastValue ?? a.value} / ${a.limit}`),
          h("td", {}, dateTime(a.activatedAt)),
          h("td", { class: "message" }, a.message ?? ""),
          h("td", { class: "actions" }, button("Ack", "ack", !a.acked), a.state === "shelved" ? button("Unshelve", "unshelve") : button("Shelve", "shelve", a.state !== "out-of-service" && a.state !== "suppressed"), button("Comment", "comment")),
        );
        tr.addEventListener("click", () => void showJournal(a._id));
        return tr;
      }),
    );
    if (shown.length === 0) rows.append(h("tr", {}, h("td", { colspan: 9, class: "muted" }, "no alarms")));
  };

  const reload = async () => {
    const view = VIEWS[viewSelect.value] ?? VIEWS.attention;
    const answers = await Promise.all(view.states.map((state) => api.alarms({ ...(state ? { state } : {}), ...(severitySelect.value ? { severity: severitySelect.value } : {}) })));
    alarms = answers.flatMap((a) => a.alarms);
    render();
  };

  const loadKpis = async () => {
    const k: AlarmKpis = await api.kpis();
    const line = (label: string, value: string) => h("div", { class: "kpi" }, h("span", { class: "muted" }, label), h("strong", {}, value));
    kpis.replaceChildren(
      h("h2", {}, "Alarm KPIs (24 h)"),
      line("annunciated", String(k.annunciated)),
      line("per 10 min (avg / peak)", `${k.perTenMinutes.average.toFixed(2)} / ${k.perTenMinutes.peak}`),
      line("flood intervals", String(k.perTenMinutes.floodIntervals)),
      line("mean time to ack", duration(k.timeToAck.meanMs)),
      line("standing", String(k.standing.count)),
      line("chattering", String(k.chattering.length)),
      h("h3", {}, "Top bad actors"),
      h("ol", { class: "bad-actors" }, ...k.topBadActors.slice(0, 5).map((a) => h("li", {}, `${a.alarmId} · ${a.annunciated}`))),
    );
  };

  viewSelect.addEventListener("change", () => void reload());
  severitySelect.addEventListener("change", () => void reload());
  deviceInput.addEventListener("input", render);
  const stopFeed = feed.onChange(() => {
    void reload();
    if (selected) void showJournal(selected).catch(() => undefined);
  });
  void reload().catch((err: Error) => rows.replaceChildren(h("tr", {}, h("td", { colspan: 9, class: "abnormal" }, err.message))));
  void loadKpis().catch(() => kpis.append(h("p", { class: "muted" }, "KPIs unavailable")));
  const kpiTimer = setInterval(() => void loadKpis().catch(() => undefined), 30_000);
  return () => {
    stopFeed();
    clearInterval(kpiTimer);
  };
};
