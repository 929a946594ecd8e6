// NAB v1.1 scoring, as described in ../shared/datasets/README.md and implemented by NAB's sweeper:
// per-row weights that do not depend on the threshold, then one threshold per detector and profile
// swept over the whole corpus (every distinct score), normalized against the null and perfect
// detectors.

export interface NabProfile {
  name: string;
  /** A_TP, A_FN, A_FP */
  tp: number;
  fn: number;
  fp: number;
}

export const NAB_PROFILES: readonly NabProfile[] = [
  { name: "standard", tp: 1, fn: 1, fp: 0.11 },
  { name: "reward_low_FP", tp: 1, fn: 1, fp: 0.22 },
  { name: "reward_low_FN", tp: 1, fn: 2, fp: 0.11 },
];

/** Inclusive row indices. */
export interface NabWindow {
  start: number;
  end: number;
}

/** Rows ignored at the start of a file: min(floor(0.15 n), 750). */
export function probationLength(rows: number): number {
  return Math.min(Math.floor(0.15 * rows), 750);
}

/** NAB's scaled sigmoid: 2/(1+e^(5x)) - 1, and -1 from x = 3 on. */
export function scaledSigmoid(x: number): number {
  if (x >= 3) return -1;
  return 2 / (1 + Math.exp(5 * x)) - 1;
}

/** The threshold-independent parts of one file. */
export interface NabFile {
  name: string;
  rows: number;
  probation: number;
  /** Windows that end after the probation (the others can be neither found nor missed). */
  windows: NabWindow[];
  /** Per row: index into `windows`, or -1 outside every window. */
  windowOf: Int32Array;
  /**
   * Per row, the unweighted value of a detection there: in a window sigma(-(b-i+1)/W)/sigma(-1)
   * (times A_TP), outside -1 before the first window or sigma(|i-r|/(W-1)) after a window that
   * ended at r (times A_FP).
   */
  weight: Float64Array;
}

/** `probation` defaults to NAB's rule; tests set it to 0 to score tiny files. */
export function prepareNabFile(name: string, rows: number, windows: readonly NabWindow[], probation = probationLength(rows)): NabFile {
  const sorted = [...windows].sort((a, b) => a.start - b.start);
  for (const w of sorted) {
    if (!(w.start >= 0 && w.end >= w.start && w.end < rows)) throw new RangeError(`${name}: window [${w.start}, ${w.end}] outside 0..${rows - 1}`);
  }
  const windowOf = new Int32Array(rows).fill(-1);
  const weight = new Float64Array(rows);
  const maxTp = scaledSigmoid(-1);
  const kept: NabWindow[] = [];
  let next = 0;
  let prev: NabWindow | undefined;
  for (let i = 0; i < rows; i++) {
    const w = sorted[next];
    if (w !== undefined && i >= w.start && i <= w.end) {
      const width = w.end - w.start + 1;
      if (w.end >= probation) {
        if (kept[kept.length - 1] !== w) kept.push(w);
        windowOf[i] = kept.length - 1;
      }
      weight[i] = scaledSigmoid(-(w.end - i + 1) / width) / maxTp;
      if (i === w.end) {
        prev = w;
        next++;
      }
    } else if (prev === undefined) {
      weight[i] = -1;
    } else {
      const width = prev.end - prev.start + 1;
      weight[i] = scaledSigmoid(Math.abs(i - prev.end) / Math.max(1, width - 1));
    }
  }
  return { name, rows, probation, windows: kept, windowOf, weight };
}

export interface NabFileResult {
  name: string;
  raw: number;
  tp: number;
  fn: number;
  fp: number;
}

