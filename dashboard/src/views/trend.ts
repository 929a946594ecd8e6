// Trend charts (uPlot) of the tags an operator picks: history from the historian over a chosen
// range, then the live tail from the stream; alarm limits drawn as lines, alarm activations as
// marks; drag to zoom, wheel to zoom, arrows to pan, double-click to follow live again.
import uPlot from "uplot";
import type { AlarmDocument, DeviceDocument, TagDefinition, TelemetryRecord } from "../../../src/shared/types.ts";
import { api, type TrendPoint } from "../api.ts";
import { h, setText } from "../dom.ts";
import { FrameBatcher } from "../live.ts";
import { numericValue, TrendBuffer } from "../model.ts";

export const RANGES: [label: string, ms: number][] = [
  ["5 min", 300_000],
  ["15 min", 900_000],
  ["1 h", 3_600_000],
  ["8 h", 28_800_000],
  ["24 h", 86_400_000],
];
/** Points asked of the historian per chart: about one per pixel column (rollups serve long ranges). */
const POINTS = 1_500;

const LIMIT_STYLE: [key: "lolo" | "lo" | "hi" | "hihi", dash: number[]][] = [
  ["lolo", []],
  ["lo", [6, 4]],
  ["hi", [6, 4]],
  ["hihi", []],
];
const SEVERITY_COLOUR: Record<string, string> = { critical: "#ff3b30", high: "#ff8c00", medium: "#f5c400", low: "#4aa3ff" };

const AXIS = { stroke: "#9aa0a6", grid: { stroke: "#2f3338", width: 1 }, ticks: { stroke: "#2f3338", width: 1 } };
export const TIME_AXES: uPlot.Axis[] = [{ ...AXIS, space: 70, values: (u, splits) => splits.map((x) => clock(x, (u.scales.x.max ?? 0) - (u.scales.x.min ?? 0))) }, { ...AXIS, size: 56 }];

interface Chart {
  tag: TagDefinition;
  buffer: TrendBuffer;
  plot: uPlot;
  legend: HTMLElement;
  source: string;
  /** The newest history request: an older answer arriving later is ignored. */
  request: number;
}

