// Live-stream fan-out benchmark: N simulated PLCs publishing every S ms through Mosquitto →
// preprocessor → Kafka → api (its live-stream consumer) → C Server-Sent-Events clients, each
// service in its own process, the clients in this one. Prints PLC-timestamp → client latency
// p50/p99/max, events/s delivered, drops, and the api process's CPU and peak RSS.
//   node bench/stream.bench.ts [clients] [plcs] [scanMs] [seconds]      (infrastructure must be running)
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import type { StreamStats } from "../mixins/live-stream.mixin.ts";
import { ALL_SERVICES } from "../src/shared/config.ts";
import { LatencyHistogram } from "../src/shared/latency-histogram.ts";
import type { DeviceDocument, TelemetryRecord } from "../src/shared/types.ts";
import { openEventStream, type EventStream, type ReceivedMessage } from "../src/stream/sse-client.ts";
import { kafkaTopic } from "../src/shared/topics.ts";
import { cleanupRun, getJson, isolatedEnv, kafkaClient, startPlantwire, testToken, waitHealthy, type RunningProcess, type TestSystemEnv } from "../test/helpers/system.ts";
import { waitFor } from "../test/helpers/wait.ts";

const [clientCount = 100, plcs = 20, scanMs = 100, seconds = 30] = process.argv.slice(2).map(Number);
const CLOCK_TICKS = 100; // USER_HZ on Linux

function sampleProcess(pid: number): { cpuSeconds: number; peakRssMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return { cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS, peakRssMb: hwm ? Number(hwm[1]) / 1024 : 0 };
}

const layout: Record<string, string> = {
  "plc-simulator": "plc-simulator",
  preprocessor: "preprocessor",
  historian: "historian",
  "anomaly+alarms": "anomaly-detector,alarms",
  "api+devices": "api,devices",
};
// Services added since (e.g. control) run beside the api, so /api/health can be ok.
const placed = new Set(Object.values(layout).flatMap((services) => services.split(",")));
layout["api+devices"] = ["api", "devices", ...ALL_SERVICES.filter((s) => !placed.has(s))].join(",");

/** A mix of subscriptions: a quarter everything, a quarter one area, half one device. */
function filterFor(index: number, devices: DeviceDocument[]): string {
  const device = devices[index % devices.length];
  if (index % 4 === 0) return "#";
  if (index % 4 === 1) return `${device.site}/${device.area}/#`;
  return `${device.site}/+/+/${device._id}`;
}

