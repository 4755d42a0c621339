#!/usr/bin/env bash
# Builds the TypeScript packages (clients/ts: @custodian-bff/api, /acme,
# /nextjs), type-checks a file that imports them as a Next.js or Vite app
# does (moduleResolution "bundler"), and runs the TypeScript tests with
# node --test: the generated clients through the packages against a demo
# gateway, the Next.js helpers, a Vite build of an app on the packages, and
# the browser flows in Chromium.
#
# Needs node_modules (npm ci). CUSTODIAN_BIN names the gateway binary (built
# from ./cmd/custodian when unset); CHROMIUM_PATH the Chromium to drive
# (default: chromium on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
timed() {
  local start=$SECONDS
  "$@"
  printf '    (%ss)\n' "$((SECONDS - start))"
}

if [ -z "${CUSTODIAN_BIN:-}" ]; then
  mkdir -p .build
  go build -o .build/custodian ./cmd/custodian
  export CUSTODIAN_BIN="$PWD/.build/custodian"
fi
export CHROMIUM_PATH="${CHROMIUM_PATH:-$(command -v chromium)}"

step "TypeScript packages: npm run build (clients/ts/*/dist)"
timed npm run build --silent

step "type checks: the tests (NodeNext) and an app's imports (bundler)"
rm -rf .build/ts
check() {
  npx tsc -p tests/ts &
  local tests=$!
  npx tsc -p tests/ts/vite
  wait "$tests"
}
timed check

step "TypeScript tests (node --test)"
timed node --test .build/ts/tests/ts/*.test.js
