#!/usr/bin/env bash
# The one command that runs every test: installs what is missing, starts the real servers the
# integration and end-to-end tests talk to, type-checks, then runs unit, integration, e2e and
# deployment tests in one mocha run. The infrastructure is left running (npm run infra:stop).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/ensure-node.sh
bash scripts/infra.sh install
bash scripts/infra.sh start
export PATH="$repo/node_modules/.bin:$PATH"
echo "==> type-check"
tsc --noEmit -p .
echo "==> tests"
specs=("test/unit/**/*.spec.ts" "test/integration/**/*.spec.ts" "test/e2e/**/*.spec.ts")
[ -d test/deploy ] && specs+=("test/deploy/**/*.spec.ts")
exec mocha --reporter "$repo/test/helpers/summary-reporter.cjs" --timeout 60000 --exit "${specs[@]}" "$@"
