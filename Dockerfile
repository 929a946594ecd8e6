# syntax=docker/dockerfile:1
# One image for every plantwire service: SERVICES picks which run in a container
# (e.g. SERVICES=historian; default: all). Node 22 runs the TypeScript directly by type stripping
# (no build step), so the image holds the sources and the production dependencies only, plus the
# dashboard's static files, built in a stage of their own.
#
#   docker build -t plantwire:0.1.0 .
#   docker run --rm -e SERVICES=api -p 8000:8000 plantwire:0.1.0
#
# The base is pinned by exact version: type stripping without a flag needs Node >= 22.18.

# --- production dependencies, from the lock file only --------------------------------------
FROM node:22.22.1-trixie-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev leaves out typescript, mocha and the `node` binary package the repo uses locally;
# --ignore-scripts: no production dependency needs an install script.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# --- the operator dashboard's production build (Vite; dev dependencies stay in this stage) -----
FROM node:22.22.1-trixie-slim AS dashboard
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY dashboard ./dashboard
COPY src ./src
COPY scripts/build-dashboard.sh ./scripts/
RUN bash scripts/build-dashboard.sh

# --- runtime ---------------------------------------------------------------------------------
FROM node:22.22.1-trixie-slim AS runtime
ENV NODE_ENV=production \
    HEALTH_PORT=3001 \
    API_HOST=0.0.0.0 \
    API_PORT=8000
WORKDIR /app
# Everything is owned by root and only readable by the service user: the code cannot be changed
# at run time, and the root filesystem can be mounted read-only (Kubernetes does).
COPY --from=deps /app/node_modules ./node_modules
COPY package.json moleculer.config.ts ./
COPY src ./src
COPY services ./services
COPY mixins ./mixins
COPY scripts ./scripts
COPY --from=dashboard /app/dashboard/dist ./dashboard/dist
COPY deploy/docker/entrypoint.sh /usr/local/bin/plantwire-entrypoint.sh
# Mount point of Mosquitto's accounts for docker-compose.yml's one-shot mqtt-accounts, owned by
# Mosquitto's uid/gid 1883: a new named volume mounted here takes this owner, so the one-shot (run
# as 1883) can write the files and the broker can read them. Unused otherwise.
RUN mkdir -p /var/lib/plantwire/mosquitto \
 && chown 1883:1883 /var/lib/plantwire/mosquitto \
 && chmod 700 /var/lib/plantwire/mosquitto

# Numeric uid/gid (the base image's `node` user): Kubernetes can only verify runAsNonRoot
# against a numeric user.
USER 1000:1000

# 3001: HTTP health endpoint (GET /live, GET /ready); 8000: the API (SERVICES=api).
EXPOSE 3001 8000

# Docker's health follows readiness: every service of the container reaches its servers.
# Only tools of this image are used (node itself); HEALTH_PORT=0 turns the endpoint off.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.HEALTH_PORT}/ready`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# The Moleculer broker stops its services on SIGTERM (in-flight requests finish, consumers
# commit and leave their groups, MQTT disconnects cleanly); the entrypoint execs node, so node
# is PID 1 and receives the signal itself.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/bin/sh", "/usr/local/bin/plantwire-entrypoint.sh"]
CMD ["node", "src/main.ts"]
