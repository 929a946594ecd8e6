// Device detail: every tag's live value with unit and quality, trends of the ticked tags with the
// anomaly score under them, the device's alarms, and its command panel. Subscribes to this one
// device only.
import type { AlarmDocument, DeviceDocument, Quality, TagDefinition, TagValue } from "../../../src/shared/types.ts";
import { api } from "../api.ts";
import { dateTime, h, setAttr, setText, time } from "../dom.ts";
import { FrameBatcher, subscribe } from "../live.ts";
import type { AlarmFeed, Screen } from "../main.ts";
import { deviceFilter, deviceStatus, formatValue } from "../model.ts";
import { AnomalyPanel } from "./anomaly.ts";
import { CommandPanel } from "./commands.ts";
import { TrendPanel } from "./trend.ts";

interface Row {
  value: HTMLElement;
  quality: HTMLElement;
  ts: HTMLElement;
  el: HTMLTableRowElement;
  latest: { v: TagValue; q: Quality; ts: number } | undefined;
}

function limitsText(tag: TagDefinition): string {
  const parts = (["lolo", "lo", "hi", "hihi"] as const).filter((k) => tag[k] !== undefined).map((k) => `${k.toUpperCase()} ${tag[k]}`);
  return parts.join(" · ");
}

export const renderDevice: Screen = (root, feed, id) => {
  if (!id) {
    location.hash = "#/";
    return () => undefined;
  }
  root.append(h("p", { class: "muted" }, `loading ${id}…`));
  let cleanup: (() => void)[] = [];
  let closed = false;

  void api.device(id).then(
    (device) => {
      if (closed) return;
      cleanup = show(root, feed, device);
    },
    (err: Error) => root.replaceChildren(h("p", { class: "abnormal" }, `${id}: ${err.message}`), h("a", { href: "#/" }, "back to the overview")),
  );
  return () => {
    closed = true;
    for (const fn of cleanup) fn();
  };
};

function show(root: HTMLElement, feed: AlarmFeed, device: DeviceDocument): (() => void)[] {
  const statusEl = h("span", { class: "state" });
  const header = h("div", { class: "toolbar" }, h("h1", {}, device._id), h("span", { class: "muted" }, `${device.machineType} · ${device.site} / ${device.area} / ${device.line}`), statusEl);
  const rows = new Map<string, Row>();
  const trend = new TrendPanel(device);
  const anomaly = new AnomalyPanel(device, () => trend.window);
  const keyTag = device.tags.find((t) => t.type === "number" && (t.hi !== undefined || t.lo !== undefined));
  const tbody = h("tbody");
  for (const tag of device.tags) {
    const checkbox = h("input", { type: "checkbox", "aria-label": `trend ${tag.name}`, "data-trend": tag.name, checked: tag === keyTag, disabled: tag.type === "string" });
    checkbox.addEventListener("change", () => {
      const chosen = [...tbody.querySelectorAll<HTMLInputElement>("input[data-trend]:checked")].map((c) => c.dataset.trend ?? "");
      trend.setTags(chosen);
    });
    const row: Row = { value: h("td", { class: "num" }, "—"), quality: h("td", {}, ""), ts: h("td", { class: "muted" }, ""), el: h("tr", { "data-tag": tag.name }), latest: undefined };
    row.el.append(h("td", {}, checkbox), h("td", {}, tag.name), row.value, h("td", { class: "muted" }, tag.unit), row.quality, h("td", { class: "muted" }, limitsText(tag)), row.ts);
    rows.set(tag.name, row);
    tbody.appendChild(row.el);
  }
  const tagTable = h("section", { class: "panel tags" }, h("h2", {}, "Tags"), h("table", { class: "compact" }, h("thead", {}, h("tr", {}, h("th", {}, "trend"), h("th", {}, "tag"), h("th", {}, "value"), h("th", {}, "unit"), h("th", {}, "quality"), h("th", {}, "limits"), h("th", {}, "time"))), tbody));
  const alarmList = h("tbody");
  const alarmsPanel = h("section", { class: "panel device-alarms" }, h("h2", {}, "Alarms of this device"), h("table", { class: "compact" }, h("thead", {}, h("tr", {}, h("th", {}, "severity"), h("th", {}, "tag"), h("th", {}, "state"), h("th", {}, "activated"), h("th", {}, "message"))), alarmList));
  const commands = new CommandPanel(device);
  root.replaceChildren(header, h("div", { class: "device-grid" }, h("div", { class: "main-column" }, tagTable, trend.el, anomaly.el), h("div", { class: "side-column" }, commands.el, alarmsPanel)));
  trend.setTags(keyTag ? [keyTag.name] : []);

  const paintRow = (row: Row, tag: TagDefinition) => {
    const latest = row.latest;
    if (!latest) return;
    const abnormal = typeof latest.v === "number" && ((tag.hi !== undefined && latest.v > tag.hi) || (tag.lo !== undefined && latest.v < tag.lo));
    setText(row.value, formatValue(latest.v));
    setAttr(row.el, "data-abnormal", abnormal ? "true" : "false");
    setText(row.quality, latest.q);
    setAttr(row.quality, "data-quality", latest.q);
    setText(row.ts, time(latest.ts));
  };
  let lastSeenAt: number | undefined;
  const paintStatus = () => {
    const status = deviceStatus(device.state, rows.get("state")?.latest?.v, lastSeenAt, Date.now(), 10_000);
    setText(statusEl, status);
    setAttr(statusEl, "data-status", status);
  };
  const batcher = new FrameBatcher<string>((tags) => {
    for (const name of tags) {
      const row = rows.get(name);
      const tag = device.tags.find((t) => t.name === name);
      if (row && tag) paintRow(row, tag);
    }
    paintStatus();
  });
  const take = (values: Record<string, { v: TagValue; q: Quality; ts?: number }>, ts: number) => {
    lastSeenAt = Math.max(lastSeenAt ?? 0, ts);
    for (const [name, sample] of Object.entries(values)) {
      const row = rows.get(name);
      if (!row) continue;
      row.latest = { v: sample.v, q: sample.q, ts: sample.ts ?? ts };
      batcher.mark(name);
    }
  };
  const close = subscribe([deviceFilter(device)], ["telemetry"], {
    snapshot: (s) => take(s.values, Math.max(...Object.values(s.values).map((v) => v.ts))),
    telemetry: (r) => {
      take(r.values, r.ts);
      trend.live(r);
    },
  });

  const loadAlarms = async () => {
    const { alarms } = await api.alarms({ device: device._id, limit: "100" });
    trend.setAlarms(alarms);
    anomaly.setAlarms(alarms);
    alarmList.replaceChildren(
      ...alarms.map((a: AlarmDocument) =>
        h("tr", { "data-alarm-id": a._id, "data-severity": a.active ? a.severity : "" }, h("td", {}, a.severity), h("td", {}, `${a.tag} ${a.kind}`), h("td", {}, a.state), h("td", {}, dateTime(a.activatedAt)), h("td", {}, a.message ?? "")),
      ),
    );
    if (alarms.length === 0) alarmList.append(h("tr", {}, h("td", { colspan: 5, class: "muted" }, "no alarms")));
  };
  void loadAlarms().catch(() => undefined);
  const stopFeed = feed.onChange(() => void loadAlarms().catch(() => undefined));
  const ticker = setInterval(paintStatus, 2_000);
  return [close, stopFeed, () => batcher.cancel(), () => clearInterval(ticker), () => trend.destroy(), () => anomaly.destroy(), () => commands.destroy()];
}
