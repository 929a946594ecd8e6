// Loads the labelled corpora from ../shared/datasets (read in place, never copied): NAB files with
// their windows as row indices, SKAB files as 8-sensor rows with 0/1 labels.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { NabWindow } from "./nab-scorer.ts";

export const DATASETS_DIR = process.env.ANOMALY_DATASETS ?? fileURLToPath(new URL("../../../shared/datasets/", import.meta.url));

export interface NabSeries {
  name: string;
  timestamps: string[];
  /** Epoch ms of each row (the timestamps read as UTC). */
  times: number[];
  values: number[];
  windows: NabWindow[];
}

export interface NabCorpus {
  series: NabSeries[];
  /** Where the windows came from: the windows file, or derived from the labelled points. */
  windowSource: string;
}

/** "2014-04-10 07:15:00.000000" and "2014-04-10 07:15:00" compare equal. */
function normalizeTimestamp(ts: string): string {
  return ts.trim().replace("T", " ").replace(/\.0+$/, "");
}

/**
 * NAB's own rule when only labelled points exist: window length = 10 % of the file length divided
 * by the number of labels, centred on each label; overlapping windows are merged.
 */
export function windowsFromLabels(rows: number, labelRows: readonly number[]): NabWindow[] {
  if (labelRows.length === 0) return [];
  const length = Math.floor((0.1 * rows) / labelRows.length);
  const windows: NabWindow[] = [];
  for (const row of [...labelRows].sort((a, b) => a - b)) {
    const start = Math.max(0, row - Math.floor(length / 2));
    const end = Math.min(rows - 1, row + Math.floor(length / 2));
    const last = windows[windows.length - 1];
    if (last && start <= last.end) last.end = Math.max(last.end, end);
    else windows.push({ start, end });
  }
  return windows;
}

export function loadNab(root = join(DATASETS_DIR, "nab")): NabCorpus {
  const windowsPath = join(root, "labels", "combined_windows.json");
  const labelsPath = join(root, "labels", "combined_labels.json");
  const useWindows = existsSync(windowsPath);
  const labels = JSON.parse(readFileSync(useWindows ? windowsPath : labelsPath, "utf8")) as Record<string, unknown[]>;
  const series: NabSeries[] = [];
  const dataDir = join(root, "data");
  for (const folder of readdirSync(dataDir).sort()) {
    for (const file of readdirSync(join(dataDir, folder)).filter((f) => f.endsWith(".csv")).sort()) {
      const name = `${folder}/${file}`;
      const lines = readFileSync(join(dataDir, folder, file), "utf8").trim().split(/\r?\n/).slice(1);
      const timestamps: string[] = [];
      const values: number[] = [];
      for (const line of lines) {
        const [ts = "", value = ""] = line.split(",");
        timestamps.push(normalizeTimestamp(ts));
        values.push(Number(value));
      }
      const index = new Map(timestamps.map((ts, i) => [ts, i]));
      const rowOf = (ts: string): number => {
        const exact = index.get(normalizeTimestamp(ts));
        if (exact !== undefined) return exact;
        throw new RangeError(`${name}: labelled timestamp ${ts} is not a row`);
      };
      const entry = labels[name];
      if (entry === undefined) throw new RangeError(`${name}: no entry in the labels`);
      const windows = useWindows
        ? (entry as [string, string][]).map(([start, end]) => ({ start: rowOf(start), end: rowOf(end) }))
        : windowsFromLabels(values.length, (entry as string[]).map(rowOf));
      const times = timestamps.map((ts) => Date.parse(`${ts.replace(" ", "T")}Z`));
      series.push({ name, timestamps, times, values, windows });
    }
  }
  return { series, windowSource: useWindows ? "labels/combined_windows.json" : "derived from labels/combined_labels.json (NAB's rule: 10 % of the file length / number of labels, centred, overlaps merged)" };
}

/**
 * When both label files exist: how many files' windows NAB's derivation rule reproduces exactly
 * from the labelled points (a check of `windowsFromLabels`, and of our reading of the rule).
 */
export function derivedWindowsAgreement(corpus: NabCorpus, root = join(DATASETS_DIR, "nab")): { files: number; matching: number } | null {
  const labelsPath = join(root, "labels", "combined_labels.json");
  if (!existsSync(labelsPath) || !corpus.windowSource.startsWith("labels/combined_windows")) return null;
  const labels = JSON.parse(readFileSync(labelsPath, "utf8")) as Record<string, string[]>;
  let matching = 0;
  for (const s of corpus.series) {
    const index = new Map(s.timestamps.map((ts, i) => [ts, i]));
    const rows = (labels[s.name] ?? []).map((ts) => index.get(normalizeTimestamp(ts)) ?? -1);
    if (JSON.stringify(windowsFromLabels(s.values.length, rows)) === JSON.stringify(s.windows)) matching++;
  }
  return { files: corpus.series.length, matching };
}

export interface SkabFile {
  name: string;
  columns: string[];
  /** rows × 8 sensor values */
  values: number[][];
  /** Epoch ms of each row (local time read as UTC). */
  times: number[];
  anomaly: number[];
}

export const SKAB_FOLDERS = ["valve1", "valve2", "other"];

export function loadSkab(root = join(DATASETS_DIR, "skab", "data"), folders = SKAB_FOLDERS): SkabFile[] {
  const files: SkabFile[] = [];
  for (const folder of folders) {
    const names = readdirSync(join(root, folder))
      .filter((f) => f.endsWith(".csv"))
      .sort((a, b) => parseInt(a, 10) - parseInt(b, 10) || a.localeCompare(b));
    for (const file of names) {
      const [header = "", ...lines] = readFileSync(join(root, folder, file), "utf8").trim().split(/\r?\n/);
      const columns = header.split(";");
      const anomalyCol = columns.indexOf("anomaly");
      const sensorCols = columns.map((_, i) => i).filter((i) => i > 0 && columns[i] !== "anomaly" && columns[i] !== "changepoint");
      const values: number[][] = [];
      const times: number[] = [];
      const anomaly: number[] = [];
      for (const line of lines) {
        const cells = line.split(";");
        times.push(Date.parse(`${(cells[0] ?? "").trim().replace(" ", "T")}Z`));
        values.push(sensorCols.map((i) => Number(cells[i])));
        anomaly.push(anomalyCol >= 0 && Number(cells[anomalyCol]) === 1 ? 1 : 0);
      }
      files.push({ name: `${folder}/${file}`, columns: sensorCols.map((i) => columns[i] as string), values, times, anomaly });
    }
  }
  return files;
}
