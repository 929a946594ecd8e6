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
cat <<TXT
==> starting plantwire services (${SERVICES:-all services in one process}) with ${PLC_COUNT:-20} simulated PLCs
    HMI:     http://127.0.0.1:${api_port}/   (operator dashboard: docs/dashboard.md)
    API:     http://127.0.0.1:${api_port}/api/health   (devices: /api/devices, alarms: /api/alarms)
    MQTT:    mqtt://127.0.0.1:1883  and ws://127.0.0.1:9001   (topics: scada/v1/#)
    REPL:    npm run repl   (in another terminal)
    Stop:    Ctrl-C here, then: npm run infra:stop
TXT
exec node src/main.ts
