// Kubernetes manifests, checked offline: each overlay is rendered with `kubectl kustomize`, every
// object is validated against the Kubernetes schemas (kubernetes-validate, strict: unknown
// fields fail), and the contracts that make a first deploy work are checked on the render.
import { strict as assert } from "node:assert";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, posix } from "node:path";
import { deviceUsername, SERVICE_ROLES, serviceUsername } from "../../src/mqtt-auth/accounts.ts";
import { plantLayout } from "../../src/plc/plant-layout.ts";
import { ALL_SERVICES, loadConfig, MQTT_CLIENT_SERVICES } from "../../src/shared/config.ts";
import { isValidLevel } from "../../src/shared/topics.ts";
import {
  allContainers,
  composeEnvironment,
  configNames,
  find,
  generated,
  get,
  infraScriptClusterId,
  isPlantwireImage,
  loadCompose,
  OVERLAYS,
  parseDotenv,
  podTemplates,
  readRepoFile,
  render,
  ROOT,
  secretKeys,
  secretValue,
  type Container,
  type K8sObject,
  type Overlay,
  type PodTemplateOwner,
  type Probe,
} from "./helpers.ts";

/** Kubernetes versions the manifests must be valid for: the oldest still in wide use and the newest bundled. */
const KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"];
const PYTHON = process.env.PYTHON ?? "python3";

const NAMESPACES: Record<Overlay, string> = { dev: "plantwire-dev", prod: "plantwire" };

/** Secrets an overlay expects to exist in the cluster instead of generating them. */
const EXTERNAL_SECRETS: Record<Overlay, Record<string, string[]>> = {
  dev: {},
  prod: { "plantwire-secrets": [...parseDotenv(readRepoFile("k8s/overlays/prod/secrets.env.example")).keys()] },
};

/** HTTP paths each image answers (plantwire: src/main.ts; NATS: its monitoring port). */
const HTTP_PATHS: Record<string, string[]> = {
  plantwire: ["/live", "/ready"],
  nats: ["/healthz", "/varz"],
};

/** Which servers each plantwire workload talks to besides NATS and Redis (ARCHITECTURE.md). */
const CLIENT_OF: Record<string, ("kafka" | "mongo" | "mqtt")[]> = {
  devices: ["mongo"],
  "plc-simulator": ["mqtt"],
  preprocessor: ["mqtt", "kafka"],
  historian: ["kafka", "mongo"],
  "anomaly-detector": ["kafka", "mongo"],
  alarms: ["kafka", "mongo"],
  control: ["mqtt", "kafka", "mongo"],
  "dead-letters": ["kafka", "mongo"],
  auth: ["mongo"],
  api: [],
  "kafka-topics": ["kafka"],
  "mongo-init": ["mongo"],
};
const SERVER: Record<"kafka" | "mongo" | "mqtt", { name: string; port: number }> = {
  kafka: { name: "kafka", port: 9092 },
  mongo: { name: "mongo", port: 27017 },
  mqtt: { name: "mosquitto", port: 1883 },
};

const AUTOSCALED = ["preprocessor", "historian", "api"];

/** Variables a plantwire container may set besides config.ts's: read by the script it runs. */
const SCRIPT_VARIABLES: Record<string, string> = { PLANTWIRE_DATA: "scripts/mqtt-accounts.ts" };

/** uid of the `mosquitto` user of the eclipse-mosquitto image. */
const MOSQUITTO_UID = 1883;

const TEST_SECRET = "a-test-mqtt-secret-of-more-than-32-characters";


/** What a container runs: its command and args as one line. */
function commandLine(container: Container): string {
  return [...(container.command ?? []), ...(container.args ?? [])].join(" ");
}

/** The value of a Mosquitto config directive (the last one wins, as in Mosquitto). */
function mosquittoOption(text: string, directive: string): string | undefined {
  return [...text.matchAll(new RegExp(`^${directive}\\s+(.+?)\\s*$`, "gm"))].at(-1)?.[1];
}

function imageRepository(image: string): string {
  const withoutTag = image.replace(/:[^/:]+$/, "");
  return withoutTag.split("/").pop() ?? withoutTag;
}

function portMatches(container: Container, port: number | string): boolean {
  return (container.ports ?? []).some((p) => (typeof port === "string" ? p.name === port : p.containerPort === port));
}

function probesOf(container: Container): [string, Probe][] {
  const probes: [string, Probe | undefined][] = [
    ["livenessProbe", container.livenessProbe],
    ["readinessProbe", container.readinessProbe],
    ["startupProbe", container.startupProbe],
  ];
  return probes.filter((p): p is [string, Probe] => p[1] !== undefined);
}

function labelsMatch(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  return Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);
}

interface NetworkPolicySpec {
  podSelector: { matchLabels?: Record<string, string> };
  policyTypes?: string[];
  ingress?: { from?: { podSelector?: { matchLabels?: Record<string, string> }; namespaceSelector?: unknown; ipBlock?: unknown }[]; ports?: { port?: number | string }[] }[];
}

/** Whether the render's NetworkPolicies let a pod with `client` labels reach `server` pods on `port`. */
function ingressAllowed(objects: K8sObject[], server: Record<string, string>, client: Record<string, string>, port: number): boolean {
  const policies = objects
    .filter((o) => o.kind === "NetworkPolicy")
    .map((o) => o.spec as unknown as NetworkPolicySpec)
    .filter((p) => (p.policyTypes ?? ["Ingress"]).includes("Ingress") && labelsMatch(p.podSelector.matchLabels, server));
  if (policies.length === 0) return true;
  return policies.some((p) =>
    (p.ingress ?? []).some((rule) => {
      const portOk = !rule.ports || rule.ports.length === 0 || rule.ports.some((rp) => rp.port === undefined || rp.port === port);
      const fromOk = !rule.from || rule.from.length === 0 || rule.from.some((peer) => peer.podSelector !== undefined && peer.namespaceSelector === undefined && peer.ipBlock === undefined && labelsMatch(peer.podSelector.matchLabels, client));
      return portOk && fromOk;
    }),
  );
}

function configMapData(objects: K8sObject[], name: string): Record<string, string> {
  return get(objects, "ConfigMap", name).data ?? {};
}

