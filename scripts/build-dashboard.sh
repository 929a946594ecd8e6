#!/usr/bin/env bash
# Builds the operator dashboard (dashboard/, Vite + TypeScript) into dashboard/dist, which the
# gateway serves at "/". Skipped when nothing it is built from changed since the last build: a
# stamp in dist holds the hash of the dashboard's sources, the shared types it imports and the
# lock file. Called by scripts/prepare.sh (so `npm start` and `npm test` build it) and by the
# Dockerfile.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
out=dashboard/dist
stamp="$out/.build-stamp"
# The project's Node 22 where it is installed (locally); the image's own node in the Docker build.
node=node
if [ -x node_modules/.bin/node ] && node_modules/.bin/node --version >/dev/null 2>&1; then node="$repo/node_modules/.bin/node"; fi

hash="$(find dashboard src -type f ! -path "$out/*" \( -name '*.ts' -o -name '*.css' -o -name '*.html' -o -name '*.json' \) -print0 |
  LC_ALL=C sort -z | xargs -0 sha256sum | cat - package-lock.json | sha256sum | cut -c1-64)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ] && [ -f "$out/index.html" ]; then
  echo "==> dashboard: up to date ($out)"
  exit 0
fi
echo "==> dashboard: type-check and build"
"$node" node_modules/typescript/bin/tsc --noEmit -p dashboard
"$node" node_modules/vite/bin/vite.js build dashboard
echo "$hash" >"$stamp"
echo "==> dashboard: built $out ($(du -sh "$out" | cut -f1))"
