// Plant overview: every device as a tile under its site / area / line, with its state (running,
// idle, faulted, offline), one process value and its worst active alarm, live.
import type { AlarmDocument, DeviceDocument, TagDefinition, TagValue } from "../../../src/shared/types.ts";
import { api } from "../api.ts";
import { h, setAttr, setText } from "../dom.ts";
import { FrameBatcher, subscribe } from "../live.ts";
import type { Screen } from "../main.ts";
import { deviceStatus, formatValue, worstAlarmByDevice, type DeviceStatus } from "../model.ts";

/** Telemetry older than this marks a device offline (its PLC stopped publishing without a death message). */
const STALE_MS = 10_000;
const STATUSES: DeviceStatus[] = ["running", "idle", "faulted", "offline"];

interface Tile {
  device: DeviceDocument;
  keyTag: TagDefinition | undefined;
  runState: TagValue | undefined;
  keyValue: TagValue | undefined;
  lastSeenAt: number | undefined;
  status: DeviceStatus;
  el: HTMLAnchorElement;
  statusEl: HTMLElement;
  valueEl: HTMLElement;
  alarmEl: HTMLElement;
}

/** The tag a tile shows: the first one with alarm limits (the process variable), else the first number. */
function keyTagOf(device: DeviceDocument): TagDefinition | undefined {
  return device.tags.find((t) => t.type === "number" && (t.hi !== undefined || t.lo !== undefined)) ?? device.tags.find((t) => t.type === "number");
}

export const renderOverview: Screen = (root, feed) => {
  const areaSelect = h("select", { "aria-label": "area", "data-role": "area-filter" }, h("option", { value: "" }, "All areas"));
  const summary = h("div", { class: "summary" });
  const counts = new Map(STATUSES.map((s) => [s, h("span", { class: `pill status-${s}`, "data-count": s })] as const));
  for (const el of counts.values()) summary.appendChild(el);
  const grid = h("div", { class: "plant" }, h("p", { class: "muted" }, "loading devices…"));
  root.append(h("div", { class: "toolbar" }, h("h1", {}, "Plant overview"), areaSelect, summary), grid);

  const tiles = new Map<string, Tile>();
  let closeStream = () => undefined as void;
  let worst = new Map<string, AlarmDocument>();

  const paint = (tile: Tile) => {
    setText(tile.valueEl, tile.keyTag ? `${tile.keyTag.name} ${formatValue(tile.keyValue)} ${tile.keyTag.unit}`.trim() : "");
    const status = deviceStatus(tile.device.state, tile.runState, tile.lastSeenAt, Date.now(), STALE_MS);
    if (status !== tile.status) countsDirty = true;
    tile.status = status;
    setAttr(tile.el, "data-status", tile.status);
    setText(tile.statusEl, tile.status);
    const alarm = worst.get(tile.device._id);
    setAttr(tile.el, "data-alarm", alarm ? alarm.severity : "");
    setText(tile.alarmEl, alarm ? `${alarm.acked ? "" : "▲ "}${alarm.severity} · ${alarm.tag} ${alarm.kind}` : "");
  };
  let countsDirty = true;
  const paintCounts = () => {
    if (!countsDirty) return;
    countsDirty = false;
    for (const [status, el] of counts) {
      const n = [...tiles.values()].filter((t) => t.status === status).length;
      setText(el, `${status} ${n}`);
      setAttr(el, "data-n", String(n));
    }
  };
  const batcher = new FrameBatcher<string>((ids) => {
    for (const id of ids) {
      const tile = tiles.get(id);
      if (tile) paint(tile);
    }
    paintCounts();
  });

  const build = (devices: DeviceDocument[]) => {
    tiles.clear();
    const byLine = new Map<string, DeviceDocument[]>();
    for (const d of devices) {
      const key = `${d.site} / ${d.area} / ${d.line}`;
      byLine.set(key, [...(byLine.get(key) ?? []), d]);
    }
    const sections = [...byLine.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([line, members]) => {
      const section = h("section", { class: "line" }, h("h2", {}, line));
      const list = h("div", { class: "tiles" });
      for (const device of members) {
        const statusEl = h("span", { class: "state" });
        const valueEl = h("span", { class: "value" });
        const alarmEl = h("span", { class: "alarm" });
        const el = h("a", { class: "tile", href: `#/device/${encodeURIComponent(device._id)}`, "data-device": device._id }, h("strong", {}, device._id), statusEl, h("span", { class: "type muted" }, device.machineType), valueEl, alarmEl);
        const tile: Tile = { device, keyTag: keyTagOf(device), runState: undefined, keyValue: undefined, lastSeenAt: undefined, status: "idle", el, statusEl, valueEl, alarmEl };
        tiles.set(device._id, tile);
        paint(tile);
        list.appendChild(el);
      }
      section.appendChild(list);
      return section;
    });
    grid.replaceChildren(...(sections.length > 0 ? sections : [h("p", { class: "muted" }, "no devices registered yet")]));
    paintCounts();
  };

  const take = (device: string, values: Record<string, { v: TagValue; ts?: number }>, ts: number) => {
    const tile = tiles.get(device);
    if (!tile) return;
    if (values.state) tile.runState = values.state.v;
    if (tile.keyTag && values[tile.keyTag.name]) tile.keyValue = values[tile.keyTag.name].v;
    tile.lastSeenAt = Math.max(tile.lastSeenAt ?? 0, ts);
    batcher.mark(device);
  };

  // Only the chosen area is subscribed to: the stream carries nothing the screen does not show.
  const listen = () => {
    closeStream();
    const [site, area] = areaSelect.value.split("/");
    closeStream = subscribe([area ? `${site}/${area}/#` : "#"], ["telemetry"], {
      snapshot: (s) => take(s.device, s.values, Math.max(...Object.values(s.values).map((v) => v.ts))),
      telemetry: (r) => take(r.device, r.values, r.ts),
    });
  };

  let all: DeviceDocument[] = [];
  const load = async () => {
    all = (await api.devices()).devices;
    const areas = [...new Set(all.map((d) => `${d.site}/${d.area}`))].sort();
    if (areaSelect.options.length !== areas.length + 1) areaSelect.replaceChildren(h("option", { value: "" }, "All areas"), ...areas.map((a) => h("option", { value: a }, a)));
    const [site, area] = areaSelect.value.split("/");
    const shown = all.filter((d) => !area || (d.site === site && d.area === area));
    const same = shown.length === tiles.size && shown.every((d) => tiles.get(d._id)?.device.state === d.state);
    if (!same) {
      build(shown);
      listen();
    }
  };
  areaSelect.addEventListener("change", () => {
    tiles.clear();
    void load();
  });

  const stopFeed = feed.onChange(() => {
    worst = worstAlarmByDevice(feed.alarms.filter((a) => a.active));
    for (const id of tiles.keys()) batcher.mark(id);
  });
  worst = worstAlarmByDevice(feed.alarms.filter((a) => a.active));
  void load().catch((err: Error) => grid.replaceChildren(h("p", { class: "abnormal" }, `cannot load devices: ${err.message}`)));
  // Staleness needs a clock, not an event: re-judge every tile now and then, and pick up new devices.
  const ticker = setInterval(() => {
    for (const tile of tiles.values()) paint(tile);
    paintCounts();
  }, 2_000);
  const reloader = setInterval(() => void load().catch(() => undefined), 30_000);

  return () => {
    closeStream();
    stopFeed();
    batcher.cancel();
    clearInterval(ticker);
    clearInterval(reloader);
  };
};
