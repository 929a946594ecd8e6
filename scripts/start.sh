#!/usr/bin/env bash
# The one command that starts plantwire locally: installs what is missing, starts the
# infrastructure (Mosquitto, NATS, Redis, Kafka, FerretDB), then every service with simulated PLCs.
# Ctrl-C stops the services; `npm run infra:stop` stops the infrastructure.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/prepare.sh
export PATH="$repo/node_modules/.bin:$PATH"
api_port="${API_PORT:-8000}"

# The API's secrets: generated on the first run into a git-ignored file readable only by its owner,
# then read from it on every start (a value already in the environment wins). docs/security.md.
secrets=".data/secrets.env"
first_run=""
if [ ! -f "$secrets" ]; then
  mkdir -p .data
  (
    umask 077
    node -e 'const r = (n) => require("node:crypto").randomBytes(n).toString("base64url");
      process.stdout.write(`AUTH_JWT_SECRET=${r(48)}\nAUTH_ADMIN_PASSWORD=${r(18)}\n`)' >"$secrets"
  )
  first_run=1
fi
while IFS='=' read -r name value; do
  case "$name" in
    AUTH_JWT_SECRET | AUTH_ADMIN_PASSWORD) [ -n "${!name:-}" ] || export "$name=$value" ;;
  esac
done <"$secrets"
if [ -n "$first_run" ]; then
  cat <<TXT
==> first start: generated the API secrets in $secrets (git-ignored, mode 600)
    Log in to the dashboard and the API as   admin / ${AUTH_ADMIN_PASSWORD}
    This password is shown once; it stays in $secrets. See docs/security.md.
TXT
fi
if [ "${API_AUTH:-on}" = "off" ]; then
  echo "==> WARNING: API_AUTH=off: the API and the dashboard are open to anyone who can reach port ${api_port}"
fi

cat <<TXT
==> starting plantwire services (${SERVICES:-all services in one process}) with ${PLC_COUNT:-20} simulated PLCs
    HMI:     http://127.0.0.1:${api_port}/   (operator dashboard: docs/dashboard.md)
    API:     http://127.0.0.1:${api_port}/api/health   (token: POST /api/auth/login, docs/security.md)
    MQTT:    mqtt://127.0.0.1:1883  and ws://127.0.0.1:9001   (topics: scada/v1/#)
    REPL:    npm run repl   (in another terminal)
    Stop:    Ctrl-C here, then: npm run infra:stop
TXT
exec node src/main.ts
