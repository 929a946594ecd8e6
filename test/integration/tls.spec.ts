// TLS of the REST API and of the MQTT clients (docs/security.md, "TLS"), with real certificates:
// a throwaway CA made by openssl, a private Mosquitto with a TLS listener (the shared broker on
// 1883 is never touched), and clients that do and do not trust the CA.
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Consumer } from "kafkajs";
import type { ServiceBroker } from "moleculer";
import mqtt from "mqtt";
import { ConfigError } from "../../src/shared/errors.ts";
import { loadConfig } from "../../src/shared/config.ts";
import type { TelemetryRecord } from "../../src/shared/types.ts";
import { PrivateMosquitto } from "../helpers/private-mosquitto.ts";
import { authHeaders, cleanupRun, collectTopic, freePort, isolatedEnv, startServices, type TestSystemEnv } from "../helpers/system.ts";
import { waitFor } from "../helpers/wait.ts";

interface TestPki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate, valid for a day. */
function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "plantwire-tls-"));
  const at = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl("req", "-x509", ...ec, "-keyout", at("ca.key"), "-out", at("ca.pem"), "-days", "1", "-subj", "/CN=plantwire test CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  const issue = (name: string, cn: string, extensions: string) => {
    writeFileSync(at(`${name}.ext`), extensions);
    openssl("req", ...ec, "-keyout", at(`${name}.key`), "-out", at(`${name}.csr`), "-subj", `/CN=${cn}`);
    openssl("x509", "-req", "-in", at(`${name}.csr`), "-CA", at("ca.pem"), "-CAkey", at("ca.key"), "-set_serial", String(Date.now()),
      "-days", "1", "-extfile", at(`${name}.ext`), "-out", at(`${name}.pem`));
  };
  issue("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  issue("client", "plantwire-test-client", "extendedKeyUsage=clientAuth\n");
  return { dir, ca: at("ca.pem"), serverCert: at("server.pem"), serverKey: at("server.key"), clientCert: at("client.pem"), clientKey: at("client.key") };
}