/** Kafka produce → SSE client latency for records produced one at a time (20/s) for a device of its own. */
async function probeKafkaToClient(runEnv: TestSystemEnv, base: string): Promise<ReturnType<LatencyHistogram["summary"]>> {
  const histogram = new LatencyHistogram();
  const client = await openEventStream(`${base}/stream?filter=${encodeURIComponent("+/+/+/bench-probe")}&kinds=telemetry&access_token=${testToken("viewer")}`, (m) => {
    if (m.event === "telemetry") histogram.record(m.receivedAt - (JSON.parse(m.data) as TelemetryRecord).ts);
  });
  const producer = kafkaClient().producer({ idempotent: true });
  await producer.connect();
  try {
    await waitFor("the probe's snapshot", () => client.messages.some((m) => m.event === "snapshot-complete"));
    for (let seq = 0; seq < 200; seq++) {
      const now = Date.now();
      const record: TelemetryRecord = { site: "bench", area: "probe", line: "line1", device: "bench-probe", ts: now, seq, receivedAt: now, values: { probe: { v: seq, q: "good" } } };
      await producer.send({ topic: kafkaTopic(runEnv.KAFKA_TOPIC_PREFIX, "telemetry"), acks: -1, messages: [{ key: record.device, value: JSON.stringify(record) }] });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await waitFor("the probe's records", () => histogram.count === 200, 10_000);
    return histogram.summary();
  } finally {
    client.close();
    await producer.disconnect();
  }
}

const env = await isolatedEnv("benchstream", { PLC_COUNT: String(plcs), PLC_SCAN_MS: String(scanMs), LOG_LEVEL: process.env.LOG_LEVEL ?? "error" });
const api = `http://127.0.0.1:${env.API_PORT}/api`;
console.log("plantwire live-stream fan-out benchmark");
console.log(
  `setup: ${clientCount} SSE clients (¼ "#", ¼ one area, ½ one device), ${plcs} PLCs × every ${scanMs} ms = ${((plcs * 1000) / scanMs).toFixed(0)} messages/s, ${seconds} s measured; ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${process.versions.node}`,
);
console.log(`processes: ${Object.entries(layout).map(([name, services]) => `${name} (${services})`).join("; ")}; the clients in the benchmark's own process`);

const processes: Record<string, RunningProcess> = {};
const clients: EventStream[] = [];
try {
  for (const [name, services] of Object.entries(layout)) processes[name] = startPlantwire({ ...env, SERVICES: services, NODE_ID: `${env.MOLECULER_NAMESPACE}-${name}` });
  await waitHealthy(env, processes["api+devices"], 120_000);
  const devices = await waitFor(`${plcs} registered devices`, async () => {
    const { body } = await getJson<{ total: number; devices: DeviceDocument[] }>(`${api}/devices?limit=1000`);
    return body.total === plcs ? body.devices : undefined;
  }, 60_000);

  let measuring = false;
  const latency = new LatencyHistogram();
  const mqttHop = new LatencyHistogram();
  const kafkaHop = new LatencyHistogram();
  let delivered = 0;
  let droppedAnnounced = 0;
  const onMessage = (message: ReceivedMessage) => {
    if (!measuring) return;
    if (message.event === "telemetry") {
      const record = JSON.parse(message.data) as TelemetryRecord;
      latency.record(message.receivedAt - record.ts);
      mqttHop.record(record.receivedAt - record.ts);
      kafkaHop.record(message.receivedAt - record.receivedAt);
      delivered++;
    } else if (message.event === "dropped") {
      droppedAnnounced += (JSON.parse(message.data) as { dropped: number }).dropped;
    }
  };
  const filters = Array.from({ length: clientCount }, (_, i) => filterFor(i, devices));
  for (const filter of filters) clients.push(await openEventStream(`${api}/stream?filter=${encodeURIComponent(filter)}&kinds=telemetry&access_token=${testToken("viewer")}`, onMessage));
  if (clients.some((c) => c.status !== 200)) throw new Error(`a client was refused: ${JSON.stringify(clients.find((c) => c.status !== 200)?.error)}`);
  await waitFor("every client's snapshot", () => clients.every((c) => c.messages.some((m) => m.event === "snapshot-complete")), 30_000);
  const expectedPerMessage = filters.reduce((sum, f, i) => sum + (f === "#" ? plcs : f.endsWith("/#") ? devices.filter((d) => d.area === devices[i % devices.length].area).length : 1), 0) / plcs;
  // The clients keep only what arrives in the window; drop what the warm-up collected.
  for (const c of clients) c.messages.length = 0;
  // Let the pipeline settle (consumer groups, first batches) before measuring.
  await new Promise((resolve) => setTimeout(resolve, 5_000));

  const apiPid = processes["api+devices"].child.pid as number;
  const statsBefore = (await getJson<StreamStats>(`${api}/stream/stats`)).body;
  const cpuBefore = sampleProcess(apiPid);
  const benchCpuBefore = process.cpuUsage();
  measuring = true;
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  measuring = false;
  const cpuAfter = sampleProcess(apiPid);
  const benchCpu = process.cpuUsage(benchCpuBefore);
  const statsAfter = (await getJson<StreamStats>(`${api}/stream/stats`)).body;
  for (const c of clients) c.messages.length = 0;

  // Reference in the same run: with the PLCs stopped, records produced straight to Kafka → one client.
  await processes["plc-simulator"].stop();
  const probe = await probeKafkaToClient(env, api);

  const results = {
    date: new Date().toISOString(),
    setup: { clients: clientCount, plcs, scanMs, seconds, offeredMsgPerS: (plcs * 1000) / scanMs, filters: { all: filters.filter((f) => f === "#").length, area: filters.filter((f) => f !== "#" && f.endsWith("/#")).length, device: filters.filter((f) => !f.endsWith("#")).length } },
    // What the clients should get from the records the api read in the window.
    expectedEventsPerS: (expectedPerMessage * (statsAfter.records.telemetry - statsBefore.records.telemetry)) / seconds,
    deliveredEventsPerS: delivered / seconds,
    plcToClientMs: latency.summary(),
    plcToPreprocessorMs: mqttHop.summary(),
    preprocessorToClientMs: kafkaHop.summary(),
    recordsReadByApiPerS: (statsAfter.records.telemetry - statsBefore.records.telemetry) / seconds,
    api: {
      eventsSentPerS: (statsAfter.eventsSent - statsBefore.eventsSent) / seconds,
      eventsDropped: statsAfter.eventsDropped - statsBefore.eventsDropped,
      slowDisconnects: statsAfter.slowDisconnects - statsBefore.slowDisconnects,
      clients: statsAfter.clients,
      cpuPercent: ((cpuAfter.cpuSeconds - cpuBefore.cpuSeconds) / seconds) * 100,
      peakRssMb: cpuAfter.peakRssMb,
    },
    droppedAnnouncedToClients: droppedAnnounced,
    kafkaToClientReferenceMs: probe,
    benchProcessCpuPercent: ((benchCpu.user + benchCpu.system) / 1e6 / seconds) * 100,
  };
  console.log(`\nrecords read by the api:  ${results.recordsReadByApiPerS.toFixed(0)} records/s from Kafka (offered ${results.setup.offeredMsgPerS.toFixed(0)}/s)`);
  console.log(`expected events:          ${results.expectedEventsPerS.toFixed(0)} events/s (each record goes to ${expectedPerMessage.toFixed(1)} clients on average)`);
  console.log(`delivered to clients:     ${results.deliveredEventsPerS.toFixed(0)} events/s (api sent ${results.api.eventsSentPerS.toFixed(0)}/s)`);
  console.log(`PLC ts → client latency:  p50 ${results.plcToClientMs.p50} ms, p99 ${results.plcToClientMs.p99} ms, max ${results.plcToClientMs.max} ms (${results.plcToClientMs.count} events)`);
  console.log(`  PLC → preprocessor (MQTT hop):          p50 ${results.plcToPreprocessorMs.p50} ms, p99 ${results.plcToPreprocessorMs.p99} ms, max ${results.plcToPreprocessorMs.max} ms`);
  console.log(`  preprocessor → client (Kafka, fan-out): p50 ${results.preprocessorToClientMs.p50} ms, p99 ${results.preprocessorToClientMs.p99} ms, max ${results.preprocessorToClientMs.max} ms`);
  console.log(`reference, PLCs stopped: Kafka produce (acks=all) → client p50 ${probe.p50} ms, p99 ${probe.p99} ms, max ${probe.max} ms (${probe.count} records at 20/s)`);
  console.log(`dropped:                  ${results.api.eventsDropped} (announced to clients: ${droppedAnnounced}); slow disconnects ${results.api.slowDisconnects}; clients connected ${results.api.clients}`);
  console.log(`api+devices process:      CPU ${results.api.cpuPercent.toFixed(0)} % of a core, peak RSS ${results.api.peakRssMb.toFixed(0)} MB`);
  console.log(`benchmark process (the ${clientCount} clients): CPU ${results.benchProcessCpuPercent.toFixed(0)} % of a core`);
  mkdirSync("bench/results", { recursive: true });
  const file = `bench/results/stream-${clientCount}c-${plcs}x${scanMs}ms-${Date.now()}.json`;
  writeFileSync(file, JSON.stringify(results, null, 2));
  console.log(`\nraw results: ${file}`);
} finally {
  for (const c of clients) c.close();
  await Promise.all(Object.values(processes).map((p) => p.stop()));
  await cleanupRun(env);
}
