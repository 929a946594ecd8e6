// The Dockerfile's essentials, checked offline (no Docker engine is needed): a pinned official
// Node 22 base, production dependencies only, a non-root user, and a health endpoint that is the
// one the Kubernetes probes and Compose use.
import { strict as assert } from "node:assert";
import { ALL_SERVICES } from "../../src/shared/config.ts";
import { dockerInstructions, generated, loadCompose, podTemplates, readRepoFile, render, isPlantwireImage, type DockerInstruction } from "./helpers.ts";

/** Node 22 runs TypeScript by type stripping without a flag from 22.18 on. */
const MIN_NODE_MINOR = 18;

describe("Dockerfile", function () {
  this.timeout(60_000);
  let instructions: DockerInstruction[] = [];
  let finalStage = 0;

  before(() => {
    instructions = dockerInstructions(readRepoFile("Dockerfile"));
    finalStage = Math.max(...instructions.map((i) => i.stage));
  });

  const final = (keyword: string) => instructions.filter((i) => i.stage === finalStage && i.keyword === keyword);

  it("is multi-stage, every stage on the official node image pinned to an exact Node 22 slim version", () => {
    const froms = instructions.filter((i) => i.keyword === "FROM");
    assert.ok(froms.length >= 2, "multi-stage");
    for (const from of froms) {
      const match = /^node:(22)\.(\d+)\.(\d+)-([a-z]+-)?slim(\s+AS\s+\S+)?$/i.exec(from.args);
      assert.ok(match, `FROM ${from.args}: the official image node:22.<minor>.<patch>-<debian>-slim`);
      assert.ok(Number(match[2]) >= MIN_NODE_MINOR, `Node 22.${match[2]} lacks type stripping by default`);
    }
    assert.equal(new Set(froms.map((f) => f.args.split(/\s+/)[0])).size, 1, "one base image for all stages");
  });

  it("installs production dependencies only, from the lock file", () => {
    const runs = instructions.filter((i) => i.keyword === "RUN").map((i) => i.args);
    assert.ok(runs.some((r) => /\bnpm ci\b[^&;|]*--omit=dev/.test(r)), "npm ci --omit=dev");
    assert.ok(!runs.some((r) => /\bnpm (install|i)\b/.test(r)), "no npm install (it may change the lock)");
    assert.ok(instructions.some((i) => i.keyword === "COPY" && /package-lock\.json/.test(i.args)), "the lock file is copied");
    const copies = final("COPY").map((c) => c.args);
    assert.ok(copies.some((c) => /^--from=\S+ \S*node_modules/.test(c)), "node_modules comes from the dependency stage");
    assert.ok(!copies.some((c) => /^\.\s/.test(c) || /^(test|docs|k8s|bench)\b/.test(c)), "no tests, docs or manifests in the image");
    const pkg = JSON.parse(readRepoFile("package.json")) as { devDependencies?: Record<string, string> };
    assert.ok(pkg.devDependencies?.node, "the repo's `node` binary package is a devDependency, so --omit=dev leaves it out");
  });

  it("runs as a numeric non-root user, the one Kubernetes and Compose run it as", () => {
    const user = final("USER").at(-1)?.args ?? "";
    const match = /^(\d+)(?::(\d+))?$/.exec(user);
    assert.ok(match, `USER ${user}: numeric, so Kubernetes can verify runAsNonRoot`);
    assert.notEqual(Number(match[1]), 0);
    for (const overlay of ["dev", "prod"] as const) {
      for (const w of podTemplates(render(overlay).objects).filter((x) => x.pod.containers.some((c) => isPlantwireImage(c.image)))) {
        assert.equal(w.pod.securityContext?.runAsUser, Number(match[1]), `${overlay} ${w.id}`);
      }
    }
    for (const [name, s] of Object.entries(loadCompose().services)) {
      // Except the one-shot that writes Mosquitto's account files as Mosquitto's user (compose.spec.ts).
      if ((s.image ?? "").startsWith("plantwire:") && name !== "mqtt-accounts") assert.equal(s.user, user, name);
    }
  });

  it("serves the health endpoint on the port the probes use, and checks it with node itself", () => {
    const env = final("ENV").map((e) => e.args).join(" ");
    const healthPort = /\bHEALTH_PORT=(\d+)/.exec(env)?.[1];
    assert.ok(healthPort, "ENV HEALTH_PORT: the endpoint is on in every container");
    assert.match(env, /\bAPI_HOST=0\.0\.0\.0\b/, "the API listens on all interfaces in a container");
    const exposed = final("EXPOSE").flatMap((e) => e.args.split(/\s+/));
    assert.ok(exposed.includes(healthPort), `EXPOSE ${healthPort}`);
    assert.ok(exposed.includes("8000"), "EXPOSE 8000 (API)");
    const healthcheck = final("HEALTHCHECK").at(-1)?.args ?? "";
    assert.match(healthcheck, /CMD \["node", "-e", /, "the check runs node, which the image has (no curl or wget needed)");
    assert.match(healthcheck, /process\.env\.HEALTH_PORT/);
    assert.match(healthcheck, /\/ready/);
    for (const overlay of ["dev", "prod"] as const) {
      const objects = render(overlay).objects;
      assert.equal(generated(objects, "ConfigMap", "plantwire-env")?.data?.HEALTH_PORT, healthPort, `${overlay}: plantwire-env HEALTH_PORT`);
    }
    for (const [name, s] of Object.entries(loadCompose().services)) {
      const value = (s.environment as Record<string, string> | undefined)?.HEALTH_PORT;
      if (value !== undefined) assert.equal(String(value), healthPort, name);
    }
  });

  it("starts src/main.ts through an entrypoint that execs it (node receives SIGTERM) and gives each replica a NODE_ID", () => {
    assert.equal(final("CMD").at(-1)?.args, '["node", "src/main.ts"]');
    const entrypoint = final("ENTRYPOINT").at(-1)?.args ?? "";
    const script = /"(\/usr\/local\/bin\/[^"]+\.sh)"/.exec(entrypoint)?.[1] ?? "";
    const copied = final("COPY").find((c) => c.args.endsWith(` ${script}`));
    assert.ok(copied, `${script} is copied into the image`);
    const source = readRepoFile(copied.args.split(/\s+/)[0] ?? "");
    assert.match(source, /^exec "\$@"$/m);
    assert.match(source, /NODE_ID/);
    assert.equal(final("STOPSIGNAL").at(-1)?.args, "SIGTERM");
    for (const dir of ["src", "services", "mixins", "scripts"]) assert.ok(final("COPY").some((c) => c.args.startsWith(`${dir} `)), `COPY ${dir}`);
    assert.ok(ALL_SERVICES.length > 0);
  });

  it(".dockerignore keeps local state and secrets out of the build context", () => {
    const ignored = readRepoFile(".dockerignore").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    for (const entry of ["node_modules", ".git", ".env", ".data"]) assert.ok(ignored.includes(entry), entry);
    for (const entry of ["package-lock.json", "package.json", "src", "services", "mixins", "scripts"]) assert.ok(!ignored.includes(entry), `${entry} is needed`);
  });
});
