// The preprocessor's session adoption (mixins/mqtt-session-adoption.mixin.ts) against a Mosquitto
// of the test's own: a replica that dies leaves its persistent session in the shared subscription,
// taking its share of the messages; the surviving replica takes the session over until the dead
// one comes back, then lets go without fighting it for the session. The Moleculer side is one
// broker whose registry is told about the other replica (its INFO) and then, as the heartbeat
// timeout would, that it left unexpectedly.
import { strict as assert } from "node:assert";
import { ServiceBroker, type Service } from "moleculer";
import mqtt, { type MqttClient } from "mqtt";
import { mqttSessionAdoptionMixin } from "../../mixins/mqtt-session-adoption.mixin.ts";
import { loadConfig } from "../../src/shared/config.ts";
import { PrivateMosquitto } from "../helpers/private-mosquitto.ts";
import { freePort } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

describe("mqtt session adoption: a surviving replica takes a dead one's share, then gives it back", function () {
  this.timeout(60_000);
  const run = `adopt${Date.now().toString(36)}`;
  const clientIdOf = (nodeID: string) => `${run}-preprocessor-${nodeID}`;
  const share = `$share/${run}/${run}/t/#`;
  let mosquitto: PrivateMosquitto;
  let survivor: ServiceBroker;
  const clients: MqttClient[] = [];
  /** Payloads handled, by whom. */
  const handled = { own: [] as string[], adopted: [] as string[], returned: [] as string[] };

  /** A member of the share group with a persistent session, acknowledging what it receives. */
  async function member(nodeID: string, into: string[]): Promise<MqttClient> {
    const client = mqtt.connect(mosquitto.url, { clientId: clientIdOf(nodeID), protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 600 }, reconnectPeriod: 1_000 });
    client.on("message", (_topic, payload) => into.push(payload.toString()));
    await new Promise((resolve) => client.once("connect", resolve));
    await client.subscribeAsync({ [share]: { qos: 1 } });
    clients.push(client);
    return client;
  }

  async function publish(label: string, n: number): Promise<string[]> {
    const publisher = await mqtt.connectAsync(mosquitto.url, { clientId: `${run}-publisher`, protocolVersion: 5 });
    const sent = Array.from({ length: n }, (_, i) => `${label}-${i}`);
    for (const payload of sent) await publisher.publishAsync(`${run}/t/x`, payload, { qos: 1 });
    await publisher.endAsync();
    return sent;
  }

  const adopted = () => (survivor.getLocalService("preprocessor") as Service & { adoptedSessions: Map<string, MqttClient> }).adoptedSessions;

  before(async () => {
    mosquitto = new PrivateMosquitto(await freePort());
    await mosquitto.start();
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await survivor?.stop();
    await mosquitto?.remove();
  });

  it("adopts the session of a replica that left unexpectedly: nothing it was sent is lost", async () => {
    const config = { ...loadConfig({ MQTT_URL: mosquitto.url }), mqttSessionExpiryS: 600 };
    const ownClient = await member("a", handled.own);
    survivor = new ServiceBroker({ namespace: run, nodeID: "a", logger: false });
    survivor.createService({
      name: "preprocessor",
      mixins: [mqttSessionAdoptionMixin(config, () => ({ clientIdOf, subscriptions: [share], ownClient: () => ownClient, onMessage: async (_topic, payload) => void handled.adopted.push(payload.toString()) }))],
    });
    await survivor.start();
    // Replica b as the survivor's registry knows it from b's INFO packet.
    survivor.registry.nodes.processNodeInfo({ sender: "b", instanceID: "b-1", seq: 1, ipList: [], hostname: "b", client: {}, metadata: {}, services: [{ name: "preprocessor", fullName: "preprocessor", settings: {}, metadata: {}, actions: {}, events: {} }] });
    assert.ok(survivor.registry.getServiceList({ onlyAvailable: true }).some((s) => s.name === "preprocessor" && (s as unknown as { nodeID: string }).nodeID === "b"), "the survivor sees replica b");

    // Replica b's subscriber dies as under SIGKILL (no DISCONNECT): its session keeps taking a share.
    const deadClient = await member("b", []);
    deadClient.stream.destroy();
    deadClient.end(true);
    const beforeAdoption = await publish("queued", 10);

    // What the heartbeat timeout does on the survivor.
    survivor.registry.nodes.disconnected("b", true);
    await waitFor("the survivor to hold b's session", () => adopted().get("b")?.connected === true);
    const afterAdoption = await publish("live", 10);

    const all = [...beforeAdoption, ...afterAdoption];
    await waitFor("every message handled by the survivor", () => all.every((m) => handled.own.includes(m) || handled.adopted.includes(m)), 20_000);
    assert.ok(handled.adopted.length > 0, "the adopted session delivered its share");
    assert.deepEqual([...handled.own, ...handled.adopted].sort(), [...all].sort(), "each message handled once");
  });

  it("gives the session back when the replica returns, without taking it again", async () => {
    const adopter = adopted().get("b") as MqttClient;
    let adopterConnects = 0;
    adopter.on("connect", () => adopterConnects++);
    const returned = await member("b", handled.returned);
    let returnedCloses = 0;
    returned.on("close", () => returnedCloses++);
    await waitFor("the survivor to let go of b's session", () => !adopted().has("b"));

    const later = await publish("back", 10);
    await waitFor("every later message handled by a and the returned b", () => later.every((m) => handled.own.includes(m) || handled.returned.includes(m)), 20_000);
    assert.ok(later.some((m) => handled.returned.includes(m)), "the returned replica gets its share again");
    assert.ok(!later.some((m) => handled.adopted.includes(m)), "the former adopter gets nothing any more");
    assert.deepEqual({ adopterConnects, returnedCloses, returnedConnected: returned.connected }, { adopterConnects: 0, returnedCloses: 0, returnedConnected: true }, "nobody took the session back from the returned replica");
  });
});
