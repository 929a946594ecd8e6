#!/usr/bin/env bash
# What both README commands need first: Node.js 22 and the npm dependencies, the dashboard's
# production build, then the local infrastructure installed and running.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/ensure-node.sh"
bash "$repo/scripts/build-dashboard.sh"
bash "$repo/scripts/infra.sh" install
bash "$repo/scripts/infra.sh" start
