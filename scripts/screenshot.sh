#!/usr/bin/env bash
# Regenerates docs/demo-dashboard.png, the README's picture of the demo: runs
# the demo store's Chromium test (tests/ts/demo.test.ts) against a fresh
# build of ./cmd/custodian, which saves the dashboard with a failing loyalty
# backend and its waterfall there. Needs node_modules (npm ci) and Chromium
# (CHROMIUM_PATH, default: chromium on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .build
go build -o .build/custodian ./cmd/custodian
export CUSTODIAN_BIN="$PWD/.build/custodian"
export CHROMIUM_PATH="${CHROMIUM_PATH:-$(command -v chromium)}"
npm run build --silent
rm -rf .build/ts
npx tsc -p tests/ts
DEMO_SCREENSHOT="$PWD/docs/demo-dashboard.png" node --test .build/ts/tests/ts/demo.test.js
echo "wrote docs/demo-dashboard.png"
