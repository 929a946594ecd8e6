// Shared by the deployment tests: rendering the kustomize overlays, reading docker-compose.yml,
// the Dockerfile and the names src/shared/config.ts reads. Everything here works offline.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, parseAllDocuments } from "yaml";
import { loadConfig } from "../../src/shared/config.ts";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const OVERLAYS = ["dev", "prod"] as const;
export type Overlay = (typeof OVERLAYS)[number];

/** The image every plantwire container runs (overlays only change its tag). */
export const PLANTWIRE_IMAGE = "plantwire";

export function readRepoFile(path: string): string {
  return readFileSync(join(ROOT, path), "utf8");
}

// --- Kubernetes object shapes: only the fields the tests read -------------------------------

export interface Metadata {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: Metadata;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec?: Record<string, unknown>;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
    secretKeyRef?: { name: string; key: string; optional?: boolean };
  };
}

export interface EnvFromSource {
  configMapRef?: { name: string; optional?: boolean };
  secretRef?: { name: string; optional?: boolean };
  prefix?: string;
}

export interface Probe {
  httpGet?: { path?: string; port: number | string };
  tcpSocket?: { port: number | string };
  grpc?: { port: number };
  exec?: { command: string[] };
}

export interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  privileged?: boolean;
  capabilities?: { add?: string[]; drop?: string[] };
  seccompProfile?: { type: string };
}

export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: EnvFromSource[];
  ports?: { name?: string; containerPort: number }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: SecurityContext;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}

export interface Volume {
  name: string;
  emptyDir?: { sizeLimit?: string };
  configMap?: { name: string; items?: { key: string; path: string }[] };
  secret?: { secretName: string; items?: { key: string; path: string }[] };
  persistentVolumeClaim?: { claimName: string };
  [other: string]: unknown;
}

export interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  securityContext?: SecurityContext & { fsGroup?: number };
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
}

export interface PodTemplateOwner {
  object: K8sObject;
  /** "Deployment/api", "StatefulSet/kafka", "Job/kafka-topics" */
  id: string;
  labels: Record<string, string>;
  pod: PodSpec;
  replicas: number | undefined;
  claimTemplates: string[];
}

const WORKLOAD_KINDS = ["Deployment", "StatefulSet", "DaemonSet", "Job"];

export function podTemplates(objects: K8sObject[]): PodTemplateOwner[] {
  return objects
    .filter((o) => WORKLOAD_KINDS.includes(o.kind))
    .map((o) => {
      const spec = o.spec as { replicas?: number; template: { metadata?: Metadata; spec: PodSpec }; volumeClaimTemplates?: { metadata: Metadata }[] };
      return {
        object: o,
        id: `${o.kind}/${o.metadata.name}`,
        labels: spec.template.metadata?.labels ?? {},
        pod: spec.template.spec,
        replicas: spec.replicas,
        claimTemplates: (spec.volumeClaimTemplates ?? []).map((t) => t.metadata.name),
      };
    });
}

export function allContainers(pod: PodSpec): Container[] {
  return [...(pod.initContainers ?? []), ...pod.containers];
}

