// The device's anomaly score under the trend: the current score with the tags that explain it,
// and the score over time with the threshold and the device's anomaly alarms as marks. The
// detector keeps no history of scores, so the series is what this page polled since it opened.
import uPlot from "uplot";
import type { AlarmDocument, DeviceAnomalyScore, DeviceDocument } from "../../../src/shared/types.ts";
import { api } from "../api.ts";
import { h, setAttr, setText } from "../dom.ts";
import { formatValue, TrendBuffer } from "../model.ts";
import { drawAlarmMarks, TIME_AXES } from "./trend.ts";

/** The detector scores each telemetry sample; the simulated PLCs scan every second by default. */
const POLL_MS = 1_000;
/** The client-side series keeps one hour (about 3,600 points at one per second). */
const SERIES_MS = 3_600_000;

export class AnomalyPanel {
  readonly el: HTMLElement;
  readonly #device: DeviceDocument;
  readonly #window: () => [number, number];
  readonly #buffer = new TrendBuffer();
  readonly #score = h("strong", { class: "score", "data-role": "anomaly-score" }, "—");
  readonly #state = h("span", { class: "muted", "data-role": "anomaly-state" }, "loading…");
  readonly #explain = h("ul", { class: "explain", "data-role": "anomaly-tags" });
  readonly #legend = h("span", { class: "legend", "data-role": "anomaly-legend" });
  readonly #plot: uPlot;
  readonly #resize: ResizeObserver;
  readonly #timer: ReturnType<typeof setInterval>;
  #threshold = 1;
  #alarms: AlarmDocument[] = [];
  #closed = false;

  /** `window`: the trend's time span (s), so the score lines up with the charts above. */
  constructor(device: DeviceDocument, window: () => [number, number]) {
    this.#device = device;
    this.#window = window;
    const chartBox = h("div", { class: "chart", "data-role": "anomaly-chart" }, h("div", { class: "chart-title" }, h("strong", {}, "anomaly score"), h("span", { class: "muted" }, "0–1"), this.#legend));
    this.el = h("section", { class: "panel anomaly", "data-active": "false" }, h("div", { class: "toolbar" }, h("h2", {}, "Anomaly score"), this.#score, this.#state), this.#explain, chartBox);
    this.#plot = new uPlot(
      {
        width: 600,
        height: 120,
        legend: { show: false },
        cursor: { drag: { x: false, y: false }, sync: { key: `trend-${device._id}` } },
        scales: { x: { time: true }, y: { range: [0, 1] } },
        axes: TIME_AXES,
        series: [{}, { label: "score", stroke: "#d0d4d9", width: 1.5, points: { show: false } }],
        hooks: { draw: [(u) => this.#decorate(u)] },
      },
      [[], []],
      chartBox,
    );
    this.#resize = new ResizeObserver(() => this.#plot.setSize({ width: Math.max(320, chartBox.clientWidth - 4), height: 120 }));
    this.#resize.observe(chartBox);
    void this.#poll();
    this.#timer = setInterval(() => void this.#poll(), POLL_MS);
  }

  /** The device's alarms; its anomaly alarms are drawn as marks. */
  setAlarms(alarms: readonly AlarmDocument[]): void {
    this.#alarms = alarms.filter((a) => a.kind === "anomaly");
    this.#plot.redraw(false, false);
  }

  destroy(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#resize.disconnect();
    this.#plot.destroy();
  }

  async #poll(): Promise<void> {
    const answer = await api.anomaly(this.#device._id).catch((err: Error) => err);
    if (this.#closed) return;
    if (answer instanceof Error || answer === null) {
      setText(this.#state, answer ? `unavailable: ${answer.message}` : "no score yet: the detector has not evaluated this device's telemetry");
      return;
    }
    this.#show(answer);
    if (answer.last) this.#buffer.append(answer.last.ts, answer.last.score, Date.now() - SERIES_MS);
    this.#draw();
  }

  #show(s: DeviceAnomalyScore & { source: string }): void {
    this.#threshold = s.threshold;
    setText(this.#score, s.score.toFixed(2));
    setAttr(this.#score, "data-score", String(s.score));
    setAttr(this.el, "data-active", String(s.active));
    const state = s.warmingUp ? `learning (${s.samples} samples)` : s.active ? "ANOMALY" : "normal";
    setText(this.#state, `${state} · alarm at ${s.threshold}${s.source === "checkpoint" ? " · from the last checkpoint" : ""}`);
    // The explanation: the most deviant tags of the latest sample.
    this.#explain.replaceChildren(...(s.last?.tags ?? []).map((t) => h("li", { "data-tag": t.tag, title: `robust z ${t.z.toFixed(1)}` }, `${t.tag} ${formatValue(t.value ?? undefined)} (expected ${formatValue(t.expected)}, z ${t.z.toFixed(1)})`)));
  }

  #draw(): void {
    const [min, max] = this.#window();
    this.#plot.setData([this.#buffer.xs, this.#buffer.ys], false);
    this.#plot.setScale("x", { min, max });
    setAttr(this.#legend, "data-points", String(this.#buffer.livePoints));
    setText(this.#legend, `${this.#buffer.livePoints} scores since this page opened`);
  }

  /** The alarm threshold as a dashed line, anomaly alarm activations and returns as vertical marks. */
  #decorate(u: uPlot): void {
    const { ctx, bbox } = u;
    ctx.save();
    ctx.lineWidth = 1;
    const y = Math.round(u.valToPos(this.#threshold, "y", true)) + 0.5;
    ctx.strokeStyle = "#8e7cc3";
    ctx.setLineDash([6, 4]);
    ctx.beginPath();
    ctx.moveTo(bbox.left, y);
    ctx.lineTo(bbox.left + bbox.width, y);
    ctx.stroke();
    ctx.setLineDash([]);
    drawAlarmMarks(u, this.#alarms);
    ctx.restore();
  }
}
