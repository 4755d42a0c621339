#!/usr/bin/env bash
# Interop suite against Ory Hydra v2.3.0, an OpenID Certified provider
# (tests/hydra): builds Hydra from the Go module proxy, once per version of
# tests/hydra/tool's go.mod and go.sum and of Go, keeping the binary in
# .build/hydra, then checks the suite's module and runs it with the race
# detector. Hydra runs in memory on Unix sockets of the test's temporary
# directory; every other listener is on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

suite=tests/hydra
tool=$suite/tool

# Hydra's SQLite driver needs cgo.
if ! command -v gcc >/dev/null 2>&1; then
  step "installing gcc with apt-get (cgo, for Hydra's SQLite)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq gcc libc6-dev >/dev/null
fi

step "Ory Hydra v2.3.0 (module $tool)"
key=$(cat "$tool/go.mod" "$tool/go.sum" <(go env GOVERSION GOOS GOARCH) | sha256sum | cut -c1-16)
bin="$PWD/.build/hydra/hydra-$key"
if [ -x "$bin" ]; then
  echo "cached: $bin"
else
  mkdir -p .build/hydra
  start=$SECONDS
  (
    cd "$tool"
    go mod verify >/dev/null
    # The tags are Hydra's own for an SQLite build: DSN=memory needs them.
    CGO_ENABLED=1 go build -tags sqlite,sqlite_omit_load_extension -o "$bin.tmp" github.com/ory/hydra/v2
  )
  mv "$bin.tmp" "$bin"
  # Older builds (another go.sum or Go version) are of no further use.
  find .build/hydra -maxdepth 1 -name 'hydra-*' ! -name "hydra-$key" -delete
  echo "built in $((SECONDS - start))s: $bin"
fi

step "go mod tidy, gofmt and go vet ($suite)"
# Both modules follow requirements they do not own (the root's through the
# replace directive, Hydra's own): after a change there, run 'go mod tidy'
# in the module that reports it.
for mod in "$suite" "$tool"; do
  if ! (cd "$mod" && go mod tidy -diff); then
    echo "$mod/go.mod or go.sum is not tidy: run 'go mod tidy' in $mod and commit" >&2
    exit 1
  fi
done
unformatted=$(gofmt -l "$suite")
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" >&2
  echo "$unformatted" >&2
  exit 1
fi
(cd "$suite" && go vet ./...)

step "interop tests against Hydra (race detector on)"
start=$SECONDS
(cd "$suite" && HYDRA_BIN="$bin" go test -race -count=1 ./...)
echo "tests took $((SECONDS - start))s"
