// Dashboard rendering benchmark: headless Chromium (Debian's chromium, playwright-core) shows the
// built dashboard while N devices × T tags stream live at 1 Hz, on the plant overview and on a
// device page. Prints the frame rate (requestAnimationFrame count), main-thread busy time and its
// parts (Chromium's Performance.getMetrics over CDP), and the JS heap after a forced GC at the
// start and at the end of each run.
//
// The feed is synthetic: this process serves dashboard/dist and answers the REST routes the
// screens call, with records in the live stream's exact format (src/stream/sse.ts framing,
// TelemetryRecord payloads, the stream's filter matching). The simulator's machines have 4–7 tags,
// so 500 × 20 at 1 Hz cannot come from PLC_COUNT=500; what is measured is the browser's side.
//   node bench/dashboard.bench.ts [secondsPerScreen=600] [devices=500] [tags=20]
//   (npm run bench:dashboard -- 60   builds the dashboard and installs chromium first)
import { createReadStream, existsSync, statSync } from "node:fs";
import { createServer, type ServerResponse } from "node:http";
import { cpus, totalmem } from "node:os";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { AlarmDocument, DeviceDocument, TagDefinition, TelemetryRecord } from "../src/shared/types.ts";
import { addressOf } from "../src/shared/topics.ts";
import { sseFrame, sseRetry } from "../src/stream/sse.ts";
import { parseStreamQuery, subscriptionMatches } from "../src/stream/stream-filter.ts";
import { launchChromium } from "../test/helpers/browser.ts";

const [seconds = 600, deviceCount = 500, tagCount = 20] = process.argv.slice(2).map(Number);
const DIST = fileURLToPath(new URL("../dashboard/dist", import.meta.url));
const AREAS = ["press-shop", "paint-shop", "assembly", "utilities", "packaging"];
const LINES_PER_AREA = 4;
const WARMUP_MS = 5_000;

if (!existsSync(join(DIST, "index.html"))) throw new Error(`${DIST} has no build: run bash scripts/build-dashboard.sh`);

// --- the synthetic plant ---------------------------------------------------------------------
const tags: TagDefinition[] = [
  ...Array.from({ length: tagCount - 1 }, (_, i): TagDefinition => ({ name: `tag_${String(i).padStart(2, "0")}`, unit: i % 2 ? "bar" : "°C", type: "number", min: 0, max: 200, lo: 20, hi: 180 })),
  { name: "state", unit: "", type: "string" },
];
const devices: DeviceDocument[] = Array.from({ length: deviceCount }, (_, i) => {
  const area = AREAS[i % AREAS.length];
  const line = `line${Math.floor(i / AREAS.length) % LINES_PER_AREA}`;
  return { _id: `dev-${String(i).padStart(4, "0")}`, site: "plant1", area, line, machineType: "synthetic", state: "online", tags, updatedAt: Date.now() };
});
// A few standing alarms, so the overview paints alarm text too.
const alarms = devices.filter((_, i) => i % 25 === 0).map((d, i) => ({ _id: `${d._id}:tag_00:hi`, device: d._id, tag: "tag_00", kind: "hi", severity: (["critical", "high", "medium", "low"] as const)[i % 4], state: "active-unack", active: true, acked: false, value: 185, lastValue: 185, limit: 180, message: "tag_00 185 °C above H 180", activatedAt: Date.now() - 60_000, clearedAt: null }) as unknown as AlarmDocument);

function valueAt(deviceIndex: number, tagIndex: number, ts: number): number {
  return Math.round((100 + 40 * Math.sin(ts / 20_000 + deviceIndex + tagIndex) + Math.random()) * 10) / 10;
}

function record(index: number, ts: number, seq: number): TelemetryRecord {
  const d = devices[index];
  const values: TelemetryRecord["values"] = {};
  for (let t = 0; t < tagCount - 1; t++) values[tags[t].name] = { v: valueAt(index, t, ts), q: "good" };
  values.state = { v: "running", q: "good" };
  return { site: d.site, area: d.area, line: d.line, device: d._id, ts, seq, receivedAt: ts, values };
}

// --- the synthetic API -----------------------------------------------------------------------
interface Client {
  res: ServerResponse;
  wanted: number[];
  nextId: number;
}
const clients = new Set<Client>();
let eventsSent = 0;
let seq = 0;

