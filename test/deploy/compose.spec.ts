// docker-compose.yml, checked offline: valid for the Compose Specification (its JSON schema,
// vendored in deploy/schema/), and the contracts that make `docker compose up` work the first
// time. Also .env.example, which lists every setting of src/shared/config.ts.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, posix } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { deviceUsername, SERVICE_ROLES, serviceUsername } from "../../src/mqtt-auth/accounts.ts";
import { plantLayout } from "../../src/plc/plant-layout.ts";
import { ALL_SERVICES, loadConfig, MQTT_CLIENT_SERVICES } from "../../src/shared/config.ts";
import {
  composeEnvironment,
  configNames,
  interpolateUnset,
  loadCompose,
  parseDotenv,
  PLANTWIRE_IMAGE,
  readRepoFile,
  ROOT,
  type ComposeFile,
  type ComposeService,
} from "./helpers.ts";

const INFRASTRUCTURE = ["mosquitto", "kafka", "mongo", "nats", "redis"];

/** Tools each infrastructure image ships, which its healthcheck may call. */
const IMAGE_TOOLS: Record<string, RegExp> = {
  "eclipse-mosquitto": /^mosquitto_(sub|pub)$/,
  "apache/kafka": /^\/opt\/kafka\/bin\/kafka-[a-z-]+\.sh$/,
  mongo: /^mongosh$/,
  // the alpine variant has busybox wget; the default (scratch) image has no tool at all
  nats: /^wget$/,
  redis: /^redis-cli$/,
};

/** Published ports the seed documents: API, MQTT, MQTT over WebSocket, MongoDB. */
const PUBLISHED = { api: 8000, mosquitto: [1883, 9001], mongo: 27017 };

/** The one-shot that writes Mosquitto's password file and ACL, and the uid:gid of the image's `mosquitto` user it runs as. */
const MQTT_ACCOUNTS = "mqtt-accounts";
const MOSQUITTO_USER = "1883:1883";

/** Variables a plantwire container may set besides config.ts's: read by the script it runs. */
const SCRIPT_VARIABLES: Record<string, string> = { PLANTWIRE_DATA: "scripts/mqtt-accounts.ts" };

const TEST_SECRET = "a-test-mqtt-secret-of-more-than-32-characters";

function isPlantwire(service: ComposeService): boolean {
  return (service.image ?? "").startsWith(`${PLANTWIRE_IMAGE}:`);
}

function isOneShot(service: ComposeService): boolean {
  return service.restart === "no";
}


/** The value of a Mosquitto config directive (the last one wins, as in Mosquitto). */
function mosquittoOption(text: string, directive: string): string | undefined {
  return [...text.matchAll(new RegExp(`^${directive}\\s+(.+?)\\s*$`, "gm"))].at(-1)?.[1];
}

function volumeStrings(service: ComposeService | undefined): string[] {
  return (service?.volumes ?? []).map((v) => (typeof v === "string" ? v : `${v.source}:${v.target}`));
}

