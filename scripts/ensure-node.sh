#!/usr/bin/env bash
# Makes sure the project's Node.js 22 and npm dependencies are installed (npm ci when missing or stale).
# The machine's own node may be older: package.json pins node@22 as a dev dependency, and every
# project script runs node_modules/.bin/node.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

node_ok() {
  [ -x node_modules/.bin/node ] || return 1
  node_modules/.bin/node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a===22&&b>=18?0:1)' 2>/dev/null
}

if ! command -v npm >/dev/null 2>&1; then
  echo "plantwire: npm is missing; install Node.js and npm (Debian: apt-get install -y nodejs npm)" >&2
  exit 1
fi
if ! node_ok || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "==> installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
if ! node_ok; then
  echo "plantwire: node_modules/.bin/node is not Node.js >= 22.18 (was npm run with --ignore-scripts?); run: rm -rf node_modules && npm ci" >&2
  exit 1
fi
