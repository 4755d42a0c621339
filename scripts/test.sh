#!/usr/bin/env bash
# Runs every check and test of Custodian. On a fresh Debian machine with Go it
# first installs what is missing (Node.js, npm, Chromium, redis-server and wrk
# from Debian, the npm packages from package-lock.json, grpcurl from the Go
# module proxy), so it is also what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]} with apt-get"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm
fi
# The browser tests drive Debian's Chromium with playwright-core.
if ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium
fi
export CHROMIUM_PATH="${CHROMIUM_PATH:-$(command -v chromium)}"
# The Redis session store's tests start their own redis-server processes.
if ! command -v redis-server >/dev/null 2>&1; then
  apt_install redis-server
fi
# The bench harness's smoke run drives wrk.
if ! command -v wrk >/dev/null 2>&1; then
  apt_install wrk
fi

step "npm packages (code generation plugin and TypeScript test clients)"
npm ci --no-audit --no-fund --loglevel=error

step "buf lint, buf format, and generated code up to date"
go tool buf lint
go tool buf format --diff --exit-code
go tool buf generate
if [ -n "$(git status --porcelain -- gen)" ]; then
  git status --short -- gen
  echo "generated code is stale: run 'go tool buf generate' and commit gen/" >&2
  exit 1
fi

step "go mod tidy leaves go.mod and go.sum as committed"
go mod tidy
if [ -n "$(git status --porcelain -- go.mod go.sum)" ]; then
  git diff -- go.mod
  echo "go.mod or go.sum is not tidy: run 'go mod tidy' and commit" >&2
  exit 1
fi

step "gofmt and go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v -e '^gen/' -e '^examples/[^/]*/gen/') 2>&1 || true)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...

step "TypeScript packages and Chromium: build @custodian-bff/*, run the TypeScript tests against a demo gateway (scripts/ts.sh)"
mkdir -p .build
go build -o .build/custodian ./cmd/custodian
go build -o .build/custodian-demo ./cmd/custodian-demo
export CUSTODIAN_BIN="$PWD/.build/custodian" CUSTODIAN_DEMO_BIN="$PWD/.build/custodian-demo"
bash scripts/ts.sh

step "The Next.js example: next build (Turbopack and webpack) and its Chromium tests (scripts/nextjs.sh)"
bash scripts/nextjs.sh

step "grpcurl, for the reflection tests (built from the Go module proxy)"
GOBIN="$PWD/.build/bin" GOFLAGS= go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3
export GRPCURL="$PWD/.build/bin/grpcurl"

step "Go tests (race detector on)"
go test -race -count=1 ./...

step "bench harness smoke run"
# scripts/bench.sh --smoke (docs/bench.md): demo and canned backends, every
# path for 1 s; fails unless every first answer looks right and no call fails.
bash scripts/bench.sh --smoke --backends both

step "The example gateway, a module of its own on the public API (examples/notes)"
bash scripts/example.sh

step "Interop with Ory Hydra v2.3 (tests/hydra, Hydra built from the Go module proxy)"
bash scripts/hydra.sh
