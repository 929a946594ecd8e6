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

# The secrets (API, MQTT): generated on the first run into a git-ignored file readable only by its
# owner, one missing from an older file added, then read on every start (a value already in the
# environment wins). docs/security.md.
secrets=".data/secrets.env"
mkdir -p .data
touch "$secrets" && chmod 600 "$secrets"
generated=""
for entry in AUTH_JWT_SECRET:48 AUTH_ADMIN_PASSWORD:18 MQTT_SECRET:48; do
  name="${entry%%:*}"
  if ! grep -q "^$name=" "$secrets"; then
    node -e 'process.stdout.write(`${process.argv[1]}=${require("node:crypto").randomBytes(Number(process.argv[2])).toString("base64url")}\n`)' "$name" "${entry##*:}" >>"$secrets"
    generated="$generated $name"
  fi
done
while IFS='=' read -r name value; do
  case "$name" in
    AUTH_JWT_SECRET | AUTH_ADMIN_PASSWORD | MQTT_SECRET) [ -n "${!name:-}" ] || export "$name=$value" ;;
  esac
done <"$secrets"
if [ -n "$generated" ]; then
  echo "==> generated$generated in $secrets (git-ignored, mode 600)"
fi
case "$generated" in
  *AUTH_ADMIN_PASSWORD*)
    cat <<TXT
    Log in to the dashboard and the API as   admin / ${AUTH_ADMIN_PASSWORD}
    This password is shown once; it stays in $secrets. See docs/security.md.
TXT
    ;;
esac
if [ "${MQTT_AUTH:-on}" = "off" ]; then
  echo "==> WARNING: MQTT_AUTH=off: anyone who can reach port 1883 may publish and subscribe to anything"
else
  # The services' and the simulated PLCs' MQTT accounts, from the same settings the services read.
  node scripts/mqtt-accounts.ts provision
fi
if [ "${API_AUTH:-on}" = "off" ]; then
  echo "==> WARNING: API_AUTH=off: the API and the dashboard are open to anyone who can reach port ${api_port}"
fi

cat <<TXT
==> starting plantwire services (${SERVICES:-all services in one process}) with ${PLC_COUNT:-20} simulated PLCs
    HMI:     http://127.0.0.1:${api_port}/   (operator dashboard: docs/dashboard.md)
    API:     http://127.0.0.1:${api_port}/api/health   (token: POST /api/auth/login, docs/security.md)
    MQTT:    mqtt://127.0.0.1:1883  and ws://127.0.0.1:9001   (topics: scada/v1/#; accounts: npm run mqtt:accounts -- list)
    REPL:    npm run repl   (in another terminal)
    Stop:    Ctrl-C here, then: npm run infra:stop
TXT
exec node src/main.ts
