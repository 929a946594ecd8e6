// End-to-end pipeline benchmark: N simulated PLCs publishing every S ms for T seconds through
// Mosquitto → preprocessor → Kafka → historian → MongoDB, each service in its own process.
// Prints stored points/s, PLC-timestamp → stored latency p50/p99, CPU seconds and peak RSS per
// process, and, measured in the same run as the reference, the raw Mosquitto QoS 1 rate.
//   npm run bench:pipeline -- [plcs] [scanMs] [seconds]      (infrastructure must be running)
import { readFileSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { ServiceBroker } from "moleculer";
import { cleanupRun, connectMqtt, getJson, isolatedEnv, startPlantwire, waitHealthy, type RunningProcess } from "../test/helpers/system.ts";

const [plcs = 50, scanMs = 100, seconds = 30] = process.argv.slice(2).map(Number);
const CLOCK_TICKS = 100; // USER_HZ on Linux

interface ProcessSample {
  cpuSeconds: number;
  peakRssMb: number;
}

function sampleProcess(pid: number): ProcessSample {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return { cpuSeconds, peakRssMb: hwm ? Number(hwm[1]) / 1024 : 0 };
}

/** Raw Mosquitto reference: QoS 1 publish → subscribe of payloads the size of a PLC message. */
async function mosquittoReference(payloadBytes: number, messages: number): Promise<number> {
  const subscriber = await connectMqtt(env, { clientId: `bench-sub-${process.pid}` });
  const publisher = await connectMqtt(env, { clientId: `bench-pub-${process.pid}` });
  const topic = `${env.MQTT_TOPIC_ROOT}/bench/reference`;
  await subscriber.subscribeAsync(topic, { qos: 1 });
  let received = 0;
  const done = new Promise<void>((resolve) => subscriber.on("message", () => ++received === messages && resolve()));
  const payload = Buffer.alloc(payloadBytes, 120);
  const started = performance.now();
  const window = 100;
  for (let sent = 0; sent < messages; sent += window) {
    await Promise.all(Array.from({ length: Math.min(window, messages - sent) }, () => publisher.publishAsync(topic, payload, { qos: 1 })));
  }
  await done;
  const rate = messages / ((performance.now() - started) / 1000);
  await Promise.all([subscriber.endAsync(), publisher.endAsync()]);
  return rate;
}

const layout: Record<string, string> = {
  "plc-simulator": "plc-simulator",
  preprocessor: "preprocessor",
  historian: "historian",
  "anomaly+alarms": "anomaly-detector,alarms",
  // dead-letters idles here unless input is bad; it must run somewhere for /api/health to be ok.
  "api+devices+control": "api,devices,control,dead-letters",
};

const env = await isolatedEnv("bench", { PLC_COUNT: String(plcs), PLC_SCAN_MS: String(scanMs), LOG_LEVEL: "error" });
console.log("plantwire pipeline benchmark");
console.log(`setup: ${plcs} PLCs × every ${scanMs} ms = ${((plcs * 1000) / scanMs).toFixed(0)} messages/s offered, ${seconds} s measured; ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${process.versions.node}`);
console.log(`processes: ${Object.entries(layout).map(([name, services]) => `${name} (${services})`).join("; ")}`);

const processes: Record<string, RunningProcess> = {};
// The servers' own CPU and memory, from the pid files scripts/infra.sh keeps.
const servers = Object.fromEntries(
  ["mosquitto", "kafka", "mongo", "nats", "redis"].flatMap((name) => {
    try {
      return [[`${name} (server)`, Number(readFileSync(`.data/run/${name}.pid`, "utf8").trim())]];
    } catch {
      return [];
    }
  }),
) as Record<string, number>;
const operator = new ServiceBroker({ namespace: env.MOLECULER_NAMESPACE, nodeID: `bench-${process.pid}`, transporter: { type: "NATS", options: { url: "nats://127.0.0.1:4222" } }, logger: false });
try {
  for (const [name, services] of Object.entries(layout)) processes[name] = startPlantwire({ ...env, SERVICES: services, NODE_ID: `${env.MOLECULER_NAMESPACE}-${name}` });
  await waitHealthy(env, processes["api+devices+control"], 120_000);
  await operator.start();
  // Let the pipeline settle (connections, consumer group joins) before measuring.
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  const seqBefore = await operator.call<{ seq: number }[]>("plc-simulator.list");
  await operator.call("historian.stats", { reset: true });
  const pids: Record<string, number> = { ...Object.fromEntries(Object.entries(processes).map(([name, p]) => [name, p.child.pid as number])), ...servers };
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, sampleProcess(pid)]));
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const after = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, sampleProcess(pid)]));
  const seqAfter = await operator.call<{ seq: number }[]>("plc-simulator.list");
  const stats = await operator.call<{ samples: number; points: number; latencyMs: { p50: number; p99: number; max: number } }>("historian.stats");
  const published = seqAfter.reduce((sum, plc) => sum + plc.seq, 0) - seqBefore.reduce((sum, plc) => sum + plc.seq, 0);
  const health = await getJson<{ status: string }>(`http://127.0.0.1:${env.API_PORT}/api/health`);

  const sample = JSON.stringify({ ts: Date.now(), seq: 123456, values: { temperature: 181.23, setpoint: 180, heater: 55.1, door: false, state: "running", power: 12.3 } });
  const referenceRate = await mosquittoReference(Buffer.byteLength(sample), 20_000);

  const results = {
    date: new Date().toISOString(),
    setup: { plcs, scanMs, seconds, offeredMsgPerS: (plcs * 1000) / scanMs },
    publishedMsgPerS: published / seconds,
    storedSamplesPerS: stats.samples / seconds,
    storedPointsPerS: stats.points / seconds,
    latencyMs: stats.latencyMs,
    healthAfter: health.body.status,
    mosquittoQos1ReferenceMsgPerS: referenceRate,
    processes: Object.fromEntries(Object.keys(pids).map((name) => [name, { cpuSeconds: after[name].cpuSeconds - before[name].cpuSeconds, cpuPercent: ((after[name].cpuSeconds - before[name].cpuSeconds) / seconds) * 100, peakRssMb: after[name].peakRssMb }])),
  };
  console.log(`\npublished by PLCs:        ${results.publishedMsgPerS.toFixed(0)} msg/s`);
  console.log(`stored samples:           ${results.storedSamplesPerS.toFixed(0)} samples/s (${results.storedPointsPerS.toFixed(0)} points/s)`);
  console.log(`PLC ts → stored latency:  p50 ${stats.latencyMs.p50} ms, p99 ${stats.latencyMs.p99} ms, max ${stats.latencyMs.max} ms`);
  console.log(`Mosquitto QoS 1 reference: ${referenceRate.toFixed(0)} msg/s (same payload size, 100 in flight, same run)`);
  console.log(`health after the run:     ${results.healthAfter}`);
  console.log("\nprocess              CPU s   CPU %   peak RSS MB");
  for (const [name, p] of Object.entries(results.processes)) console.log(`${name.padEnd(20)} ${p.cpuSeconds.toFixed(1).padStart(6)} ${p.cpuPercent.toFixed(0).padStart(6)} ${p.peakRssMb.toFixed(0).padStart(12)}`);
  mkdirSync("bench/results", { recursive: true });
  const file = `bench/results/pipeline-${plcs}x${scanMs}ms-${Date.now()}.json`;
  writeFileSync(file, JSON.stringify(results, null, 2));
  console.log(`\nraw results: ${file}`);
} finally {
  await operator.stop();
  await Promise.all(Object.values(processes).map((p) => p.stop()));
  await cleanupRun(env);
}
