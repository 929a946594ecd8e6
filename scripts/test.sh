#!/usr/bin/env bash
# The one command that runs every test: installs what is missing, starts the real servers the
# integration and end-to-end tests talk to, type-checks, then runs unit, integration, e2e, browser
# and deployment tests in one mocha run. The infrastructure is left running (npm run infra:stop).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/prepare.sh
# The deployment tests validate rendered manifests against Kubernetes schemas with this PyPI tool.
if ! python3 -c 'import kubernetes_validate' 2>/dev/null; then
  echo "==> installing kubernetes-validate (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate==1.37.0
fi
# The browser tests (test/browser) drive Debian's chromium.
bash scripts/infra.sh browser
export PATH="$repo/node_modules/.bin:$PATH"
echo "==> type-check"
tsc --noEmit -p .
tsc --noEmit -p dashboard
echo "==> tests"
exec mocha --reporter "$repo/test/helpers/summary-reporter.cjs" --timeout 60000 --exit \
  "test/unit/**/*.spec.ts" "test/integration/**/*.spec.ts" "test/e2e/**/*.spec.ts" "test/chaos/**/*.spec.ts" "test/browser/**/*.spec.ts" "test/deploy/**/*.spec.ts" "$@"