/** Raw score of one file at one threshold (detections: rows with score >= threshold). */
export function scoreNabFile(file: NabFile, scores: ArrayLike<number>, threshold: number, profile: NabProfile): NabFileResult {
  if (scores.length !== file.rows) throw new RangeError(`${file.name}: ${scores.length} scores for ${file.rows} rows`);
  const best = new Array<number>(file.windows.length).fill(-profile.fn);
  const found = new Array<boolean>(file.windows.length).fill(false);
  let fpScore = 0;
  let fp = 0;
  for (let i = file.probation; i < file.rows; i++) {
    if (!((scores[i] as number) >= threshold)) continue;
    const w = file.windowOf[i] as number;
    if (w >= 0) {
      found[w] = true;
      best[w] = Math.max(best[w] as number, profile.tp * (file.weight[i] as number));
    } else {
      fp++;
      fpScore += profile.fp * (file.weight[i] as number);
    }
  }
  const tp = found.filter(Boolean).length;
  return { name: file.name, raw: fpScore + best.reduce((a, b) => a + b, 0), tp, fn: file.windows.length - tp, fp };
}

export interface NabCorpusResult {
  profile: string;
  threshold: number;
  raw: number;
  perfect: number;
  null: number;
  normalized: number;
  tp: number;
  fn: number;
  fp: number;
  files: NabFileResult[];
}

export function normalizeNab(raw: number, windows: number, profile: NabProfile): { perfect: number; null: number; normalized: number } {
  const perfect = profile.tp * windows;
  const nullScore = -profile.fn * windows;
  return { perfect, null: nullScore, normalized: (100 * (raw - nullScore)) / (perfect - nullScore) };
}

/** Scores every file at one threshold and normalizes the corpus total. */
export function scoreNabCorpus(files: readonly NabFile[], scores: readonly ArrayLike<number>[], threshold: number, profile: NabProfile): NabCorpusResult {
  const results = files.map((f, i) => scoreNabFile(f, scores[i] as ArrayLike<number>, threshold, profile));
  const raw = results.reduce((a, r) => a + r.raw, 0);
  const windows = files.reduce((a, f) => a + f.windows.length, 0);
  const sum = (key: "tp" | "fn" | "fp"): number => results.reduce((a, r) => a + r[key], 0);
  return { profile: profile.name, threshold, raw, ...normalizeNab(raw, windows, profile), tp: sum("tp"), fn: sum("fn"), fp: sum("fp"), files: results };
}

/**
 * The threshold that maximizes the corpus score, found exactly by walking every distinct score
 * from the highest down (as NAB's sweeper does); "no detection at all" (threshold above every
 * score) is a candidate too. Ties keep the higher threshold.
 */
export function sweepNabThreshold(files: readonly NabFile[], scores: readonly ArrayLike<number>[], profile: NabProfile): NabCorpusResult {
  const rows: { s: number; file: number; row: number }[] = [];
  const windowBase: number[] = [];
  let windows = 0;
  files.forEach((f, fi) => {
    windowBase.push(windows);
    windows += f.windows.length;
    const sc = scores[fi] as ArrayLike<number>;
    if (sc.length !== f.rows) throw new RangeError(`${f.name}: ${sc.length} scores for ${f.rows} rows`);
    for (let i = f.probation; i < f.rows; i++) {
      const s = sc[i] as number;
      if (Number.isFinite(s)) rows.push({ s, file: fi, row: i });
    }
  });
  rows.sort((a, b) => b.s - a.s);
  const best = new Array<number>(windows).fill(-profile.fn);
  let total = -profile.fn * windows;
  let fpScore = 0;
  let bestTotal = total;
  let bestThreshold = rows.length > 0 ? (rows[0] as { s: number }).s + 1 : 1.1;
  for (let i = 0; i < rows.length; ) {
    const s = (rows[i] as { s: number }).s;
    for (; i < rows.length && (rows[i] as { s: number }).s === s; i++) {
      const r = rows[i] as { file: number; row: number };
      const f = files[r.file] as NabFile;
      const w = f.windowOf[r.row] as number;
      if (w >= 0) {
        const k = (windowBase[r.file] as number) + w;
        const v = profile.tp * (f.weight[r.row] as number);
        if (v > (best[k] as number)) {
          total += v - (best[k] as number);
          best[k] = v;
        }
      } else {
        const v = profile.fp * (f.weight[r.row] as number);
        fpScore += v;
        total += v;
      }
    }
    if (total > bestTotal + 1e-12) {
      bestTotal = total;
      bestThreshold = s;
    }
  }
  return scoreNabCorpus(files, scores, bestThreshold, profile);
}