function properties(text: string): Map<string, string> {
  const entries = new Map<string, string>();
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const at = trimmed.indexOf("=");
    entries.set(trimmed.slice(0, at), trimmed.slice(at + 1));
  }
  return entries;
}

interface DocumentedReplicas {
  name: string;
  kind: string;
  dev: string;
  prod: string;
}

/** The replica table of docs/deploy.md: rows `| name | Kind | dev | prod |` below "Replica counts". */
function documentedReplicas(): DocumentedReplicas[] {
  const docs = readRepoFile("docs/deploy.md");
  const section = docs.slice(docs.indexOf("### Replica counts"));
  const rows: DocumentedReplicas[] = [];
  for (const line of section.split("\n").slice(1)) {
    if (line.startsWith("#")) break;
    const cells = line.split("|").map((c) => c.trim().replace(/`/g, ""));
    if (cells.length < 6 || !/^(Deployment|StatefulSet)$/.test(cells[2] ?? "")) continue;
    rows.push({ name: cells[1] ?? "", kind: cells[2] ?? "", dev: cells[3] ?? "", prod: cells[4] ?? "" });
  }
  return rows;
}

describe("Kubernetes manifests (k8s/)", function () {
  this.timeout(120_000);

  it("the base renders on its own (namespace-agnostic)", () => {
    const kubectl = process.env.KUBECTL ?? "kubectl";
    const text = execFileSync(kubectl, ["kustomize", join(ROOT, "k8s", "base")], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    assert.doesNotMatch(text, /^\s+namespace: /m, "the base must not set namespaces: overlays do");
  });

  for (const overlay of OVERLAYS) {
    describe(`overlay ${overlay}`, () => {
      let objects: K8sObject[] = [];
      let workloads: PodTemplateOwner[] = [];
      let plantwire: { owner: PodTemplateOwner; container: Container }[] = [];

      before(() => {
        objects = render(overlay).objects;
        workloads = podTemplates(objects);
        plantwire = workloads.flatMap((owner) => allContainers(owner.pod).filter((c) => isPlantwireImage(c.image)).map((container) => ({ owner, container })));
      });

      it("renders with kubectl kustomize", () => {
        assert.ok(objects.length > 50, `only ${objects.length} objects rendered`);
        const ids = objects.map((o) => `${o.kind}/${o.metadata.name}`);
        assert.deepEqual(ids.filter((id, i) => ids.indexOf(id) !== i), [], "duplicate objects");
      });

      for (const version of KUBERNETES_VERSIONS) {
        it(`every object is valid for Kubernetes ${version} (kubernetes-validate --strict)`, () => {
          const probe = spawnSync(PYTHON, ["-m", "kubernetes_validate", "--version"], { encoding: "utf8" });
          assert.equal(probe.status, 0, `kubernetes-validate is missing: install it with \`${PYTHON} -m pip install kubernetes-validate==1.37.0\` (${probe.stderr || probe.error?.message})`);
          const dir = mkdtempSync(join(tmpdir(), "plantwire-k8s-"));
          try {
            const file = join(dir, `${overlay}.yaml`);
            writeFileSync(file, render(overlay).text);
            const run = spawnSync(PYTHON, ["-m", "kubernetes_validate", "--strict", "--kubernetes-version", version, "--quiet", file], { encoding: "utf8" });
            const problems = `${run.stdout}\n${run.stderr}`.split("\n").filter((l) => /^(ERROR|WARN|CRITICAL)/.test(l));
            assert.deepEqual(problems, [], `kubernetes-validate reported problems (exit ${run.status})`);
            assert.equal(run.status, 0, run.stderr);
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        });
      }

      it(`everything lands in the namespace ${NAMESPACES[overlay]}, which enforces the restricted Pod Security Standard`, () => {
        const ns = get(objects, "Namespace", NAMESPACES[overlay]);
        assert.equal(ns.metadata.labels?.["pod-security.kubernetes.io/enforce"], "restricted");
        for (const o of objects.filter((x) => x.kind !== "Namespace")) {
          assert.equal(o.metadata.namespace, NAMESPACES[overlay], `${o.kind}/${o.metadata.name}`);
        }
      });

      it("every referenced ConfigMap, Secret, key, PVC, volume and ServiceAccount exists", () => {
        const external = EXTERNAL_SECRETS[overlay];
        const hasConfigMap = (name: string) => find(objects, "ConfigMap", name) !== undefined;
        const secretHasKey = (name: string, key?: string) => {
          const secret = find(objects, "Secret", name);
          if (secret) return key === undefined || secretKeys(secret).includes(key);
          const keys = external[name];
          return keys !== undefined && (key === undefined || keys.includes(key));
        };
        for (const w of workloads) {
          const sa = w.pod.serviceAccountName;
          assert.ok(sa && find(objects, "ServiceAccount", sa), `${w.id}: ServiceAccount ${sa} is missing`);
          assert.equal(w.pod.automountServiceAccountToken, false, `${w.id}: no workload needs the API token`);
          const volumes = new Map((w.pod.volumes ?? []).map((v) => [v.name, v]));
          for (const v of w.pod.volumes ?? []) {
            if (v.configMap) {
              assert.ok(hasConfigMap(v.configMap.name), `${w.id}: volume ${v.name} needs ConfigMap ${v.configMap.name}`);
              for (const item of v.configMap.items ?? []) assert.ok(configMapData(objects, v.configMap.name)[item.key] !== undefined, `${w.id}: key ${item.key}`);
            }
            if (v.secret) assert.ok(secretHasKey(v.secret.secretName), `${w.id}: volume ${v.name} needs Secret ${v.secret.secretName}`);
            if (v.persistentVolumeClaim) assert.ok(find(objects, "PersistentVolumeClaim", v.persistentVolumeClaim.claimName), `${w.id}: PVC ${v.persistentVolumeClaim.claimName}`);
          }
          for (const c of allContainers(w.pod)) {
            for (const m of c.volumeMounts ?? []) {
              assert.ok(volumes.has(m.name) || w.claimTemplates.includes(m.name), `${w.id}/${c.name}: mount ${m.name} has no volume or volumeClaimTemplate`);
            }
            for (const from of c.envFrom ?? []) {
              if (from.configMapRef) assert.ok(hasConfigMap(from.configMapRef.name), `${w.id}/${c.name}: envFrom ConfigMap ${from.configMapRef.name}`);
              if (from.secretRef) assert.ok(secretHasKey(from.secretRef.name), `${w.id}/${c.name}: envFrom Secret ${from.secretRef.name}`);
            }
            for (const e of c.env ?? []) {
              const cm = e.valueFrom?.configMapKeyRef;
              if (cm) assert.ok(configMapData(objects, cm.name)[cm.key] !== undefined, `${w.id}/${c.name}: ${e.name} needs key ${cm.key} of ConfigMap ${cm.name}`);
              const sk = e.valueFrom?.secretKeyRef;
              if (sk) assert.ok(secretHasKey(sk.name, sk.key), `${w.id}/${c.name}: ${e.name} needs key ${sk.key} of Secret ${sk.name}`);
            }
          }
        }
      });

      it("generated and expected Secrets have the same keys in every overlay", () => {
        const devSecret = generated(render("dev").objects, "Secret", "plantwire-secrets");
        assert.ok(devSecret, "overlays/dev generates plantwire-secrets");
        const expected = secretKeys(devSecret).sort();
        const secret = generated(objects, "Secret", "plantwire-secrets");
        const keys = secret ? secretKeys(secret).sort() : [...(EXTERNAL_SECRETS[overlay]["plantwire-secrets"] ?? [])].sort();
        assert.deepEqual(keys, expected);
        const value = (key: string) => (secret ? secretValue(secret, key) : parseDotenv(readRepoFile("k8s/overlays/prod/secrets.env.example")).get(key));
        const redisUrl = new URL(value("REDIS_URL") ?? "");
        assert.equal(decodeURIComponent(redisUrl.password), value("REDIS_PASSWORD"), "REDIS_URL carries the password the Redis server requires");
      });

      it("every Service selects pods and targets ports they declare; StatefulSets have their headless Service", () => {
        for (const svc of objects.filter((o) => o.kind === "Service")) {
          const spec = svc.spec as { selector?: Record<string, string>; ports?: { targetPort?: number | string }[] };
          const pods = workloads.filter((w) => labelsMatch(spec.selector, w.labels));
          assert.ok(pods.length > 0, `Service ${svc.metadata.name} selects no pod`);
          for (const p of spec.ports ?? []) {
            if (p.targetPort === undefined) continue;
            const target = p.targetPort;
            assert.ok(pods.every((w) => w.pod.containers.some((c) => portMatches(c, target))), `Service ${svc.metadata.name}: targetPort ${target} is not declared`);
          }
        }
        for (const w of workloads.filter((x) => x.object.kind === "StatefulSet")) {
          const name = (w.object.spec as { serviceName?: string }).serviceName ?? "";
          const svc = get(objects, "Service", name);
          assert.equal((svc.spec as { clusterIP?: string }).clusterIP, "None", `${w.id}: ${name} must be headless`);
        }
      });

      it("every probe is an HTTP or TCP check on a declared port (no exec probe needs a tool in the image)", () => {
        for (const w of workloads) {
          for (const c of allContainers(w.pod)) {
            for (const [kind, probe] of probesOf(c)) {
              const where = `${w.id}/${c.name} ${kind}`;
              assert.equal(probe.exec, undefined, `${where}: exec probes depend on tools inside the image`);
              const port = probe.httpGet?.port ?? probe.tcpSocket?.port ?? probe.grpc?.port;
              assert.ok(port !== undefined, `${where}: no port`);
              assert.ok(portMatches(c, port), `${where}: port ${port} is not a declared container port`);
              if (probe.httpGet) {
                const paths = HTTP_PATHS[isPlantwireImage(c.image) ? "plantwire" : imageRepository(c.image)] ?? [];
                assert.ok(paths.includes(probe.httpGet.path ?? "/"), `${where}: ${probe.httpGet.path} is not an endpoint of ${c.image}`);
              }
            }
            if (w.pod.initContainers?.includes(c)) {
              assert.equal(probesOf(c).length, 0, `${w.id}/${c.name}: an init container runs to completion, without probes`);
            } else if (w.object.kind !== "Job") {
              assert.ok(c.livenessProbe && c.readinessProbe, `${w.id}/${c.name}: liveness and readiness probes`);
            }
          }
        }
      });

      it("plantwire containers: liveness GET /live and readiness GET /ready on the health port HEALTH_PORT names", () => {
        const env = configMapData(objects, generated(objects, "ConfigMap", "plantwire-env")?.metadata.name ?? "plantwire-env");
        const healthPort = Number(env.HEALTH_PORT);
        assert.ok(healthPort > 0, "HEALTH_PORT is set in plantwire-env");
        const main = readRepoFile("src/main.ts");
        assert.match(main, /req\.url === "\/live"/);
        assert.match(main, /req\.url === "\/ready"/);
        for (const { owner, container: c } of plantwire.filter((p) => p.owner.object.kind !== "Job" && p.owner.pod.containers.includes(p.container))) {
          const where = `${owner.id}/${c.name}`;
          const declared = (c.ports ?? []).find((p) => p.name === "health");
          assert.equal(declared?.containerPort, healthPort, `${where}: containerPort "health" is HEALTH_PORT`);
          assert.deepEqual(c.livenessProbe?.httpGet, { path: "/live", port: "health" }, where);
          assert.deepEqual(c.readinessProbe?.httpGet, { path: "/ready", port: "health" }, where);
        }
        const api = plantwire.find((p) => p.owner.object.metadata.name === "api")?.container;
        const apiEnv = new Map((api?.env ?? []).map((e) => [e.name, e.value]));
        assert.equal(apiEnv.get("API_HOST"), "0.0.0.0", "the API listens on all interfaces");
        assert.equal(Number(apiEnv.get("API_PORT")), api?.ports?.find((p) => p.name === "http")?.containerPort, "containerPort http is API_PORT");
      });

      it("every container has resource requests and a memory limit", () => {
        for (const w of workloads) {
          for (const c of allContainers(w.pod)) {
            const r = c.resources;
            assert.ok(r?.requests?.cpu && r.requests.memory && r.limits?.memory, `${w.id}/${c.name}: requests.cpu, requests.memory, limits.memory`);
          }
        }
      });

      it("every pod is hardened: non-root, read-only root filesystem, no privilege escalation, no capabilities (restricted)", () => {
        const allowedVolumes = ["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];
        for (const w of workloads) {
          const pod = w.pod;
          assert.ok(!pod.hostNetwork && !pod.hostPID && !pod.hostIPC, `${w.id}: host namespaces`);
          assert.equal(pod.securityContext?.runAsNonRoot, true, `${w.id}: pod runAsNonRoot`);
          assert.ok((pod.securityContext?.runAsUser ?? 0) > 0, `${w.id}: a numeric non-root runAsUser`);
          assert.equal(pod.securityContext?.seccompProfile?.type, "RuntimeDefault", `${w.id}: seccompProfile`);
          for (const v of pod.volumes ?? []) {
            const type = Object.keys(v).find((k) => k !== "name") ?? "";
            assert.ok(allowedVolumes.includes(type), `${w.id}: volume type ${type} is not allowed by the restricted standard`);
          }
          for (const c of allContainers(pod)) {
            const sc = c.securityContext;
            const where = `${w.id}/${c.name}`;
            assert.equal(sc?.runAsNonRoot, true, `${where}: runAsNonRoot`);
            assert.equal(sc?.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`);
            assert.equal(sc?.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation`);
            assert.notEqual(sc?.privileged, true, `${where}: privileged`);
            assert.deepEqual(sc?.capabilities?.drop, ["ALL"], `${where}: capabilities.drop`);
            assert.deepEqual(sc?.capabilities?.add ?? [], [], `${where}: capabilities.add`);
            assert.notEqual(sc?.runAsUser, 0, `${where}: runAsUser 0`);
          }
        }
        for (const { owner, container } of plantwire) {
          const tmp = container.volumeMounts?.find((m) => m.mountPath === "/tmp");
          const volume = owner.pod.volumes?.find((v) => v.name === tmp?.name);
          assert.ok(volume?.emptyDir, `${owner.id}/${container.name}: /tmp is a writable emptyDir`);
        }
      });

      it("every image is pinned to a tag (never latest), and infrastructure images match docker-compose.yml", () => {
        const compose = loadCompose();
        const composeImages = new Set(Object.values(compose.services).map((s) => s.image ?? ""));
        for (const w of workloads) {
          for (const c of allContainers(w.pod)) {
            const tag = /:([^/:]+)$/.exec(c.image)?.[1];
            assert.ok(tag && tag !== "latest", `${w.id}/${c.name}: ${c.image} has no pinned tag`);
            if (!isPlantwireImage(c.image)) assert.ok(composeImages.has(c.image), `${c.image} differs from docker-compose.yml`);
          }
        }
      });

      it("every plantwire container sets only variables src/shared/config.ts reads (helpers only feed them)", () => {
        const names = configNames();
        const external = EXTERNAL_SECRETS[overlay];
        for (const { owner, container: c } of plantwire) {
          const where = `${owner.id}/${c.name}`;
          const fromEnvFrom = (c.envFrom ?? []).flatMap((f) => {
            if (f.configMapRef) return Object.keys(configMapData(objects, f.configMapRef.name));
            const secret = f.secretRef ? find(objects, "Secret", f.secretRef.name) : undefined;
            return secret ? secretKeys(secret) : (f.secretRef ? external[f.secretRef.name] ?? [] : []);
          });
          for (const name of fromEnvFrom) assert.ok(names.has(name), `${where}: ${name} (envFrom) is not read by src/shared/config.ts`);
          const env = c.env ?? [];
          env.forEach((e, i) => {
            for (const ref of (e.value ?? "").matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
              assert.ok(env.slice(0, i).some((earlier) => earlier.name === ref[1]), `${where}: ${e.name} refers to $(${ref[1]}), which must be defined before it`);
            }
            if (names.has(e.name)) return;
            const script = SCRIPT_VARIABLES[e.name];
            if (script !== undefined && commandLine(c).includes(script)) {
              assert.match(readRepoFile(script), new RegExp(`process\\.env\\.${e.name}\\b`), `${where}: ${script} reads ${e.name}`);
              return;
            }
            const feeds = env.slice(i + 1).some((later) => names.has(later.name) && (later.value ?? "").includes(`$(${e.name})`));
            assert.ok(feeds, `${where}: ${e.name} is not read by src/shared/config.ts and feeds no variable that is`);
          });
          const services = env.find((e) => e.name === "SERVICES")?.value;
          if (services !== undefined) assert.ok(services.split(",").every((s) => ALL_SERVICES.includes(s)), `${where}: SERVICES=${services}`);
        }
        const run = new Set(plantwire.flatMap(({ container: c }) => (c.env ?? []).find((e) => e.name === "SERVICES")?.value?.split(",") ?? []));
        assert.deepEqual([...run].sort(), [...ALL_SERVICES].sort(), "every service runs somewhere");
      });

      it("the Kafka cluster id is fixed, and the same in Kubernetes, docker-compose.yml and scripts/infra.sh", () => {
        const config = generated(objects, "ConfigMap", "kafka-config");
        assert.ok(config, "ConfigMap kafka-config is generated");
        const id = config.data?.CLUSTER_ID ?? "";
        assert.match(id, /^[A-Za-z0-9_-]{22}$/, "a KRaft cluster id: 16 bytes, base64url");
        assert.equal(Buffer.from(id, "base64url").length, 16);
        assert.equal(composeEnvironment(loadCompose().services.kafka ?? {}).CLUSTER_ID, id, "docker-compose.yml");
        assert.equal(infraScriptClusterId(), id, "scripts/infra.sh");
        const kafka = get(objects, "StatefulSet", "kafka");
        const container = podTemplates([kafka])[0]?.pod.containers.find((c) => c.name === "kafka");
        const env = container?.env?.find((e) => e.name === "CLUSTER_ID");
        assert.deepEqual(env?.valueFrom?.configMapKeyRef, { name: config.metadata.name, key: "CLUSTER_ID" }, "from the ConfigMap, never generated at start");
        const script = config.data?.["start.sh"] ?? "";
        assert.match(script, /format --cluster-id "\$CLUSTER_ID"/);
        assert.doesNotMatch(script, /random-uuid/);
        assert.match(script, /meta\.properties/, "a volume of another cluster is reported, not reformatted");
      });

      it("the Kafka quorum, replication and KAFKA_REPLICATION agree with the number of Kafka nodes", () => {
        const config = generated(objects, "ConfigMap", "kafka-config");
        const props = properties(`${config?.data?.["server.properties"]}\n${config?.data?.["replication.properties"]}`);
        const replicas = podTemplates([get(objects, "StatefulSet", "kafka")])[0]?.replicas ?? 1;
        const voters = (props.get("controller.quorum.voters") ?? "").split(",");
        assert.deepEqual(voters, Array.from({ length: replicas }, (_, i) => `${i}@kafka-${i}.kafka-headless:9093`));
        assert.equal(props.get("process.roles"), "broker,controller");
        assert.equal(props.get("auto.create.topics.enable"), "false");
        const env = generated(objects, "ConfigMap", "plantwire-env")?.data ?? {};
        const rf = Number(env.KAFKA_REPLICATION);
        assert.equal(rf, overlay === "prod" ? 3 : 1);
        assert.ok(rf <= replicas, "replication factor <= brokers");
        assert.equal(Number(props.get("default.replication.factor")), rf);
        assert.equal(Number(props.get("offsets.topic.replication.factor")), rf);
        assert.ok(Number(props.get("min.insync.replicas")) <= Math.max(1, rf - 1), "one broker may be down (PDB maxUnavailable 1)");
        for (const key of ["node.id", "cluster.id", "log.dirs", "advertised.listeners"]) assert.ok(!props.has(key), `${key} is set per pod by start.sh`);
      });

      it("the MongoDB replica set: MONGO_URL, the init Job and the StatefulSet name the same members", () => {
        const mongo = podTemplates([get(objects, "StatefulSet", "mongo")])[0];
        const replicas = mongo?.replicas ?? 1;
        const members = Array.from({ length: replicas }, (_, i) => `mongo-${i}.mongo-headless:27017`);
        const replSet = /--replSet=(\S+)/.exec((mongo?.pod.containers[0]?.command ?? []).join(" "))?.[1];
        assert.equal(replSet, "rs0");
        const secret = generated(objects, "Secret", "plantwire-secrets");
        const mongoUrl = secret ? secretValue(secret, "MONGO_URL") : parseDotenv(readRepoFile("k8s/overlays/prod/secrets.env.example")).get("MONGO_URL");
        const match = /^mongodb:\/\/([^/]+)\/(\w+)\?(.*)$/.exec(mongoUrl ?? "");
        assert.ok(match, `MONGO_URL ${mongoUrl}`);
        assert.deepEqual(match[1]?.split(","), members);
        assert.equal(new URLSearchParams(match[3]).get("replicaSet"), replSet);
        const job = podTemplates([get(objects, "Job", "mongo-init")])[0]?.pod.containers[0];
        assert.equal(job?.env?.find((e) => e.name === "MONGO_MEMBERS")?.value, members.join(","));
        assert.equal(job?.env?.find((e) => e.name === "MONGO_REPLICA_SET")?.value, replSet);
        if (overlay === "prod") assert.equal(replicas, 3);
      });

      it("NATS: a cluster route for every server", () => {
        const nats = podTemplates([get(objects, "StatefulSet", "nats")])[0];
        const conf = generated(objects, "ConfigMap", "nats-config")?.data?.["nats.conf"] ?? "";
        const routes = [...conf.matchAll(/nats:\/\/(nats-\d+)\.nats-headless:6222/g)].map((m) => m[1]);
        const replicas = nats?.replicas ?? 1;
        if (replicas > 1) assert.deepEqual(routes, Array.from({ length: replicas }, (_, i) => `nats-${i}`));
        else assert.deepEqual(routes, []);
      });

      it("Mosquitto starts from the ConfigMap built from k8s/base/config/mosquitto.conf", () => {
        const config = generated(objects, "ConfigMap", "mosquitto-config");
        const file = readRepoFile("k8s/base/config/mosquitto.conf");
        assert.equal(config?.data?.["mosquitto.conf"], file);
        for (const line of ["listener 1883", "listener 9001", "protocol websockets", "persistence true", "max_queued_messages 100000", "allow_anonymous false"]) {
          assert.match(file, new RegExp(`^${line}$`, "m"), line);
        }
        assert.doesNotMatch(file, /^\s*allow_anonymous\s+true\b/m, "accounts only");
        assert.match(file, /^password_file \/\S+$/m);
        assert.match(file, /^acl_file \/\S+$/m);
        const w = podTemplates([get(objects, "StatefulSet", "mosquitto")])[0];
        const c = w?.pod.containers[0];
        const mount = c?.volumeMounts?.find((m) => m.mountPath === "/mosquitto/config");
        assert.equal(w?.pod.volumes?.find((v) => v.name === mount?.name)?.configMap?.name, config?.metadata.name);
        assert.deepEqual(c?.command, ["/usr/sbin/mosquitto", "-c", "/mosquitto/config/mosquitto.conf"]);
      });

      /** A container's environment as far as the render says it: its ConfigMaps and plain values (no Secret, no $(references)). */
      const effectiveEnv = (c: Container): Record<string, string> => {
        const env: Record<string, string> = {};
        for (const from of c.envFrom ?? []) if (from.configMapRef) Object.assign(env, configMapData(objects, from.configMapRef.name));
        for (const e of c.env ?? []) if (e.value !== undefined && !e.value.includes("$(")) env[e.name] = e.value;
        return env;
      };

      const mosquittoPod = () => {
        const w = podTemplates([get(objects, "StatefulSet", "mosquitto")])[0];
        assert.ok(w);
        const broker = w.pod.containers.find((c) => c.name === "mosquitto");
        assert.ok(broker, "container mosquitto");
        const init = (w.pod.initContainers ?? []).find((c) => isPlantwireImage(c.image) && /\bnode scripts\/mqtt-accounts\.ts provision\b/.test(commandLine(c)));
        assert.ok(init, "an init container of the plantwire image runs `node scripts/mqtt-accounts.ts provision`");
        return { w, broker, init };
      };

      it("Mosquitto admits accounts only, written by an init container into the volume it reads them from before it starts", () => {
        const conf = generated(objects, "ConfigMap", "mosquitto-config")?.data?.["mosquitto.conf"] ?? "";
        assert.doesNotMatch(conf, /^\s*allow_anonymous\s+true\b/m);
        assert.equal(mosquittoOption(conf, "allow_anonymous"), "false");
        const passwd = mosquittoOption(conf, "password_file") ?? "";
        const acl = mosquittoOption(conf, "acl_file") ?? "";
        assert.equal(posix.basename(passwd), "passwd", "the name scripts/mqtt-accounts.ts writes");
        assert.equal(posix.basename(acl), "acl", "the name scripts/mqtt-accounts.ts writes");
        const dir = posix.dirname(passwd);
        assert.equal(posix.dirname(acl), dir);
        const { w, broker, init } = mosquittoPod();
        const brokerMount = broker.volumeMounts?.find((m) => m.mountPath === dir);
        assert.ok(brokerMount, `mosquitto mounts a volume at ${dir}`);
        assert.equal(brokerMount.readOnly, true, "the broker only reads its accounts");
        assert.equal(init.command, undefined, "the image's entrypoint stays");
        const data = init.env?.find((e) => e.name === "PLANTWIRE_DATA")?.value;
        assert.ok(data, "PLANTWIRE_DATA names where the files go");
        // The account store's directory is $PLANTWIRE_DATA/mosquitto (src/mqtt-auth/account-store.ts).
        const initMount = init.volumeMounts?.find((m) => m.mountPath === `${data}/mosquitto`);
        assert.equal(initMount?.name, brokerMount.name, "the init container writes where the broker reads");
        assert.notEqual(initMount?.readOnly, true);
        // Mode 600: only their owner may read them, so they must be written as the broker's user.
        const uid = (c: Container) => c.securityContext?.runAsUser ?? w.pod.securityContext?.runAsUser;
        assert.equal(uid(broker), MOSQUITTO_UID);
        assert.equal(uid(init), MOSQUITTO_UID, "written as the broker's user");
        const secret = init.env?.find((e) => e.name === "MQTT_SECRET")?.valueFrom?.secretKeyRef;
        assert.match(secret?.name ?? "", /^plantwire-secrets(-[a-z0-9]{10})?$/, "MQTT_SECRET from the Secret plantwire-secrets");
        assert.equal(secret?.key, "MQTT_SECRET");
        // The accounts it provisions are the ones the clients log in with.
        const provisioned = loadConfig(effectiveEnv(init));
        for (const client of MQTT_CLIENT_SERVICES) {
          const owner = workloads.find((x) => x.object.metadata.name === client);
          const c = owner?.pod.containers.find((x) => isPlantwireImage(x.image));
          assert.ok(c, client);
          const config = loadConfig(effectiveEnv(c));
          assert.equal(config.namespace, provisioned.namespace, `${client}: MOLECULER_NAMESPACE`);
          assert.equal(config.topicRoot, provisioned.topicRoot, `${client}: MQTT_TOPIC_ROOT`);
          if (client === "plc-simulator") assert.deepEqual([config.plc.count, config.plc.seed, config.plc.site], [provisioned.plc.count, provisioned.plc.seed, provisioned.plc.site], "the simulator's plant (PLC_COUNT, PLC_SEED, PLC_SITE)");
        }
      });

      it("Mosquitto's init container provisions the services, the simulated PLCs and the devices of mqtt-devices, printing no password", () => {
        const { w, init } = mosquittoPod();
        const args = init.args ?? [];
        assert.ok(args.length === 3 && args[0] === "sh" && args[1] === "-c", "sh -c <script>");
        const devicesMount = init.volumeMounts?.find((m) => w.pod.volumes?.find((v) => v.name === m.name)?.configMap?.name === generated(objects, "ConfigMap", "mqtt-devices")?.metadata.name);
        assert.ok(devicesMount, "the ConfigMap mqtt-devices is mounted");
        const listed = generated(objects, "ConfigMap", "mqtt-devices")?.data?.["devices.txt"] ?? "";
        const devices = listed.split("\n").map((l) => l.replace(/#.*/, "").trim()).filter(Boolean);
        for (const d of devices) assert.ok(d.split("/").length === 4 && d.split("/").every(isValidLevel), `mqtt-devices: "${d}" is not site/area/line/device`);
        const script = args[2] ?? "";
        assert.ok(script.includes(`${devicesMount.mountPath}/devices.txt`), "reads the list from the mount");
        const dir = mkdtempSync(join(tmpdir(), "plantwire-mqtt-init-"));
        try {
          const run = (list: string) => {
            writeFileSync(join(dir, "devices.txt"), list);
            const env = { ...effectiveEnv(init), MQTT_SECRET: TEST_SECRET, PLANTWIRE_DATA: join(dir, "data"), PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}` };
            return spawnSync("sh", ["-c", script.replaceAll(`${devicesMount.mountPath}/devices.txt`, join(dir, "devices.txt"))], { cwd: ROOT, encoding: "utf8", env });
          };
          const extra = "plant9/assembly/line3/robot-07";
          const ok = run(`${listed}\n# a comment\n${extra}   # trailing comment\n`);
          assert.equal(ok.status, 0, ok.stderr);
          assert.doesNotMatch(ok.stdout + ok.stderr, /password/i, "no password in the pod's log");
          const config = loadConfig(effectiveEnv(init));
          assert.match(ok.stdout, new RegExp(`^username: ${deviceUsername(config.topicRoot, { site: "plant9", area: "assembly", line: "line3", device: "robot-07" })}$`, "m"));
          const users = readFileSync(join(dir, "data", "mosquitto", "passwd"), "utf8").trim().split("\n").map((line) => line.slice(0, line.indexOf(":")));
          const expected = [
            ...SERVICE_ROLES.map((role) => serviceUsername(config.namespace, role)),
            ...plantLayout(config.plc.count, config.plc.seed, config.plc.site).map((plc) => deviceUsername(config.topicRoot, plc)),
            ...[...devices, extra].map((d) => `${config.topicRoot}/${d}`),
          ];
          assert.deepEqual([...users].sort(), [...new Set(expected)].sort());
          // A wrong line fails the init container, so the broker never starts without its devices.
          rmSync(join(dir, "data"), { recursive: true, force: true });
          assert.notEqual(run("plant1/not-a-device\n").status, 0);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });

      it("every plantwire service that talks MQTT gets MQTT_SECRET from plantwire-secrets, and no other does", () => {
        const clients = MQTT_CLIENT_SERVICES;
        const byPolicy = Object.entries(CLIENT_OF).filter(([name, servers]) => servers.includes("mqtt") && ALL_SERVICES.includes(name)).map(([name]) => name);
        assert.deepEqual([...clients].sort(), [...byPolicy].sort(), "the services config.ts demands MQTT_SECRET for are the ones the network policies let reach Mosquitto");
        for (const { owner, container: c } of plantwire) {
          const where = `${owner.id}/${c.name}`;
          const services = (c.env ?? []).find((e) => e.name === "SERVICES")?.value?.split(",") ?? [];
          const talks = services.some((s) => clients.includes(s)) || /\bscripts\/mqtt-accounts\.ts\b/.test(commandLine(c));
          const entry = (c.env ?? []).find((e) => e.name === "MQTT_SECRET");
          assert.ok(!(c.envFrom ?? []).some((f) => f.secretRef), `${where}: Secrets only key by key`);
          if (talks) {
            assert.equal(entry?.value, undefined, `${where}: MQTT_SECRET never as a value`);
            assert.match(entry?.valueFrom?.secretKeyRef?.name ?? "(none)", /^plantwire-secrets(-[a-z0-9]{10})?$/, `${where}: MQTT_SECRET from plantwire-secrets`);
            assert.equal(entry?.valueFrom?.secretKeyRef?.key, "MQTT_SECRET", where);
            assert.notEqual(entry?.valueFrom?.secretKeyRef?.optional, true, `${where}: the Secret key is required`);
          } else {
            assert.equal(entry, undefined, `${where} talks no MQTT: no MQTT_SECRET`);
          }
        }
        assert.equal(configMapData(objects, generated(objects, "ConfigMap", "plantwire-env")?.metadata.name ?? "").MQTT_SECRET, undefined, "never in a ConfigMap");
        const secret = generated(objects, "Secret", "plantwire-secrets");
        const value = secret ? secretValue(secret, "MQTT_SECRET") : parseDotenv(readRepoFile("k8s/overlays/prod/secrets.env.example")).get("MQTT_SECRET");
        assert.ok((value ?? "").length >= 32, "MQTT_SECRET has at least 32 characters (services refuse to start otherwise)");
      });

      it("replica counts are as docs/deploy.md documents them", () => {
        const rows = documentedReplicas();
        const documented = rows.map((r) => r.name).sort();
        const actual = workloads.filter((w) => w.object.kind !== "Job").map((w) => w.object.metadata.name).sort();
        assert.deepEqual(documented, actual, "the table lists every Deployment and StatefulSet");
        for (const row of rows) {
          const w = workloads.find((x) => x.object.metadata.name === row.name);
          assert.equal(w?.object.kind, row.kind, row.name);
          const cell = overlay === "dev" ? row.dev : row.prod;
          const range = /^(\d+)\s*[-–]\s*(\d+)/.exec(cell);
          if (range) {
            const hpa = get(objects, "HorizontalPodAutoscaler", row.name).spec as { minReplicas: number; maxReplicas: number };
            assert.deepEqual([hpa.minReplicas, hpa.maxReplicas], [Number(range[1]), Number(range[2])], `${row.name}: autoscaler range`);
            assert.equal(w?.replicas, undefined, `${row.name}: the autoscaler owns replicas`);
          } else {
            assert.equal(w?.replicas ?? 1, Number(cell), `${overlay} ${row.name}`);
          }
        }
      });

      if (overlay === "dev") {
        it("dev: one replica of everything, no autoscalers", () => {
          for (const w of workloads.filter((x) => x.object.kind !== "Job")) assert.equal(w.replicas, 1, w.id);
          assert.equal(objects.filter((o) => o.kind === "HorizontalPodAutoscaler").length, 0);
        });
      } else {
        it("prod: 3 Kafka nodes, 3 MongoDB members, 2+ replicas of every plantwire service, autoscaled preprocessor, historian and API", () => {
          assert.equal(podTemplates([get(objects, "StatefulSet", "kafka")])[0]?.replicas, 3);
          assert.equal(podTemplates([get(objects, "StatefulSet", "mongo")])[0]?.replicas, 3);
          const hpas = objects.filter((o) => o.kind === "HorizontalPodAutoscaler");
          assert.deepEqual(hpas.map((h) => h.metadata.name).sort(), [...AUTOSCALED].sort());
          const partitions = Number(generated(objects, "ConfigMap", "plantwire-env")?.data?.KAFKA_PARTITIONS);
          for (const h of hpas) {
            const spec = h.spec as { scaleTargetRef: { kind: string; name: string }; minReplicas: number; maxReplicas: number };
            assert.ok(find(objects, spec.scaleTargetRef.kind, spec.scaleTargetRef.name), `${h.metadata.name}: target exists`);
            if (h.metadata.name === "historian") assert.ok(spec.maxReplicas <= partitions, "no more historians than partitions");
          }
          for (const { owner } of plantwire.filter((p) => p.owner.object.kind !== "Job" && p.owner.pod.containers.includes(p.container))) {
            const hpa = find(objects, "HorizontalPodAutoscaler", owner.object.metadata.name)?.spec as { minReplicas: number } | undefined;
            assert.ok((owner.replicas ?? hpa?.minReplicas ?? 1) >= 2, `${owner.id}: 2+ replicas`);
          }
        });
      }

      it("the PLC simulator is a StatefulSet whose PLC_SHARD count equals its replicas", () => {
        const w = podTemplates([get(objects, "StatefulSet", "plc-simulator")])[0];
        const env = w?.pod.containers[0]?.env ?? [];
        assert.equal(env.find((e) => e.name === "POD_INDEX")?.valueFrom?.fieldRef?.fieldPath, "metadata.labels['apps.kubernetes.io/pod-index']");
        assert.equal(env.find((e) => e.name === "PLC_SHARD")?.value, `$(POD_INDEX)/${w?.replicas ?? 1}`);
      });

      it("the preprocessor is a StatefulSet: a replacement pod keeps its name, NODE_ID and MQTT session", () => {
        assert.equal(find(objects, "Deployment", "preprocessor"), undefined, "a Deployment's replacement pod gets a new name and orphans the session");
        const sts = get(objects, "StatefulSet", "preprocessor");
        const spec = sts.spec as { serviceName?: string; updateStrategy?: { type?: string } };
        assert.equal(spec.serviceName, "preprocessor");
        assert.equal(spec.updateStrategy?.type, "RollingUpdate");
        const env = podTemplates([sts])[0]?.pod.containers.find((c) => c.name === "preprocessor")?.env ?? [];
        assert.deepEqual(env.find((e) => e.name === "NODE_ID")?.valueFrom?.fieldRef, { fieldPath: "metadata.name" }, "NODE_ID is the stable pod name (preprocessor-0, -1, ...)");
        // The MQTT client id, hence the persistent session, follows NODE_ID (directly, or through a
        // function of the node id that names every replica's session).
        const source = readRepoFile("services/preprocessor.service.ts");
        const direct = /clientId: `\$\{config\.namespace\}-preprocessor-\$\{config\.nodeId/.test(source);
        const helper = /(\w+) = \((\w+)(: string)?\) => `\$\{config\.namespace\}-preprocessor-\$\{\2\}`/.exec(source);
        assert.ok(direct || (helper && new RegExp(`clientId: ${helper[1]}\\(config\\.nodeId`).test(source)), "the preprocessor's MQTT client id is {namespace}-preprocessor-{NODE_ID}");
        const hpa = find(objects, "HorizontalPodAutoscaler", "preprocessor")?.spec as { scaleTargetRef: { kind: string }; behavior?: { scaleDown?: { selectPolicy?: string } } } | undefined;
        if (overlay === "prod") {
          assert.equal(hpa?.scaleTargetRef.kind, "StatefulSet");
          assert.equal(hpa?.behavior?.scaleDown?.selectPolicy, "Disabled", "a removed ordinal's session keeps receiving its share: scale down by hand");
        }
      });

      it("every Deployment and StatefulSet has a PodDisruptionBudget that never blocks a drain", () => {
        const pdbs = objects.filter((o) => o.kind === "PodDisruptionBudget").map((o) => o.spec as { selector: { matchLabels: Record<string, string> }; maxUnavailable?: number; minAvailable?: number });
        for (const w of workloads.filter((x) => x.object.kind !== "Job")) {
          const pdb = pdbs.find((p) => labelsMatch(p.selector.matchLabels, w.labels));
          assert.ok(pdb, `${w.id}: no PodDisruptionBudget`);
          assert.equal(pdb.maxUnavailable, 1, `${w.id}: maxUnavailable 1`);
        }
      });

      it("NetworkPolicies: deny by default; each server admits exactly its clients", () => {
        assert.ok(objects.some((o) => o.kind === "NetworkPolicy" && Object.keys((o.spec as unknown as NetworkPolicySpec).podSelector.matchLabels ?? {}).length === 0), "a default-deny policy");
        const podLabels = (name: string) => {
          const w = workloads.find((x) => x.object.metadata.name === name);
          assert.ok(w, name);
          return w.labels;
        };
        for (const [client, servers] of Object.entries(CLIENT_OF)) {
          const labels = podLabels(client);
          for (const kind of ["kafka", "mongo", "mqtt"] as const) {
            const server = SERVER[kind];
            assert.equal(ingressAllowed(objects, podLabels(server.name), labels, server.port), servers.includes(kind), `${client} -> ${server.name}:${server.port}`);
          }
          const isService = labels["app.kubernetes.io/component"] === "service";
          assert.equal(ingressAllowed(objects, podLabels("nats"), labels, 4222), isService, `${client} -> nats`);
          assert.equal(ingressAllowed(objects, podLabels("redis"), labels, 6379), isService, `${client} -> redis`);
        }
        for (const [peer, port] of [["kafka", 9093], ["mongo", 27017], ["nats", 6222]] as const) {
          assert.ok(ingressAllowed(objects, podLabels(peer), podLabels(peer), port), `${peer} peers`);
        }
        assert.ok(ingressAllowed(objects, podLabels("api"), {}, 8000), "the API is reachable");
        assert.ok(!ingressAllowed(objects, podLabels("historian"), {}, 3001), "services accept nothing else");
        for (const w of workloads.filter((x) => x.labels["app.kubernetes.io/component"] === "service")) {
          const mongoUrl = w.pod.containers[0]?.env?.some((e) => e.name === "MONGO_URL") ?? false;
          assert.equal(mongoUrl, CLIENT_OF[w.object.metadata.name]?.includes("mongo"), `${w.id}: MONGO_URL only where MongoDB is reachable`);
        }
      });

      it("the topic Job runs scripts/create-topics.ts from the plantwire image with the Kafka settings", function () {
        const job = podTemplates([get(objects, "Job", "kafka-topics")])[0];
        const c = job?.pod.containers[0];
        assert.ok(c && isPlantwireImage(c.image));
        assert.deepEqual(c.args, ["node", "scripts/create-topics.ts"]);
        assert.equal(c.command, undefined, "the image's entrypoint stays");
        const env = configMapData(objects, c.envFrom?.[0]?.configMapRef?.name ?? "");
        for (const key of ["KAFKA_BROKERS", "KAFKA_PARTITIONS", "KAFKA_REPLICATION"]) assert.ok(env[key], key);
        if (!existsSync(join(ROOT, "scripts", "create-topics.ts"))) this.skip();
      });
    });
  }
});