/** Axis labels in the 24-hour clock; seconds on short spans, the date on spans over a day. */
function clock(seconds: number, spanSeconds: number): string {
  const d = new Date(seconds * 1000);
  if (spanSeconds > 86_400) return d.toLocaleString([], { hour12: false, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  return d.toLocaleTimeString([], { hour12: false, hour: "2-digit", minute: "2-digit", second: spanSeconds <= 600 ? "2-digit" : undefined });
}

export class TrendPanel {
  readonly el: HTMLElement;
  readonly #device: DeviceDocument;
  readonly #charts = new Map<string, Chart>();
  readonly #chartsEl = h("div", { class: "charts" });
  readonly #followEl = h("button", { type: "button", class: "secondary", "data-role": "follow" }, "Following live");
  readonly #rangeEl = h("select", { "aria-label": "range", "data-role": "range" }, ...RANGES.map(([label, ms]) => h("option", { value: ms, selected: ms === 900_000 }, label)));
  readonly #redraw = new FrameBatcher<string>((tags) => tags.forEach((t) => this.#draw(t)));
  readonly #resize: ResizeObserver;
  #alarms: AlarmDocument[] = [];
  #following = true;
  #requests = 0;

  constructor(device: DeviceDocument) {
    this.#device = device;
    const pan = (direction: number) => () => this.#pan(direction);
    this.el = h(
      "section",
      { class: "panel trend" },
      h("div", { class: "toolbar" }, h("h2", {}, "Trend"), this.#rangeEl, h("button", { type: "button", class: "secondary", title: "pan back", onclick: pan(-1) }, "◀"), h("button", { type: "button", class: "secondary", title: "pan forward", onclick: pan(1) }, "▶"), this.#followEl),
      h("p", { class: "muted hint" }, "Tick tags in the table to trend them. Drag to zoom, wheel to zoom, double-click to follow live."),
      this.#chartsEl,
    );
    this.#rangeEl.addEventListener("change", () => void this.reload());
    this.#followEl.addEventListener("click", () => this.#follow());
    this.#resize = new ResizeObserver(() => {
      for (const chart of this.#charts.values()) chart.plot.setSize({ width: this.#width(), height: chart.plot.height });
    });
    this.#resize.observe(this.#chartsEl);
  }

  get tags(): string[] {
    return [...this.#charts.keys()];
  }

  /** The time span the charts show (s): the range ending now while following live, else the zoomed span. */
  get window(): [min: number, max: number] {
    const first = this.#charts.values().next().value;
    if (this.#following || !first) {
      const now = Date.now() / 1000;
      return [now - this.#rangeMs() / 1000, now];
    }
    return [first.plot.scales.x.min ?? 0, first.plot.scales.x.max ?? 0];
  }

  setAlarms(alarms: AlarmDocument[]): void {
    this.#alarms = alarms;
    for (const chart of this.#charts.values()) chart.plot.redraw(false, false);
  }

  /** Shows exactly these tags, in this order. */
  setTags(names: readonly string[]): void {
    for (const [name, chart] of this.#charts) {
      if (names.includes(name)) continue;
      chart.plot.destroy();
      chart.legend.parentElement?.remove();
      this.#charts.delete(name);
    }
    for (const name of names) {
      const tag = this.#device.tags.find((t) => t.name === name);
      if (tag && !this.#charts.has(name)) this.#charts.set(name, this.#create(tag));
    }
    void this.reload(names.filter((n) => this.#charts.get(n)?.source === ""));
  }

  /** Reads history for the given tags (all by default) over the chosen range ending now. */
  async reload(names: readonly string[] = this.tags): Promise<void> {
    this.#following = true;
    const to = Date.now();
    const from = to - this.#rangeMs();
    await Promise.all(
      names.map(async (name) => {
        const chart = this.#charts.get(name);
        if (!chart) return;
        const request = (chart.request = ++this.#requests);
        const answer = await api.history(this.#device._id, name, from, to, POINTS).catch((err: Error) => ({ source: `error: ${err.message}`, points: [] as TrendPoint[] }));
        if (chart.request !== request) return;
        chart.source = answer.source ?? "raw";
        chart.buffer.setHistory(answer.points.map((p) => ({ ts: p.ts, v: p.avg ?? numericValue(p.v) })));
        this.#draw(name);
      }),
    );
  }

  /** A live record of this device: appended to every chart that shows one of its tags. */
  live(record: TelemetryRecord): void {
    const windowStart = Date.now() - this.#rangeMs();
    for (const [name, chart] of this.#charts) {
      const value = numericValue(record.values[name]?.v);
      if (value !== null && chart.source !== "" && chart.buffer.append(record.ts, value, windowStart)) this.#redraw.mark(name);
    }
  }

  destroy(): void {
    this.#redraw.cancel();
    this.#resize.disconnect();
    for (const chart of this.#charts.values()) chart.plot.destroy();
    this.#charts.clear();
  }

  #rangeMs(): number {
    return Number(this.#rangeEl.value);
  }

  #width(): number {
    return Math.max(320, this.#chartsEl.clientWidth - 4);
  }

  #draw(name: string): void {
    const chart = this.#charts.get(name);
    if (!chart) return;
    const { buffer, plot } = chart;
    plot.setData([buffer.xs, buffer.ys], false);
    if (this.#following) {
      const now = Date.now() / 1000;
      plot.setScale("x", { min: now - this.#rangeMs() / 1000, max: now });
    } else {
      plot.setScale("x", { min: plot.scales.x.min ?? 0, max: plot.scales.x.max ?? 0 });
    }
    chart.legend.dataset.history = String(buffer.historyPoints);
    chart.legend.dataset.live = String(buffer.livePoints);
    const source = chart.source === "raw" ? "" : ` · ${chart.source}`;
    setText(chart.legend, `${buffer.historyPoints} history + ${buffer.livePoints} live points${source}`);
    this.#followEl.textContent = this.#following ? "Following live" : "Follow live";
    this.#followEl.classList.toggle("secondary", this.#following);
  }

  #follow(): void {
    this.#following = true;
    for (const name of this.#charts.keys()) this.#draw(name);
  }

  #pan(direction: number): void {
    const first = this.#charts.values().next().value;
    if (!first) return;
    const { min = 0, max = 0 } = first.plot.scales.x;
    const step = ((max - min) / 4) * direction;
    this.#zoomAll(min + step, max + step);
  }

  #zoomAll(min: number, max: number): void {
    this.#following = false;
    for (const chart of this.#charts.values()) chart.plot.setScale("x", { min, max });
    for (const name of this.#charts.keys()) this.#draw(name);
  }

  #create(tag: TagDefinition): Chart {
    const legend = h("span", { class: "legend", "data-tag": tag.name }, "loading…");
    const box = h("div", { class: "chart", "data-tag": tag.name }, h("div", { class: "chart-title" }, h("strong", {}, tag.name), h("span", { class: "muted" }, tag.unit), legend));
    this.#chartsEl.appendChild(box);
    const buffer = new TrendBuffer();
    const limits = LIMIT_STYLE.filter(([key]) => tag[key] !== undefined);
    const plot = new uPlot(
      {
        width: this.#width(),
        height: 190,
        legend: { show: false },
        // The panel applies a drag selection itself, to every chart at once.
        cursor: { drag: { x: true, y: false, setScale: false }, sync: { key: `trend-${this.#device._id}` } },
        scales: {
          x: { time: true },
          // The limits stay in view: how close a value is to its limit is what an operator reads.
          y: {
            range: (_u, min, max) => {
              const values = [min, max, ...limits.map(([key]) => tag[key] as number)].filter(Number.isFinite);
              if (values.length === 0) return [0, 1];
              const lo = Math.min(...values);
              const hi = Math.max(...values);
              const pad = (hi - lo) * 0.08 || 1;
              return [lo - pad, hi + pad];
            },
          },
        },
        axes: TIME_AXES,
        series: [{}, { label: tag.name, stroke: "#d0d4d9", width: 1.5, points: { show: false } }],
        hooks: {
          draw: [(u) => this.#decorate(u, tag)],
          setSelect: [
            (u) => {
              if (u.select.width < 2) return;
              const min = u.posToVal(u.select.left, "x");
              const max = u.posToVal(u.select.left + u.select.width, "x");
              u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
              this.#zoomAll(min, max);
            },
          ],
        },
      },
      [[], []],
      box,
    );
    plot.over.addEventListener("dblclick", () => this.#follow());
    plot.over.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const { min = 0, max = 0 } = plot.scales.x;
        const at = plot.posToVal(e.offsetX, "x");
        const factor = e.deltaY > 0 ? 1.25 : 0.8;
        this.#zoomAll(at - (at - min) * factor, at + (max - at) * factor);
      },
      { passive: false },
    );
    return { tag, buffer, plot, legend, source: "", request: 0 };
  }

  /** Limits as horizontal lines, this tag's alarm activations as vertical marks. */
  #decorate(u: uPlot, tag: TagDefinition): void {
    const { ctx, bbox } = u;
    ctx.save();
    ctx.lineWidth = 1;
    for (const [key, dash] of LIMIT_STYLE) {
      const limit = tag[key];
      if (limit === undefined) continue;
      const y = Math.round(u.valToPos(limit, "y", true)) + 0.5;
      ctx.strokeStyle = key.length === 4 ? "#c8a2ff" : "#8e7cc3";
      ctx.setLineDash(dash);
      ctx.beginPath();
      ctx.moveTo(bbox.left, y);
      ctx.lineTo(bbox.left + bbox.width, y);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = ctx.strokeStyle;
      ctx.font = `${11 * devicePixelRatio}px sans-serif`;
      ctx.fillText(`${key.toUpperCase()} ${limit}`, bbox.left + 4, y - 3);
    }
    drawAlarmMarks(u, this.#alarms.filter((a) => a.tag === tag.name));
    ctx.restore();
  }
}

/** Alarm activations as vertical marks in their priority's colour, returns to normal in grey. */
export function drawAlarmMarks(u: uPlot, alarms: readonly AlarmDocument[]): void {
  const { ctx, bbox } = u;
  for (const alarm of alarms) {
    for (const [at, colour] of [
      [alarm.activatedAt, SEVERITY_COLOUR[alarm.severity] ?? "#ff3b30"],
      [alarm.clearedAt, "#9aa0a6"],
    ] as const) {
      if (!at) continue;
      const x = Math.round(u.valToPos(at / 1000, "x", true)) + 0.5;
      if (x < bbox.left || x > bbox.left + bbox.width) continue;
      ctx.strokeStyle = colour;
      ctx.beginPath();
      ctx.moveTo(x, bbox.top);
      ctx.lineTo(x, bbox.top + bbox.height);
      ctx.stroke();
    }
  }
}