export function isPlantwireImage(image: string): boolean {
  return image === PLANTWIRE_IMAGE || image.startsWith(`${PLANTWIRE_IMAGE}:`) || image.endsWith(`/${PLANTWIRE_IMAGE}`) || image.includes(`/${PLANTWIRE_IMAGE}:`);
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject | undefined {
  return objects.find((o) => o.kind === kind && o.metadata.name === name);
}

export function get(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = find(objects, kind, name);
  if (!found) throw new Error(`${kind}/${name} is not in the render`);
  return found;
}

/** A generated ConfigMap or Secret by its name before kustomize appended the content hash. */
export function generated(objects: K8sObject[], kind: "ConfigMap" | "Secret", baseName: string): K8sObject | undefined {
  return objects.find((o) => o.kind === kind && new RegExp(`^${baseName}-[a-z0-9]{10}$`).test(o.metadata.name));
}

export function secretKeys(secret: K8sObject): string[] {
  return [...Object.keys(secret.data ?? {}), ...Object.keys(secret.stringData ?? {})];
}

export function secretValue(secret: K8sObject, key: string): string | undefined {
  if (secret.stringData?.[key] !== undefined) return secret.stringData[key];
  const encoded = secret.data?.[key];
  return encoded === undefined ? undefined : Buffer.from(encoded, "base64").toString("utf8");
}

// --- rendering ------------------------------------------------------------------------------

const renders = new Map<Overlay, { text: string; objects: K8sObject[] }>();

/** `kubectl kustomize k8s/overlays/<overlay>`: the text and the parsed objects (cached). */
export function render(overlay: Overlay): { text: string; objects: K8sObject[] } {
  const cached = renders.get(overlay);
  if (cached) return cached;
  const kubectl = process.env.KUBECTL ?? "kubectl";
  const text = execFileSync(kubectl, ["kustomize", join(ROOT, "k8s", "overlays", overlay)], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  const objects = parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`kustomize output of ${overlay} is not YAML: ${doc.errors[0]?.message}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
  const result = { text, objects };
  renders.set(overlay, result);
  return result;
}

// --- docker-compose.yml ---------------------------------------------------------------------

export interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test?: string[] | string; disable?: boolean };
  ports?: (string | { target: number; published?: string | number })[];
  volumes?: (string | { type: string; source?: string; target: string })[];
  restart?: string;
  user?: string;
  read_only?: boolean;
  [other: string]: unknown;
}

export interface ComposeFile {
  name?: string;
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
  [other: string]: unknown;
}

/** docker-compose.yml with YAML merge keys (`<<`) resolved, as Compose reads it. */
export function loadCompose(): ComposeFile {
  return parse(readRepoFile("docker-compose.yml"), { merge: true }) as ComposeFile;
}

export function composeEnvironment(service: ComposeService): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((entry) => {
      const at = entry.indexOf("=");
      return at < 0 ? [entry, ""] : [entry.slice(0, at), entry.slice(at + 1)];
    }));
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? "" : String(v)]));
}

/** Compose interpolation of `${VAR:-default}`, `${VAR-default}`, `${VAR}` and `$$`, with VAR unset. */
export function interpolateUnset(value: string): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (match, _name: string | undefined, fallback: string | undefined) => (match === "$$" ? "$" : (fallback ?? "")));
}

// --- src/shared/config.ts -------------------------------------------------------------------

/** Every environment variable name loadConfig reads, observed by running it on a recording env. */
export function configNames(): Set<string> {
  const seen = new Set<string>();
  const recorder = new Proxy({} as Record<string, string | undefined>, {
    get(_target, name) {
      if (typeof name === "string") seen.add(name);
      return undefined;
    },
  });
  loadConfig(recorder);
  return seen;
}

/** `KEY=value` lines of a dotenv file (comments and blank lines skipped). */
export function parseDotenv(text: string): Map<string, string> {
  const entries = new Map<string, string>();
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const at = trimmed.indexOf("=");
    if (at < 1) throw new Error(`not a KEY=value line: ${line}`);
    entries.set(trimmed.slice(0, at), trimmed.slice(at + 1));
  }
  return entries;
}

// --- Dockerfile -----------------------------------------------------------------------------

export interface DockerInstruction {
  keyword: string;
  args: string;
  stage: number;
}

/** Instructions of a Dockerfile, continuation lines joined, comments dropped. */
export function dockerInstructions(text: string): DockerInstruction[] {
  const logical: string[] = [];
  let current = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (current === "" && (line === "" || line.startsWith("#"))) continue;
    if (line.startsWith("#")) continue;
    if (line.endsWith("\\")) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push(current + line);
    current = "";
  }
  if (current !== "") logical.push(current);
  let stage = -1;
  return logical.map((line) => {
    const match = /^(\S+)\s*(.*)$/.exec(line);
    const keyword = (match?.[1] ?? "").toUpperCase();
    if (keyword === "FROM") stage += 1;
    return { keyword, args: match?.[2] ?? "", stage };
  });
}

/** The Kafka KRaft cluster id scripts/infra.sh formats local data with. */
export function infraScriptClusterId(): string | undefined {
  return /^KAFKA_CLUSTER_ID="([^"]+)"/m.exec(readRepoFile("scripts/infra.sh"))?.[1];
}