const json = (res: ServerResponse, body: unknown) => {
  res.writeHead(200, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
};
const TYPES: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css" };

const server = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://bench");
  const path = url.pathname;
  if (path === "/api/stream") {
    const subscription = parseStreamQuery(url.searchParams, "scada/v1", 20);
    const wanted = devices.flatMap((d, i) => (subscriptionMatches(subscription, addressOf(d), "telemetry") ? [i] : []));
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
    let head = sseRetry(3_000);
    const now = Date.now();
    for (const i of wanted) head += sseFrame("snapshot", JSON.stringify({ ...devices[i], device: devices[i]._id, values: Object.fromEntries(Object.entries(record(i, now, 0).values).map(([k, v]) => [k, { ...v, ts: now }])) }));
    res.write(head + sseFrame("snapshot-complete", JSON.stringify({ devices: wanted.length })));
    const client: Client = { res, wanted, nextId: 1 };
    clients.add(client);
    req.on("close", () => clients.delete(client));
    return;
  }
  let m: RegExpExecArray | null;
  if (path === "/api/devices") return json(res, { total: devices.length, devices });
  if ((m = /^\/api\/devices\/([^/]+)$/.exec(path))) return json(res, devices.find((d) => d._id === m?.[1]));
  if ((m = /^\/api\/devices\/([^/]+)\/history$/.exec(path))) {
    const index = devices.findIndex((d) => d._id === m?.[1]);
    const tagIndex = tags.findIndex((t) => t.name === url.searchParams.get("tag"));
    const from = Number(url.searchParams.get("from"));
    const to = Number(url.searchParams.get("to"));
    const points = [];
    for (let ts = Math.max(from, to - 3_600_000); ts <= to; ts += 1_000) points.push({ ts, seq: 0, v: valueAt(index, tagIndex, ts), q: "good" });
    return json(res, { source: "raw", points });
  }
  if (path === "/api/alarms/kpis") return json(res, { annunciated: 0, perTenMinutes: { average: 0, peak: 0, floodIntervals: 0, buckets: [] }, topBadActors: [], standing: { count: 0 }, timeToAck: { meanMs: null }, chattering: [] });
  if (path === "/api/alarms") {
    const device = url.searchParams.get("device");
    const state = url.searchParams.get("state");
    const list = state === "rtn-unack" ? [] : alarms.filter((a) => !device || a.device === device);
    return json(res, { total: list.length, alarms: list });
  }
  if (path === "/api/commands") return json(res, { commands: [] });
  const file = join(DIST, path === "/" ? "index.html" : path);
  if (file.startsWith(DIST) && existsSync(file) && statSync(file).isFile()) {
    res.writeHead(200, { "Content-Type": TYPES[extname(file)] ?? "application/octet-stream" });
    createReadStream(file).pipe(res);
    return;
  }
  res.writeHead(404).end();
});

// Every device publishes once a second; the plant is spread over ten 100 ms slots, as real PLCs
// with independent clocks would be.
const SLOTS = 10;
let slot = 0;
const feed = setInterval(() => {
  const ts = Date.now();
  for (const client of clients) {
    let chunk = "";
    for (const i of client.wanted) {
      if (i % SLOTS !== slot) continue;
      chunk += sseFrame("telemetry", JSON.stringify(record(i, ts, ++seq)), client.nextId++);
      eventsSent++;
    }
    if (chunk) client.res.write(chunk);
  }
  slot = (slot + 1) % SLOTS;
}, 1_000 / SLOTS);

await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const port = (server.address() as { port: number }).port;

// --- the measurement -------------------------------------------------------------------------
const browser = await launchChromium();
console.log(`dashboard bench: ${deviceCount} devices × ${tagCount} tags at 1 Hz (synthetic feed), ${seconds} s per screen after ${WARMUP_MS / 1000} s warm-up`);
console.log(`chromium ${browser.version()} headless, viewport 1280×800; ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB`);

type Metrics = Record<string, number>;

async function measure(name: string, hash: string, ready: string): Promise<void> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Performance.enable");
  const metrics = async (): Promise<Metrics> => Object.fromEntries((await cdp.send("Performance.getMetrics")).metrics.map((m) => [m.name, m.value]));
  const heapAfterGc = async () => {
    await cdp.send("HeapProfiler.collectGarbage");
    return (await metrics()).JSHeapUsedSize / 2 ** 20;
  };
  await page.goto(`http://127.0.0.1:${port}/${hash}`);
  await page.locator(ready).first().waitFor({ timeout: 30_000 });
  await page.locator("#link-state", { hasText: "live" }).waitFor({ timeout: 30_000 });
  await page.waitForTimeout(WARMUP_MS);
  const heapStart = await heapAfterGc();
  await page.evaluate(() => {
    const w = window as unknown as { benchFrames: number[] };
    w.benchFrames = [];
    const tick = (t: number) => {
      w.benchFrames.push(t);
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  const sentBefore = eventsSent;
  const before = await metrics();
  const started = Date.now();
  // The run's length is the point of the benchmark: wait it out, then read the counters.
  await new Promise((resolve) => setTimeout(resolve, seconds * 1_000));
  const after = await metrics();
  const elapsed = (Date.now() - started) / 1_000;
  const frames = await page.evaluate(() => (window as unknown as { benchFrames: number[] }).benchFrames);
  const gaps = frames.slice(1).map((t, i) => t - frames[i]).sort((a, b) => a - b);
  const heapEnd = await heapAfterGc();
  const busy = (key: string) => `${(((after[key] - before[key]) / elapsed) * 100).toFixed(1)} %`;
  console.log(`\n${name} (${hash || "#/"}): ${((eventsSent - sentBefore) / elapsed).toFixed(0)} telemetry events/s delivered to the page`);
  console.log(`  frame rate             ${(frames.length / elapsed).toFixed(1)} fps; frame interval p50 ${gaps[Math.floor(gaps.length * 0.5)]?.toFixed(1)} ms, p99 ${gaps[Math.floor(gaps.length * 0.99)]?.toFixed(1)} ms, max ${gaps.at(-1)?.toFixed(1)} ms`);
  console.log(`  main thread busy       ${busy("TaskDuration")} (script ${busy("ScriptDuration")}, style ${busy("RecalcStyleDuration")}, layout ${busy("LayoutDuration")})`);
  console.log(`  JS heap after GC       ${heapStart.toFixed(1)} MiB at start → ${heapEnd.toFixed(1)} MiB after ${elapsed.toFixed(0)} s; DOM nodes ${after.Nodes}`);
  await page.close();
}

try {
  await measure("plant overview", "", ".tile[data-device]");
  await measure("device page", `#/device/${devices[1]._id}`, ".legend[data-history]");
} finally {
  clearInterval(feed);
  await browser.close();
  for (const client of clients) client.res.end();
  server.close();
}