/** Runs `script` with sh in an environment of `env` only, plus a PATH with this node first. */
function sh(script: string, env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ""}`;
  const run = spawnSync("sh", ["-c", script], { cwd: ROOT, encoding: "utf8", env: { PATH, ...env } });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

function dependsOn(service: ComposeService | undefined): Record<string, { condition: string }> {
  const deps = service?.depends_on ?? {};
  assert.ok(!Array.isArray(deps), "depends_on with conditions");
  return deps;
}

/** A service's environment as Compose passes it with nothing set in the environment or .env. */
function unsetEnvironment(service: ComposeService | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(composeEnvironment(service ?? {})).map(([k, v]) => [k, interpolateUnset(v)]));
}

function healthcheckCommand(service: ComposeService): string[] {
  const test = service.healthcheck?.test;
  if (typeof test === "string") return ["CMD-SHELL", test];
  return test ?? [];
}

describe("Docker Compose (docker-compose.yml)", function () {
  this.timeout(60_000);
  let compose: ComposeFile;

  before(() => {
    compose = loadCompose();
  });

  it("is valid for the Compose Specification (schema in deploy/schema/compose-spec.json)", () => {
    const schema = JSON.parse(readRepoFile("deploy/schema/compose-spec.json")) as Record<string, unknown>;
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    const validate = ajv.compile(schema);
    const ok = validate(compose);
    assert.ok(ok, ajv.errorsText(validate.errors, { separator: "\n" }));
    // The schema rejects what Compose rejects: a misspelt key fails.
    const broken = structuredClone(compose);
    (broken.services.api as Record<string, unknown>).helthcheck = {};
    assert.equal(validate(broken), false);
  });

  it("runs every plantwire service in its own container of the one image", () => {
    const plantwire = Object.entries(compose.services).filter(([, s]) => isPlantwire(s));
    const images = new Set(plantwire.map(([, s]) => s.image));
    assert.equal(images.size, 1, "one image");
    const running = plantwire.map(([, s]) => composeEnvironment(s).SERVICES).filter((s): s is string => s !== undefined);
    assert.deepEqual([...running].sort(), [...ALL_SERVICES].sort());
    for (const [name, s] of plantwire) {
      const services = composeEnvironment(s).SERVICES;
      if (services !== undefined) assert.equal(services, name, "the container is named after its service");
      assert.ok(s.build, `${name}: built from this repository's Dockerfile`);
      // The accounts one-shot writes files only the broker's user may read (checked below).
      assert.equal(s.user, name === MQTT_ACCOUNTS ? MOSQUITTO_USER : "1000:1000", `${name}: the image's non-root user`);
      assert.equal(s.read_only, true, `${name}: read-only root filesystem`);
    }
  });

  it("plantwire containers set only variables src/shared/config.ts reads", () => {
    const names = configNames();
    for (const [name, s] of Object.entries(compose.services).filter(([, x]) => isPlantwire(x))) {
      for (const key of Object.keys(composeEnvironment(s))) {
        const script = SCRIPT_VARIABLES[key];
        if (script !== undefined && (Array.isArray(s.command) ? s.command : []).includes(script)) {
          assert.match(readRepoFile(script), new RegExp(`process\\.env\\.${key}\\b`), `${name}: ${script} reads ${key}`);
          continue;
        }
        assert.ok(names.has(key), `${name}: ${key} is not read by src/shared/config.ts`);
      }
      const env = Object.fromEntries(Object.entries(composeEnvironment(s)).map(([k, v]) => [k, interpolateUnset(v)]));
      assert.doesNotThrow(() => loadConfig(env), `${name}: the environment is a valid configuration`);
      if (env.SERVICES === "api") assert.equal(env.API_HOST, "0.0.0.0", "the API listens on all interfaces in a container");
    }
  });

  it("every infrastructure service has a healthcheck that calls a tool of its own image", () => {
    for (const name of INFRASTRUCTURE) {
      const s = compose.services[name];
      assert.ok(s, `${name} is defined`);
      const repository = (s.image ?? "").replace(/:[^:/]+$/, "");
      const pattern = IMAGE_TOOLS[repository];
      assert.ok(pattern, `${name}: ${s.image} is one of the official images`);
      assert.match(s.image ?? "", /:[0-9][^:]*$/, `${name}: pinned to a version tag`);
      const [form, ...command] = healthcheckCommand(s);
      assert.ok(form === "CMD" || form === "CMD-SHELL", `${name}: a healthcheck`);
      const tool = form === "CMD" ? command[0] : command.join(" ").split(/\s+/)[0];
      assert.match(tool ?? "", pattern, `${name}: ${tool} is not in ${s.image}`);
    }
    assert.match(readRepoFile("Dockerfile"), /^HEALTHCHECK /m, "plantwire containers: the image's own healthcheck");
  });

  it("depends_on waits for health, and for the topics before any Kafka client starts", () => {
    const healthy = (name: string) => {
      const s = compose.services[name];
      return s !== undefined && ((s.healthcheck !== undefined && s.healthcheck.disable !== true) || isPlantwire(s));
    };
    for (const [name, s] of Object.entries(compose.services)) {
      const deps = s.depends_on ?? {};
      assert.ok(!Array.isArray(deps), `${name}: depends_on needs conditions (the short form waits for nothing)`);
      for (const [dep, { condition }] of Object.entries(deps)) {
        assert.ok(compose.services[dep], `${name} depends on unknown ${dep}`);
        if (condition === "service_healthy") assert.ok(healthy(dep), `${name}: ${dep} has no healthcheck`);
        else assert.equal(condition, "service_completed_successfully", `${name} -> ${dep}: ${condition}`);
      }
      // One-shots (topics, MQTT accounts) talk to no Moleculer transporter.
      if (isPlantwire(s) && !isOneShot(s)) {
        assert.equal(deps.nats?.condition, "service_healthy", `${name} -> nats`);
        assert.equal(deps.redis?.condition, "service_healthy", `${name} -> redis`);
      }
    }
    const topics = compose.services["kafka-topics"];
    assert.deepEqual(topics?.command, ["node", "scripts/create-topics.ts"]);
    assert.equal(topics?.restart, "no", "a one-shot");
    assert.equal((topics?.depends_on as Record<string, { condition: string }>).kafka?.condition, "service_healthy");
    for (const name of ["preprocessor", "historian", "anomaly-detector", "alarms"]) {
      const deps = compose.services[name]?.depends_on as Record<string, { condition: string }>;
      assert.equal(deps["kafka-topics"]?.condition, "service_completed_successfully", name);
    }
    for (const name of ["devices", "historian", "anomaly-detector", "alarms"]) assert.equal((compose.services[name]?.depends_on as Record<string, { condition: string }>).mongo?.condition, "service_healthy", name);
    for (const name of ["plc-simulator", "preprocessor", "control"]) assert.equal((compose.services[name]?.depends_on as Record<string, { condition: string }>).mosquitto?.condition, "service_healthy", name);
  });

  it("the preprocessor has a fixed NODE_ID: a recreated container resumes its MQTT session", () => {
    const preprocessor = compose.services.preprocessor;
    assert.ok(preprocessor);
    assert.match(composeEnvironment(preprocessor).NODE_ID ?? "", /^[A-Za-z0-9_-]+$/, "set in the file, not the container's hostname");
    assert.equal((preprocessor as { deploy?: { replicas?: number } }).deploy?.replicas ?? 1, 1, "replicas would share the MQTT client id");
  });

  it("Kafka runs in KRaft mode with a fixed cluster id, its data on a named volume", () => {
    const kafka = compose.services.kafka;
    assert.ok(kafka);
    const env = composeEnvironment(kafka);
    assert.match(env.CLUSTER_ID ?? "", /^[A-Za-z0-9_-]{22}$/, "fixed in the file, not generated");
    assert.equal(env.KAFKA_PROCESS_ROLES, "broker,controller");
    assert.equal(env.KAFKA_ZOOKEEPER_CONNECT, undefined);
    assert.equal(env.KAFKA_LOG_DIRS, "/var/lib/kafka/data", "the log dirs are the volume, not the image's /tmp default");
    assert.ok((kafka.volumes ?? []).includes("kafka-data:/var/lib/kafka/data"));
    assert.equal(env.KAFKA_AUTO_CREATE_TOPICS_ENABLE, "false");
  });

  it("infrastructure data lives on named volumes; Mosquitto's config is mounted from the file Kubernetes uses", () => {
    const declared = Object.keys(compose.volumes ?? {});
    for (const name of INFRASTRUCTURE) {
      const volumes = (compose.services[name]?.volumes ?? []).map((v) => (typeof v === "string" ? v : `${v.source}:${v.target}`));
      const named = volumes.filter((v) => !v.startsWith(".") && !v.startsWith("/"));
      assert.ok(named.length > 0, `${name}: a named volume`);
      for (const v of named) assert.ok(declared.includes(v.split(":")[0] ?? ""), `${name}: volume ${v} is declared`);
    }
    const mosquitto = (compose.services.mosquitto?.volumes ?? []).filter((v): v is string => typeof v === "string");
    const config = mosquitto.find((v) => v.endsWith(":/mosquitto/config/mosquitto.conf:ro"));
    assert.equal(config, "./k8s/base/config/mosquitto.conf:/mosquitto/config/mosquitto.conf:ro");
    assert.ok(existsSync(join(ROOT, "k8s/base/config/mosquitto.conf")));
  });

  it("publishes API 8000, MQTT 1883, WebSocket 9001 and MongoDB 27017 (on 127.0.0.1 unless PUBLISH_ADDRESS says otherwise)", () => {
    const published = (name: string) =>
      (compose.services[name]?.ports ?? []).map((p) => {
        const text = interpolateUnset(String(p));
        const [address, host, container] = text.split(":");
        assert.equal(address, "127.0.0.1", `${name}: ${p}`);
        assert.equal(host, container, `${name}: ${p}`);
        return Number(container);
      });
    assert.deepEqual(published("api"), [PUBLISHED.api]);
    assert.deepEqual(published("mosquitto"), PUBLISHED.mosquitto);
    assert.deepEqual(published("mongo"), [PUBLISHED.mongo]);
    for (const [name, s] of Object.entries(compose.services)) {
      if (!["api", "mosquitto", "mongo"].includes(name)) assert.equal(s.ports, undefined, `${name} publishes nothing`);
    }
  });
});

