#!/usr/bin/env bash
# Load test of a running demo gateway with wrk, the way the peer figures in
# shared/anchors.md were measured (wrk -t2 -c32 -d5s, loopback). It starts
# the demo on an ephemeral port, signs in as alice, and measures:
#   pass-through  GetOrder: session cookie -> held token -> orders backend
#                 (product names from the warm catalog cache)
#   aggregate     GetDashboard: profiles + loyalty (exchanged token) + orders,
#                 then the catalog
#   anonymous     ListProducts: no session, shared catalog cache
# Usage: bash scripts/bench.sh [seconds]   (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-5}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
mkdir -p .build
go build -o .build/custodian ./cmd/custodian
log=$(mktemp)
jar=$(mktemp)
.build/custodian --addr 127.0.0.1:0 --log-json 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log" "$jar"' EXIT
# The gateway logs where it listens once it is ready.
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*"msg":"custodian is listening".*"listen":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$log" | head -1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "the gateway did not start" >&2; cat "$log" >&2; exit 1; }
base="http://localhost:$port"
auth=$(curl -s -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' "$base/auth/login?return_to=/")
callback=$(curl -s -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' -d 'username=alice&password=demo' "$auth")
curl -s -c "$jar" -b "$jar" -o /dev/null "$callback"
cookie=$(awk '$6 == "__Host-custodian" {print $7}' "$jar")
[ -n "$cookie" ] || { echo "login failed" >&2; exit 1; }
run() {
  local name=$1 path=$2
  shift 2
  # Warm up (caches, connection pools), then measure.
  wrk -t2 -c32 -d1s "$@" "http://127.0.0.1:$port$path" >/dev/null
  printf '%-14s' "$name"
  wrk -t2 -c32 -d"${duration}s" --latency "$@" "http://127.0.0.1:$port$path" |
    awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {bad=$NF}
         END {printf "%10s req/s   p50 %8s   p99 %8s   non-2xx %s\n", rps, p50, p99, (bad == "" ? 0 : bad)}'
}
session=(-H "Cookie: __Host-custodian=$cookie" -H "X-CSRF: 1")
run pass-through "/acme.storefront.v1.AccountService/GetOrder?encoding=json&message=%7B%22orderId%22%3A%22o-1001%22%7D" "${session[@]}"
run aggregate "/acme.storefront.v1.AccountService/GetDashboard?encoding=json&message=%7B%7D" "${session[@]}"
run anonymous "/acme.storefront.v1.ProductService/ListProducts?encoding=json&message=%7B%7D"
