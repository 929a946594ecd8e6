// What survives a Mosquitto SIGKILL: QoS 1 messages the broker acknowledged and queued for an
// offline persistent session (the preprocessor's while it restarts), by autosave interval and by
// how long after the publishing the broker dies. Private Mosquitto on a free port; the shared one
// is never touched. Prints one line per case.
//   node bench/mosquitto-persistence.bench.ts [messages]
import mqtt, { type IConnackPacket } from "mqtt";
import { freePort } from "../test/helpers/system.ts";
import { PrivateMosquitto } from "../test/helpers/private-mosquitto.ts";
import { waitFor } from "../test/helpers/wait.ts";

const [messages = 1000] = process.argv.slice(2).map(Number);
const TOPIC = "bench/persistence";
const SESSION = { clientId: "bench-persistent-subscriber", protocolVersion: 5 as const, clean: false, properties: { sessionExpiryInterval: 3600 }, reconnectPeriod: 0 };

async function run(autosaveS: number, killAfterMs: number): Promise<string> {
  const broker = new PrivateMosquitto(await freePort(), autosaveS);
  try {
    await broker.start();
    const sub = await mqtt.connectAsync(broker.url, SESSION);
    await sub.subscribeAsync(TOPIC, { qos: 1 });
    await sub.endAsync();
    const pub = await mqtt.connectAsync(broker.url, { clientId: "bench-publisher", protocolVersion: 5 });
    for (let i = 0; i < messages; i++) await pub.publishAsync(TOPIC, String(i), { qos: 1 });
    await pub.endAsync();
    if (killAfterMs > 0) await new Promise((resolve) => setTimeout(resolve, killAfterMs)); // the variable measured, not a wait for a condition
    await broker.kill();
    await broker.start();
    const received = new Set<string>();
    // Listening before the CONNACK: a resumed session's queue follows it at once.
    const again = mqtt.connect(broker.url, SESSION);
    again.on("message", (_t, payload) => received.add(payload.toString()));
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      again.once("connect", resolve);
      again.once("error", reject);
    });
    const sessionPresent = connack.sessionPresent;
    let last = -1;
    // Done when no new message arrived for a second.
    await waitFor("the queue to drain", () => {
      const done = received.size === last;
      last = received.size;
      return done || received.size === messages;
    }, 30_000, 1_000);
    await again.endAsync();
    return `autosave_interval ${autosaveS} s, SIGKILL ${killAfterMs} ms after the last PUBACK: session present ${sessionPresent}, ${received.size} of ${messages} queued messages delivered after the restart`;
  } finally {
    await broker.remove();
  }
}

for (const [autosave, killAfter] of [[60, 0], [60, 3000], [1, 0], [1, 3000]]) console.log(await run(autosave, killAfter));