describe("Docker Compose: MQTT accounts", function () {
  this.timeout(60_000);
  let compose: ComposeFile;
  let conf: string;

  before(() => {
    compose = loadCompose();
    conf = readRepoFile("k8s/base/config/mosquitto.conf");
  });

  it("the shipped mosquitto.conf admits accounts only: no anonymous clients, a password file and an ACL", () => {
    assert.doesNotMatch(conf, /^\s*allow_anonymous\s+true\b/m, "never allow_anonymous true in the shipped file");
    assert.equal(mosquittoOption(conf, "allow_anonymous"), "false");
    assert.equal(mosquittoOption(conf, "per_listener_settings"), "false", "the settings hold for both listeners (1883 and WebSocket 9001)");
    const passwd = mosquittoOption(conf, "password_file") ?? "";
    const acl = mosquittoOption(conf, "acl_file") ?? "";
    // The file names scripts/mqtt-accounts.ts writes (src/mqtt-auth/account-store.ts), in one directory.
    assert.match(passwd, /^\/.+\/passwd$/, "password_file");
    assert.match(acl, /^\/.+\/acl$/, "acl_file");
    assert.equal(posix.dirname(passwd), posix.dirname(acl));
    const persistence = (mosquittoOption(conf, "persistence_location") ?? "").replace(/\/$/, "");
    assert.ok(persistence !== "" && !`${posix.dirname(passwd)}/`.startsWith(`${persistence}/`), "not among the broker's own data");
  });

  it("the one-shot mqtt-accounts writes them before Mosquitto starts, into the volume Mosquitto reads them from", () => {
    const mosquitto = compose.services.mosquitto;
    const accounts = compose.services[MQTT_ACCOUNTS];
    assert.ok(mosquitto && accounts, `services mosquitto and ${MQTT_ACCOUNTS}`);
    assert.equal(dependsOn(mosquitto)[MQTT_ACCOUNTS]?.condition, "service_completed_successfully", "Mosquitto starts only once the accounts are written");
    assert.ok(isPlantwire(accounts) && isOneShot(accounts), "a one-shot of the plantwire image");
    assert.deepEqual(accounts.command, ["node", "scripts/mqtt-accounts.ts", "provision"]);
    assert.ok(existsSync(join(ROOT, "scripts", "mqtt-accounts.ts")));
    assert.deepEqual(Object.keys(dependsOn(accounts)), [], "it needs no server");
    const dir = posix.dirname(mosquittoOption(conf, "password_file") ?? "");
    const mount = volumeStrings(mosquitto).find((v) => v.split(":")[1] === dir);
    assert.ok(mount, `mosquitto mounts a volume at ${dir}`);
    const [volume = "", , mode] = mount.split(":");
    assert.equal(mode, "ro", "the broker only reads its accounts");
    assert.ok(Object.keys(compose.volumes ?? {}).includes(volume), `${volume}: a named volume, so real devices' accounts survive`);
    // The account store's directory is $PLANTWIRE_DATA/mosquitto (src/mqtt-auth/account-store.ts).
    const target = `${composeEnvironment(accounts).PLANTWIRE_DATA ?? "(PLANTWIRE_DATA unset)"}/mosquitto`;
    assert.ok(volumeStrings(accounts).includes(`${volume}:${target}`), `${MQTT_ACCOUNTS} mounts ${volume} at ${target}`);
    // The files are mode 600: only their owner, the broker's user, may read them. A new volume
    // takes the owner of the image's mount point, so the image must create it owned by that user.
    assert.equal(accounts.user, MOSQUITTO_USER);
    assert.match(readRepoFile("Dockerfile"), new RegExp(`chown ${MOSQUITTO_USER} ${target}\\b`), `the Dockerfile creates ${target} owned by ${MOSQUITTO_USER}`);
  });

  it("every service that talks MQTT gets MQTT_SECRET, required, and the one-shot provisions the accounts they log in with", () => {
    const clients = MQTT_CLIENT_SERVICES;
    for (const known of ["preprocessor", "control", "plc-simulator"]) assert.ok(clients.includes(known), `${known} needs MQTT_SECRET (src/shared/config.ts requireSecrets)`);
    const required = /^\$\{MQTT_SECRET:\?[^}]+\}$/;
    for (const [name, s] of Object.entries(compose.services).filter(([, x]) => isPlantwire(x))) {
      const env = composeEnvironment(s);
      assert.equal(env.MQTT_USERNAME, undefined, `${name}: MQTT_USERNAME is gone`);
      assert.equal(env.MQTT_PASSWORD, undefined, `${name}: MQTT_PASSWORD is gone`);
      if (name === MQTT_ACCOUNTS || clients.includes(env.SERVICES ?? "")) {
        assert.match(env.MQTT_SECRET ?? "(unset)", required, `${name}: MQTT_SECRET from the environment or .env; Compose refuses to start without it`);
      } else {
        assert.equal(env.MQTT_SECRET, undefined, `${name} talks no MQTT: it does not get MQTT_SECRET`);
      }
    }
    const raw = (name: string) => composeEnvironment(compose.services[name] ?? {});
    for (const client of clients) {
      for (const key of ["MOLECULER_NAMESPACE", "MQTT_TOPIC_ROOT", "MQTT_SECRET"]) assert.equal(raw(client)[key], raw(MQTT_ACCOUNTS)[key], `${client}: ${key} as ${MQTT_ACCOUNTS} has it`);
    }
    for (const key of ["PLC_COUNT", "PLC_SEED", "PLC_SITE"]) assert.equal(raw("plc-simulator")[key], raw(MQTT_ACCOUNTS)[key], `plc-simulator: ${key} as ${MQTT_ACCOUNTS} has it`);
  });

  it("provisioning with the one-shot's environment writes exactly the accounts of the services and of the simulator's PLCs", () => {
    const env = { ...unsetEnvironment(compose.services[MQTT_ACCOUNTS]), MQTT_SECRET: TEST_SECRET };
    const simulator = loadConfig({ ...unsetEnvironment(compose.services["plc-simulator"]), MQTT_SECRET: TEST_SECRET });
    const data = mkdtempSync(join(tmpdir(), "plantwire-mqtt-accounts-"));
    try {
      const command = (compose.services[MQTT_ACCOUNTS]?.command as string[]).join(" ");
      const first = sh(command, { ...env, PLANTWIRE_DATA: data });
      assert.equal(first.status, 0, first.stderr);
      const files = join(data, "mosquitto");
      for (const name of ["passwd", "acl", "accounts.json"]) assert.equal(statSync(join(files, name)).mode & 0o777, 0o600, `${name}: mode 600`);
      const users = readFileSync(join(files, "passwd"), "utf8").trim().split("\n").map((line) => line.slice(0, line.indexOf(":")));
      const expected = [
        ...SERVICE_ROLES.map((role) => serviceUsername(simulator.namespace, role)),
        ...plantLayout(simulator.plc.count, simulator.plc.seed, simulator.plc.site).map((plc) => deviceUsername(simulator.topicRoot, plc)),
      ];
      assert.ok(simulator.plc.count > 0);
      assert.deepEqual([...users].sort(), [...expected].sort());
      // Every `docker compose up` runs it again: nothing changes.
      const again = sh(command, { ...env, PLANTWIRE_DATA: data });
      assert.equal(again.status, 0, again.stderr);
      assert.match(again.stdout, /unchanged/);
      // Without the secret it refuses (and Mosquitto, waiting for it, does not start).
      assert.notEqual(sh(command, { ...env, MQTT_SECRET: "", PLANTWIRE_DATA: data }).status, 0);
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });

  it("Mosquitto runs the shipped config unless MQTT_AUTH=off, the demo switch, which opens it", () => {
    const mosquitto = compose.services.mosquitto;
    assert.equal(unsetEnvironment(mosquitto).MQTT_AUTH, "on", "on unless set");
    const command = mosquitto?.command;
    assert.ok(Array.isArray(command) && command.length === 3 && command[0] === "/bin/sh" && command[1] === "-c", "/bin/sh -c <script>");
    const script = interpolateUnset(command[2] ?? "");
    const dir = mkdtempSync(join(tmpdir(), "plantwire-mosquitto-"));
    try {
      const shipped = join(dir, "mosquitto.conf");
      const demo = join(dir, "demo.conf");
      writeFileSync(shipped, conf);
      for (const part of ["/mosquitto/config/mosquitto.conf", "/tmp/mosquitto.conf", "exec /usr/sbin/mosquitto -c "]) assert.ok(script.includes(part), part);
      const local = script.replaceAll("/mosquitto/config/mosquitto.conf", shipped).replaceAll("/tmp/mosquitto.conf", demo).replaceAll("exec /usr/sbin/mosquitto -c ", "exec echo ");
      for (const value of ["on", ""]) {
        const run = sh(local, { MQTT_AUTH: value });
        assert.equal(run.status, 0, run.stderr);
        assert.equal(run.stdout.trim(), shipped, `MQTT_AUTH=${value}: the shipped file`);
        assert.equal(existsSync(demo), false);
      }
      const off = sh(local, { MQTT_AUTH: "off" });
      assert.equal(off.status, 0, off.stderr);
      assert.equal(off.stdout.trim(), demo, "MQTT_AUTH=off: the copy");
      assert.match(off.stderr, /WARNING: MQTT_AUTH=off/);
      const opened = readFileSync(demo, "utf8");
      assert.equal(mosquittoOption(opened, "allow_anonymous"), "true");
      assert.equal(mosquittoOption(opened, "password_file"), undefined);
      assert.equal(mosquittoOption(opened, "acl_file"), undefined);
      const rest = (text: string) => text.split("\n").filter((l) => !/^(allow_anonymous|password_file|acl_file)\s/.test(l));
      assert.deepEqual(rest(opened), rest(conf), "otherwise the same file");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("Mosquitto's healthcheck passes when the broker answers, refusing the anonymous probe or not, and fails when it does not", () => {
    const [form, command = ""] = healthcheckCommand(compose.services.mosquitto ?? {});
    assert.equal(form, "CMD-SHELL");
    const dir = mkdtempSync(join(tmpdir(), "plantwire-healthcheck-"));
    try {
      // A stand-in for the image's mosquitto_sub, answering like it does.
      const fake = join(dir, "mosquitto_sub");
      writeFileSync(fake, '#!/bin/sh\nprintf "%s" "$OUT"\nprintf "%s" "$ERR" >&2\nexit "$STATUS"\n');
      chmodSync(fake, 0o755);
      const check = (out: string, err: string, status: number) => sh(interpolateUnset(command), { PATH: `${dir}:${process.env.PATH ?? ""}`, OUT: out, ERR: err, STATUS: String(status) }).status;
      assert.equal(check("", "Connection error: Connection Refused: not authorised.\n", 5), 0, "accounts only: the anonymous probe is refused");
      assert.equal(check("42 seconds\n", "", 0), 0, "MQTT_AUTH=off: $SYS/broker/uptime arrives");
      assert.notEqual(check("", "Error: Connection refused\n", 1), 0, "nothing listens");
      assert.notEqual(check("", "Timed out\n", 27), 0, "no answer");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe(".env.example", () => {
  it("lists exactly the variables src/shared/config.ts reads, each with its default", () => {
    const example = parseDotenv(readRepoFile(".env.example"));
    assert.deepEqual([...example.keys()].sort(), [...configNames()].sort());
    assert.deepEqual(loadConfig(Object.fromEntries(example)), loadConfig({}), "the values are the defaults");
  });

  it("comments every variable", () => {
    const lines = readRepoFile(".env.example").split("\n");
    lines.forEach((line, i) => {
      if (/^[A-Z_]+=/.test(line)) {
        const above = lines.slice(0, i).reverse().find((l) => !/^[A-Z_]+=/.test(l));
        assert.match(above ?? "", /^# /, `${line} has a comment above it`);
      }
    });
  });
});
