#!/usr/bin/env bash
# Runs the config-only gateway of examples/routes on the demo world, to try it
# by hand (docs/routes.md): builds the descriptor set and the binaries, starts
# custodian-demo (the demo provider and backends), appends the `routes:`
# section of examples/routes/custodian.yaml to the configuration it writes, and
# runs the gateway on it at http://localhost:8080 until Ctrl-C. Everything it
# writes goes to .build/routes. examples/routes/routes_test.go does the same in
# `go test ./...`.
#
#   PORT                                 the gateway's port (default 8080)
#   CUSTODIAN_BIN, CUSTODIAN_DEMO_BIN    use these binaries instead of building
set -euo pipefail
cd "$(dirname "$0")/.."

port="${PORT:-8080}"
run=.build/routes
rm -rf "$run"
mkdir -p "$run"

if [ -z "${CUSTODIAN_BIN:-}" ] || [ -z "${CUSTODIAN_DEMO_BIN:-}" ]; then
  go build -o .build/custodian ./cmd/custodian
  go build -o .build/custodian-demo ./cmd/custodian-demo
  CUSTODIAN_BIN="$PWD/.build/custodian" CUSTODIAN_DEMO_BIN="$PWD/.build/custodian-demo"
fi

# The public schema and the backends' schemas, in one descriptor set: the
# routes section names it as public.binpb, next to the configuration.
go tool buf build -o "$run/public.binpb"

# The demo world prints one JSON line when it is ready, having written
# gateway-1.yaml and its secrets.
"$CUSTODIAN_DEMO_BIN" --addr 127.0.0.1:0 --out "$run" --gateway "http://localhost:$port" \
  >"$run/ready.json" 2>"$run/demo.log" &
demo=$!
trap 'kill "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true' EXIT
for _ in $(seq 300); do
  [ -s "$run/ready.json" ] && break
  if ! kill -0 "$demo" 2>/dev/null; then
    cat "$run/demo.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ ! -s "$run/ready.json" ]; then
  echo "custodian-demo was not ready within 30 s; its log is $run/demo.log" >&2
  exit 1
fi

{
  cat "$run/gateway-1.yaml"
  echo
  sed -n '/^routes:/,$p' examples/routes/custodian.yaml
} >"$run/shop.yaml"

cat <<EOF

The gateway's configuration is $run/shop.yaml (the demo world's log: $run/demo.log).
Try, in another terminal:

  # anonymous, over Connect JSON
  curl -sS -H 'Content-Type: application/json' -d '{"pageSize": 2}' \\
    http://localhost:$port/web.shop.v1.ShopService/ListProducts
  # needs a session: unauthenticated
  curl -sS -H 'Content-Type: application/json' -d '{"orderId": "o-1001"}' \\
    http://localhost:$port/web.shop.v1.ShopService/GetOrder
  # over gRPC, described by the gateway's reflection
  go tool buf curl --protocol grpc --http2-prior-knowledge -d '{"category": "books"}' \\
    http://localhost:$port/web.shop.v1.ShopService/ListProducts

Sign in as alice (password demo) at http://localhost:$port/auth/login; the
browser's session then reaches GetOrder and ListOrders.

EOF
"$CUSTODIAN_BIN" --config "$run/shop.yaml"
