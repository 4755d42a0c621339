#!/usr/bin/env bash
# Checks the example gateway in examples/notes, a Go module of its own that
# uses Custodian as a library: its protos lint, its generated code is up to
# date, and it builds, vets and passes its end-to-end test.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

example=examples/notes

step "buf lint and format ($example)"
go tool buf lint "$example"
go tool buf format --diff --exit-code "$example"

# The code generators are Go tools of the root module, so generation runs
# from here. It writes into a temporary copy, so a stale tree is reported
# without being touched.
step "generated code up to date ($example/gen)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go tool buf generate "$example" --template "$example/buf.gen.yaml" -o "$tmp"
if ! diff -r "$example/gen" "$tmp/gen"; then
  echo "generated code is stale: run 'go tool buf generate $example --template $example/buf.gen.yaml -o $example' and commit $example/gen" >&2
  exit 1
fi

step "gofmt, go vet and go test ($example)"
cd "$example"
unformatted=$(gofmt -l $(find . -name '*.go' -not -path './gen/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" >&2
  echo "$unformatted" >&2
  exit 1
fi
# The module follows the root's requirements through its replace directive:
# after a change there, run 'go mod tidy' here.
if ! go mod tidy -diff; then
  echo "$example/go.mod or go.sum is not tidy: run 'go mod tidy' in $example and commit" >&2
  exit 1
fi
go mod verify >/dev/null
go vet ./...
go test -race -count=1 ./...