/** GET over HTTPS with node's own client; `caFile` undefined: only the system's trusted CAs. */
function httpsGet(url: string, caFile: string | undefined, headers: Record<string, string> = {}): Promise<{ status: number; contentType: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca: caFile === undefined ? undefined : readFileSync(caFile), headers }, (res) => {
      // An event stream never ends: its first bytes are enough.
      if (res.headers["content-type"]?.startsWith("text/event-stream")) {
        res.once("data", (chunk: Buffer) => {
          resolve({ status: res.statusCode ?? 0, contentType: res.headers["content-type"] ?? "", body: chunk.toString() });
          req.destroy();
        });
        return;
      }
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, contentType: res.headers["content-type"] ?? "", body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("TLS", function () {
  this.timeout(120_000);
  let pki: TestPki;

  before(() => {
    pki = makePki();
  });

  after(() => {
    if (pki) rmSync(pki.dir, { recursive: true, force: true });
  });

  describe("configuration", () => {
    it("wants a certificate and its key together, naming the missing one", () => {
      assert.throws(() => loadConfig({ API_TLS_CERT: pki.serverCert }), (err: Error) => err instanceof ConfigError && /API_TLS_KEY must be set/.test(err.message));
      assert.throws(() => loadConfig({ API_TLS_KEY: pki.serverKey }), (err: Error) => err instanceof ConfigError && /API_TLS_CERT must be set/.test(err.message));
      const mqtts = { MQTT_URL: "mqtts://127.0.0.1:8883" };
      assert.throws(() => loadConfig({ ...mqtts, MQTT_TLS_CERT: pki.clientCert }), (err: Error) => err instanceof ConfigError && /MQTT_TLS_KEY must be set/.test(err.message));
    });

    it("reads the files at load: a missing file, a non-PEM file or a mismatched key is a ConfigError naming the variable", () => {
      const missing = join(pki.dir, "nope.pem");
      assert.throws(() => loadConfig({ API_TLS_CERT: missing, API_TLS_KEY: pki.serverKey }), (err: Error) => err instanceof ConfigError && err.message.includes("API_TLS_CERT") && err.message.includes(missing));
      assert.throws(() => loadConfig({ MQTT_URL: "mqtts://127.0.0.1:8883", MQTT_TLS_CA: join(pki.dir, "server.ext") }), (err: Error) => err instanceof ConfigError && /MQTT_TLS_CA must name a PEM file/.test(err.message));
      assert.throws(() => loadConfig({ API_TLS_CERT: pki.serverCert, API_TLS_KEY: pki.clientKey }), (err: Error) => err instanceof ConfigError && /API_TLS_CERT and API_TLS_KEY do not form/.test(err.message));
      const config = loadConfig({ API_TLS_CERT: pki.serverCert, API_TLS_KEY: pki.serverKey, MQTT_URL: "mqtts://127.0.0.1:8883", MQTT_TLS_CA: pki.ca });
      assert.match(config.apiTls?.cert ?? "", /BEGIN CERTIFICATE/);
      assert.match(config.mqttTls.ca ?? "", /BEGIN CERTIFICATE/);
    });

    it("refuses MQTT TLS files with a plain mqtt:// URL, where they would be ignored", () => {
      assert.throws(() => loadConfig({ MQTT_TLS_CA: pki.ca }), (err: Error) => err instanceof ConfigError && /need an mqtts:\/\/ or wss:\/\/ MQTT_URL/.test(err.message));
    });
  });

  describe("REST API over HTTPS", () => {
    let env: TestSystemEnv;
    let broker: ServiceBroker;
    let base: string;

    before(async () => {
      env = await isolatedEnv("tlsapi", { API_TLS_CERT: pki.serverCert, API_TLS_KEY: pki.serverKey });
      base = `https://127.0.0.1:${env.API_PORT}`;
      broker = await startServices(env, ["devices", "auth", "api"]);
    });

    after(async () => {
      await broker?.stop();
      if (env) await cleanupRun(env);
    });

    it("answers /api/health to a client that trusts the CA", async () => {
      // Only three services run (no Kafka topics either), so the system counts as degraded (503):
      // what matters is that the health document comes over HTTPS with the services it asked.
      await waitFor("auth and devices healthy over HTTPS", async () => {
        const { body } = await httpsGet(`${base}/api/health`, pki.ca);
        const { services } = JSON.parse(body) as { services?: Record<string, { ok: boolean }> };
        if (!services) throw new Error(`not a health document: ${body.slice(0, 200)}`);
        return ["auth", "devices"].every((name) => services[name]?.ok);
      }, 30_000);
    });

    it("fails with a certificate error for a client that does not trust the CA", async () => {
      await assert.rejects(httpsGet(`${base}/api/health`, undefined), (err: NodeJS.ErrnoException) => {
        assert.match(err.code ?? "", /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);
        return true;
      });
    });

    it("serves the live stream and the authenticated routes the same way", async () => {
      const stream = await httpsGet(`${base}/api/stream?filter=%23`, pki.ca, authHeaders("viewer"));
      assert.equal(stream.status, 200);
      assert.match(stream.contentType, /^text\/event-stream/);
      assert.equal((await httpsGet(`${base}/api/devices`, pki.ca)).status, 401, "no credentials, no devices: TLS changes nothing about authentication");
      assert.equal((await httpsGet(`${base}/api/devices`, pki.ca, authHeaders("viewer"))).status, 200);
    });
  });

  describe("MQTT over TLS with client certificates", () => {
    let mosquitto: PrivateMosquitto;
    let env: TestSystemEnv;
    let broker: ServiceBroker;
    let consumer: Consumer;
    const telemetry: { key: string; value: TelemetryRecord }[] = [];

    before(async () => {
      mosquitto = new PrivateMosquitto(await freePort(), 60, {
        port: await freePort(),
        cafile: pki.ca,
        certfile: pki.serverCert,
        keyfile: pki.serverKey,
        requireCertificate: true,
      });
      await mosquitto.start();
      env = await isolatedEnv("tlsmqtt", {
        MQTT_URL: mosquitto.tlsUrl,
        MQTT_TLS_CA: pki.ca,
        MQTT_TLS_CERT: pki.clientCert,
        MQTT_TLS_KEY: pki.clientKey,
        PLC_COUNT: "2",
        PLC_SCAN_MS: "200",
      });
      // The preprocessor creates the run's topics; the consumer reads them from the beginning.
      broker = await startServices(env, ["devices", "plc-simulator", "preprocessor"]);
      consumer = await collectTopic(env, "telemetry", telemetry);
    });

    after(async () => {
      await broker?.stop();
      await consumer?.disconnect();
      await mosquitto?.remove();
      if (env) await cleanupRun(env);
    });

    it("carries a PLC's telemetry over mqtts:// through the preprocessor into Kafka", async () => {
      await waitFor("telemetry of both PLCs in Kafka", () => new Set(telemetry.map((r) => r.key)).size >= 2, 60_000);
      assert.ok(telemetry.every((r) => typeof r.value.seq === "number" && Object.keys(r.value.values).length > 0));
    });

    it("refuses a client that does not trust the CA", async () => {
      await assert.rejects(
        mqtt.connectAsync(mosquitto.tlsUrl, { clientId: `${env.MOLECULER_NAMESPACE}-untrusting`, cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey), reconnectPeriod: 0, connectTimeout: 5_000 }),
        (err: NodeJS.ErrnoException) => {
          assert.match(err.code ?? err.message, /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);
          return true;
        },
      );
    });

    it("refuses a client without a certificate when the broker requires one", async () => {
      await assert.rejects(mqtt.connectAsync(mosquitto.tlsUrl, { clientId: `${env.MOLECULER_NAMESPACE}-anonymous`, ca: readFileSync(pki.ca), reconnectPeriod: 0, connectTimeout: 5_000 }));
    });
  });
});
