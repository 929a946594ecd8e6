// The operator dashboard in a real browser (Debian's chromium, headless, driven by playwright-core)
// against the whole system as a user starts it: the overview goes live, a trend shows history and
// live points with the device's anomaly score under it, a simulated overheat shows up in the alarm
// console and is acknowledged there, a setpoint sent from the command panel reaches the PLC, and
// the system screen shows Kafka consumer lag per group. Each test leaves a screenshot of its
// screen in docs/screenshots/ (the README's pictures).
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ServiceBroker } from "moleculer";
import type { Browser, Page } from "playwright-core";
import type { CommandView } from "../../src/control/commands.ts";
import type { KafkaLagReport } from "../../src/kafka/consumer-lag.ts";
import type { AlarmDocument, DeviceAnomalyScore, DeviceDocument, LatestValue } from "../../src/shared/types.ts";
import { launchChromium } from "../helpers/browser.ts";
import { apiFetch, cleanupRun, getJson, isolatedEnv, startPlantwire, TEST_ADMIN_PASSWORD, waitHealthy, type RunningProcess, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const SCREENSHOTS = `${REPO}docs/screenshots`;
const PLC_COUNT = 5;
// As in test/e2e/alarms.spec.ts: an overheat at severity 0.5 drives the pump's bearing past hi
// (70 °C) without tripping it.
const ALARM_ID = "pump-01:bearing_temp:hi";
const FAULT = { device: "pump-01", type: "overheat", durationMs: 20_000, severity: 0.5 } as const;

describe("operator dashboard in headless Chromium", function () {
  this.timeout(180_000);
  let env: TestSystemEnv;
  let system: RunningProcess;
  let browser: Browser;
  let page: Page;
  let base: string;
  let api: string;
  let devices: DeviceDocument[] = [];
  const pageErrors: string[] = [];

  before(async () => {
    execFileSync("bash", [`${REPO}scripts/build-dashboard.sh`], { stdio: "ignore" });
    mkdirSync(SCREENSHOTS, { recursive: true });
    env = await isolatedEnv("browser", { PLC_COUNT: String(PLC_COUNT), PLC_SCAN_MS: "200" });
    base = `http://127.0.0.1:${env.API_PORT}`;
    api = `${base}/api`;
    system = startPlantwire(env);
    await waitHealthy(env, system);
    devices = await waitFor("every simulated PLC registered", async () => {
      const { body } = await getJson<{ devices: DeviceDocument[] }>(`${api}/devices`);
      return body.devices.length === PLC_COUNT && body.devices.every((d) => d.tags.length > 0) ? body.devices : undefined;
    }, 30_000, 250);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on("pageerror", (err) => pageErrors.push(err.message));
    page.on("console", (msg) => {
      // The dead-letter route may not exist yet: the health screen hides its panel on that 404. A
      // device has no anomaly score (404) until the detector evaluated its first sample. Before the
      // sign-in, the dashboard asks who it is and gets a 401.
      if (msg.type() === "error" && !/\/api\/(dead-letters|devices\/[^/]+\/anomaly|auth\/me)/.test(msg.location().url)) pageErrors.push(`${msg.text()} (${msg.location().url})`);
    });
  });

  after(async () => {
    await browser?.close();
    const code = await system?.stop();
    if (env) await cleanupRun(env);
    assert.equal(code, 0, `plantwire did not stop cleanly:\n${system?.output()}`);
  });

  afterEach(function () {
    // An uncaught error or a failed request in the page fails the test that caused it.
    const errors = pageErrors.splice(0);
    if (this.currentTest?.state === "passed") assert.deepEqual(errors, [], "errors in the page");
  });

  it("asks for a sign-in first, and refuses a wrong password", async () => {
    await page.goto(`${base}/`);
    const form = page.locator("form.login");
    await form.waitFor({ timeout: 15_000 });
    assert.equal(await page.locator(".tile[data-device]").count(), 0, "nothing shown before the sign-in");
    await form.locator('input[name="name"]').fill("admin");
    await form.locator('input[name="password"]').fill("not the password");
    await form.locator('button[type="submit"]').click();
    await waitFor("the refusal", async () => /wrong/.test(await form.locator(".login-error").innerText()), 10_000);
    pageErrors.splice(0).forEach((e) => assert.match(e, /auth\/login/, "only the refused login failed"));
    await form.locator('input[name="password"]').fill(TEST_ADMIN_PASSWORD);
    await form.locator('button[type="submit"]').click();
    await page.locator("#user").getByText("admin").waitFor({ timeout: 10_000 });
    assert.ok(await page.evaluate(() => sessionStorage.getItem("plantwire.token")), "the token is kept for the tab");
  });

  it("shows every simulated device on the overview, live without a reload", async () => {
    await page.goto(`${base}/`);
    const tiles = page.locator(".tile[data-device]");
    await waitFor("a tile per device", async () => (await tiles.count()) === PLC_COUNT, 15_000);
    assert.deepEqual((await tiles.evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.device))).sort(), devices.map((d) => d._id).sort());
    await page.locator('.tile[data-device="pump-01"][data-status="running"]').waitFor({ timeout: 15_000 });

    const value = page.locator('.tile[data-device="pump-01"] .value');
    await waitFor("a first value", async () => /\d/.test(await value.innerText()), 10_000);
    const first = await value.innerText();
    const loads = await page.evaluate(() => performance.getEntriesByType("navigation").length);
    await waitFor(`the value to change from "${first}" without a reload`, async () => (await value.innerText()) !== first, 15_000);
    assert.equal(await page.evaluate(() => performance.getEntriesByType("navigation").length), loads, "no navigation happened");
    await page.screenshot({ path: `${SCREENSHOTS}/overview.png` });

    // A tablet in portrait: the grid reflows, nothing scrolls sideways.
    await page.setViewportSize({ width: 820, height: 1180 });
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "no horizontal scrolling at 820 px");
    await page.screenshot({ path: `${SCREENSHOTS}/overview-tablet.png` });
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it("shows every tag of a device live, and a trend with history plus live points", async () => {
    const pump = devices.find((d) => d._id === "pump-01");
    assert.ok(pump);
    await page.goto(`${base}/#/device/pump-01`);
    await page.locator(".tags tbody tr[data-tag]").first().waitFor();
    assert.equal(await page.locator(".tags tbody tr[data-tag]").count(), pump.tags.length, "a row per registered tag");
    await waitFor("every tag's value and quality", async () => (await page.locator(".tags td[data-quality]").count()) === pump.tags.length, 10_000);

    // The pump's process variable (its first tag with limits) is trended by default.
    const legend = page.locator('.legend[data-tag="flow"]');
    await waitFor("history points in the trend", async () => Number(await legend.getAttribute("data-history")) > 0, 15_000);
    const live = Number(await legend.getAttribute("data-live"));
    await waitFor("live points appended to the trend", async () => Number(await legend.getAttribute("data-live")) >= live + 3, 15_000);
    assert.equal(await page.locator('.chart[data-tag="flow"] canvas').count(), 1);

    // Another range reloads the history; live points follow again.
    await page.locator('select[data-role="range"]').selectOption({ label: "5 min" });
    await waitFor("the trend over 5 min with live points", async () => Number(await legend.getAttribute("data-history")) > 0 && Number(await legend.getAttribute("data-live")) >= 2, 15_000);

    // A second tag, ticked in the table, gets its own chart with its own history.
    await page.locator('input[data-trend="bearing_temp"]').check();
    await waitFor("the second trend's history", async () => Number(await page.locator('.legend[data-tag="bearing_temp"]').getAttribute("data-history")) > 0, 15_000);

    // Under the trend: the device's current anomaly score, as the detector reports it, and its
    // series growing while the page is open.
    const { status, body: score } = await getJson<DeviceAnomalyScore>(`${api}/devices/pump-01/anomaly`);
    assert.equal(status, 200);
    assert.equal(score.device, "pump-01");
    const shown = page.locator('[data-role="anomaly-score"][data-score]');
    await shown.waitFor({ timeout: 10_000 });
    const value = Number(await shown.getAttribute("data-score"));
    assert.ok(value >= 0 && value <= 1, `a score in [0, 1]: ${value}`);
    assert.equal(await shown.innerText(), value.toFixed(2));
    assert.match(await page.locator('[data-role="anomaly-state"]').innerText(), /^(learning \(\d+ samples\)|normal|ANOMALY) · alarm at 0?\.\d+$/);
    const scores = page.locator('[data-role="anomaly-legend"]');
    await waitFor("the anomaly score series growing", async () => Number(await scores.getAttribute("data-points")) >= 3, 15_000);
    assert.equal(await page.locator('[data-role="anomaly-chart"] canvas').count(), 1);
    await page.screenshot({ path: `${SCREENSHOTS}/device.png`, fullPage: true });
  });

  it("shows an alarm raised by the simulator within 2 s and acknowledges it from the console", async () => {
    await page.goto(`${base}/#/alarms`);
    await page.locator("table.alarms tbody tr").first().waitFor();
    await page.locator("#link-state", { hasText: "live" }).waitFor();

    const operator = new ServiceBroker({ namespace: env.MOLECULER_NAMESPACE, nodeID: `browser-operator-${process.pid}`, transporter: { type: "NATS", options: { url: "nats://127.0.0.1:4222" } }, logger: false });
    await operator.start();
    try {
      await operator.waitForServices(["plc-simulator"], 10_000);
      await operator.call("plc-simulator.injectFault", FAULT);
    } finally {
      await operator.stop();
    }
    await waitFor("the overheat alarm in the API", async () => {
      const { body } = await getJson<{ alarms: AlarmDocument[] }>(`${api}/alarms?state=active&device=pump-01`);
      return body.alarms.some((a) => a._id === ALARM_ID);
    }, 60_000, 50);
    const row = page.locator(`tr[data-alarm-id="${ALARM_ID}"]`);
    await row.waitFor({ timeout: 2_000 });
    assert.equal(await row.getAttribute("data-acked"), "false");

    await row.locator('button[data-act="ack"]').click();
    await page.locator('dialog.confirm input[name="comment"]').fill("cooling water valve checked");
    await page.locator('dialog.confirm button[data-action="confirm"]').click();
    const acked = await waitFor("the acknowledgement in the API", async () => {
      const { body } = await getJson<{ alarm: AlarmDocument; journal: { entries: { action: string; comment: string | null }[] } }>(`${api}/alarms/${ALARM_ID}`);
      return body.alarm.acked ? body : undefined;
    }, 10_000);
    assert.ok(acked.journal.entries.some((e) => e.action === "acknowledged" && e.comment === "cooling water valve checked"));
    await page.locator(`tr[data-alarm-id="${ALARM_ID}"][data-acked="true"]`).waitFor({ timeout: 5_000 });
    await page.locator(".journal-entries li[data-action='acknowledged']", { hasText: "cooling water valve checked" }).waitFor({ timeout: 5_000 });
    await page.screenshot({ path: `${SCREENSHOTS}/alarms.png` });
  });

  it("sends a setpoint from the command panel after confirmation and shows the PLC's acknowledgement", async () => {
    await page.goto(`${base}/#/device/oven-01`);
    await page.locator(".commands form.setpoint").waitFor();
    await page.locator('.commands select[name="tag"]').selectOption("temp_sp");
    await page.locator('.commands input[name="value"]').fill("170");
    await page.locator(".commands form.setpoint button[type=submit]").click();
    await page.locator('dialog.confirm button[data-action="confirm"]').click();
    await page.locator('[data-role="command-outcome"][data-status="acknowledged"]').waitFor({ timeout: 15_000 });

    const { body } = await getJson<{ commands: CommandView[] }>(`${api}/commands?device=oven-01&limit=1`);
    assert.deepEqual([body.commands[0]?.action, body.commands[0]?.tag, body.commands[0]?.value, body.commands[0]?.status], ["setpoint", "temp_sp", 170, "acknowledged"]);
    // The PLC applied it: its setpoint tag reports the new value.
    await waitFor("the oven reporting temp_sp 170", async () => {
      const latest = await getJson<{ values: Record<string, LatestValue> }>(`${api}/devices/oven-01/latest`);
      return latest.body.values.temp_sp?.v === 170;
    }, 10_000);
    await page.locator('.tags tr[data-tag="temp_sp"] td.num', { hasText: "170" }).waitFor({ timeout: 5_000 });
    await page.screenshot({ path: `${SCREENSHOTS}/commands.png`, fullPage: true });
  });

  it("shows a viewer the command panel with its controls disabled", async () => {
    const password = "a viewer's long passphrase";
    const created = await apiFetch(`${api}/auth/users`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name: "vera", role: "viewer", password }) });
    assert.equal(created.status, 201);
    // A tab of its own: the session lives in the tab's sessionStorage.
    const tab = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    try {
      await tab.goto(`${base}/#/device/oven-01`);
      const form = tab.locator("form.login");
      await form.locator('input[name="name"]').fill("vera");
      await form.locator('input[name="password"]').fill(password);
      await form.locator('button[type="submit"]').click();
      await tab.locator("#user").getByText("vera").waitFor({ timeout: 10_000 });
      await tab.goto(`${base}/#/device/oven-01`);
      await tab.locator(".commands form.setpoint").waitFor();
      const controls = await tab.locator('.commands button[data-command], .commands form.setpoint button[type="submit"]').evaluateAll((els) => els.map((e) => ({ disabled: (e as HTMLButtonElement).disabled, title: e.getAttribute("title") })));
      assert.equal(controls.length, 4, "start, stop, reset and set");
      for (const c of controls) assert.deepEqual(c, { disabled: true, title: "needs the role operator (you are viewer)" });
    } finally {
      await tab.close();
    }
    // The admin's tab still may.
    await page.goto(`${base}/#/device/oven-01`);
    await page.locator(".commands form.setpoint").waitFor();
    assert.equal(await page.locator(".commands button[data-command]:disabled").count(), 0);
  });

  it("shows each service and server with its status on the health screen", async () => {
    await page.goto(`${base}/#/health`);
    await page.locator("tr[data-service]").first().waitFor();
    const { body } = await getJson<{ services: Record<string, unknown>; servers: Record<string, unknown> }>(`${api}/health`);
    await waitFor("every service and server listed", async () => (await page.locator("tr[data-service]").count()) === Object.keys(body.services).length && (await page.locator("tr[data-server]").count()) === Object.keys(body.servers).length, 10_000);
    // The ingest rate needs two readings of the stream's counters.
    await page.locator(".ingest .kpi").first().locator("strong", { hasText: /^\d/ }).waitFor({ timeout: 15_000 });

    // Consumer lag per group, the numbers of the API's answer: the gateway caches one read for 2 s,
    // so the API answers with the page's reading (same `at`) for a moment after each poll.
    const groups = ["historian", "anomaly-detector", "alarms", "dead-letters"];
    const lag = await waitFor("the page showing the API's consumer lag reading", async () => {
      const at = await page.locator("section.lag").getAttribute("data-at");
      const { status, body } = await getJson<KafkaLagReport>(`${api}/system/kafka`);
      assert.equal(status, 200);
      return at !== null && body.at === Number(at) ? body : undefined;
    }, 20_000, 200);
    assert.deepEqual(lag.groups.filter((g) => g.commits).map((g) => g.name), groups);
    const rows = await page.locator("section.lag tr[data-group-id]").evaluateAll((trs) => trs.map((tr) => ({ id: (tr as HTMLElement).dataset.groupId, lag: (tr as HTMLElement).dataset.lag, shown: tr.querySelector("td.num")?.textContent, trend: (tr as HTMLElement).dataset.trend })));
    assert.deepEqual(rows.map((r) => r.id), lag.groups.map((g) => g.groupId), "a row per group, the live stream's included");
    for (const group of lag.groups.filter((g) => g.commits)) {
      const row = rows.find((r) => r.id === group.groupId);
      assert.ok(row && /^\d+$/.test(row.shown ?? ""), `${group.name}: a number, got ${row?.shown}`);
      assert.equal(Number(row.shown), group.lag, `${group.name}: the API's lag`);
      assert.equal(row.trend, "normal", `${group.name}: grey while every consumer runs (ISA-101)`);
    }
    assert.ok(lag.groups.some((g) => !g.commits && g.name === "api-stream"), "the gateway's live-stream group");
    await page.screenshot({ path: `${SCREENSHOTS}/health.png`, fullPage: true });
  });
});
