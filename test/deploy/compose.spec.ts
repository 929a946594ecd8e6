// docker-compose.yml, checked offline: valid for the Compose Specification (its JSON schema,
// vendored in deploy/schema/), and the contracts that make `docker compose up` work the first
// time. Also .env.example, which lists every setting of src/shared/config.ts.
import { strict as assert } from "node:assert";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { ALL_SERVICES, loadConfig } from "../../src/shared/config.ts";
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

function isPlantwire(service: ComposeService): boolean {
  return (service.image ?? "").startsWith(`${PLANTWIRE_IMAGE}:`);
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
      assert.equal(s.user, "1000:1000", `${name}: the image's non-root user`);
      assert.equal(s.read_only, true, `${name}: read-only root filesystem`);
    }
  });

  it("plantwire containers set only variables src/shared/config.ts reads", () => {
    const names = configNames();
    for (const [name, s] of Object.entries(compose.services).filter(([, x]) => isPlantwire(x))) {
      for (const key of Object.keys(composeEnvironment(s))) assert.ok(names.has(key), `${name}: ${key} is not read by src/shared/config.ts`);
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
      if (isPlantwire(s) && name !== "kafka-topics") {
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
    for (const name of ["plc-simulator", "preprocessor"]) assert.equal((compose.services[name]?.depends_on as Record<string, { condition: string }>).mosquitto?.condition, "service_healthy", name);
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
