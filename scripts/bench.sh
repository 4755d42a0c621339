#!/usr/bin/env bash
# Load-tests the gateway with wrk, fairly: the gateway alone in its own
# process, its demo world (provider and backends) in another, and for every
# path the gateway's CPU time per call beside req/s and latencies. It builds
# .build/custodian, .build/custodian-demo and the harness (scripts/bench,
# a Go program), and runs the harness with the flags given:
#
#   --backends demo|canned|both   the demo backends, canned ones that answer
#                                 from memory (default), or both in turn
#   --duration 5s --rounds 2      each measured run, and how many rounds
#   --paths order,dashboard,...   what to measure (default: all six)
#   --routes=false                without the config-only routes of examples/routes
#   --telemetry off|on|nolog|both|all  traces (OTLP to a sink, 10 % sampled) and
#                                 metrics on or off, or interleaved (docs/bench.md)
#   --json FILE                   also every run's raw results, as JSON
#   --smoke                       1 s per path, exit 1 unless all answered right
#   --profile DIR                 a CPU profile of the gateway per measured run
#   --soak 30m [--soak-load 0.5]  instead: half the peak rate on a mix of paths,
#                                 with sign-ins and sign-outs; heap, RSS and
#                                 goroutines must stay flat (not in CI)
#
# docs/bench.md explains the columns and the two backend modes. Needs wrk
# (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
mkdir -p .build
go build -o .build/bench ./scripts/bench
exec .build/bench "$@"
