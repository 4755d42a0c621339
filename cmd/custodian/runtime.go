package main

import (
	"log/slog"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// defaultGOGC is the garbage collector's target when GOGC is not set. The
// gateway's live heap is small (a session with its tokens is about 3 KB),
// so letting the heap grow to five times it between collections costs
// little memory and cuts the CPU per call by about a fifth; GOMEMLIMIT
// (below) makes the collector work harder before memory runs short.
const defaultGOGC = 400

// memLimitRatio is the share of the container's (cgroup's) or machine's
// memory set as GOMEMLIMIT when GOMEMLIMIT is not set.
const memLimitRatio = 0.9

// tuneRuntime sets the garbage collector's defaults for a gateway, leaving
// alone what the GOGC and GOMEMLIMIT environment variables set.
func tuneRuntime(getenv func(string) string, logger *slog.Logger) {
	gogc := getenv("GOGC")
	if gogc == "" {
		debug.SetGCPercent(defaultGOGC)
	}
	limit, err := memlimit.Set(
		memlimit.WithRatio(memLimitRatio),
		memlimit.WithProvider(memlimit.ApplyFallback(memlimit.FromCgroup, memlimit.FromSystem)),
	)
	if err != nil {
		logger.Warn("GOMEMLIMIT not set", slog.String("error", err.Error()))
	}
	if gogc == "" {
		gogc = "400 (default)"
	}
	logger.Debug("garbage collector", slog.String("gogc", gogc), slog.Int64("gomemlimit", limit))
}
