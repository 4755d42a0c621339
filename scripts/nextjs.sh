#!/usr/bin/env bash
# Builds the Next.js example (examples/nextjs) with `next build` and runs its
# end-to-end tests in Chromium against the demo world and a real gateway
# (examples/nextjs/e2e). Expects `npm ci` to have run at the repository root;
# builds the TypeScript packages and the Go binaries it needs. Prints how long
# each step took.
#
#   NEXTJS_WEBPACK_CHECK=0   skip the second compile of the example with webpack
#                            (next build --webpack, no type check), the check
#                            that both bundlers take the packages; ~45-65 s on
#                            2 cores
#   CUSTODIAN_BIN, CUSTODIAN_DEMO_BIN   use these binaries instead of building
set -euo pipefail
cd "$(dirname "$0")/.."

export NEXT_TELEMETRY_DISABLED=1
export CHROMIUM_PATH="${CHROMIUM_PATH:-$(command -v chromium)}"
next="$PWD/node_modules/next/dist/bin/next"
app="$PWD/examples/nextjs"

timings=()
print_timings() {
  printf '\n==> timings\n'
  printf '%s\n' "${timings[@]}"
}
trap print_timings EXIT
run() {
  local name="$1"
  shift
  printf '\n==> %s\n' "$name"
  local start=$SECONDS
  local status=0
  "$@" || status=$?
  timings+=("$(printf '%-44s %4d s%s' "$name" $((SECONDS - start)) "$([ $status -eq 0 ] || echo " (failed: $status)")")")
  return $status
}

mkdir -p .build
if [ -z "${CUSTODIAN_BIN:-}" ] || [ -z "${CUSTODIAN_DEMO_BIN:-}" ]; then
  run "go build custodian, custodian-demo" \
    bash -c 'go build -o .build/custodian ./cmd/custodian && go build -o .build/custodian-demo ./cmd/custodian-demo'
  export CUSTODIAN_BIN="$PWD/.build/custodian" CUSTODIAN_DEMO_BIN="$PWD/.build/custodian-demo"
fi

run "npm run build (the @custodian-bff packages)" npm run build --silent

if [ "${NEXTJS_WEBPACK_CHECK:-1}" = "1" ]; then
  # First, so that the Turbopack build below is what `next start` serves.
  run "next build --webpack (compile check)" \
    env NEXTJS_EXAMPLE_SKIP_TYPECHECK=1 node "$next" build "$app" --webpack --experimental-build-mode=compile
fi
run "next build (Turbopack, with type check)" node "$next" build "$app"

run "tsc (end-to-end tests)" npx tsc -p examples/nextjs/e2e
run "end-to-end tests in Chromium" node --test --test-concurrency=1 .build/nextjs-e2e/nextjs.test.mjs
