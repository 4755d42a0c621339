package main

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"time"
)

// warmUpSeconds is the wrk run before each measured one: connection
// pools, caches and, with canned backends, their answers.
const warmUpSeconds = 1

// measureWorld starts a world in mode, checks each path's first answer,
// and measures the paths in interleaved rounds: round 1 runs every path
// once, then round 2, and so on, so that a change in the machine's load
// spreads over all paths instead of hitting one. With several telemetry
// variants, each round runs every variant in turn (in an order that turns
// from round to round, roundOrder), each on a gateway started afresh for it (and alice signed in again, and the paths checked
// again, which records the new tokens' answers in canned backends).
func measureWorld(ctx context.Context, o options, bins binaries, mode string, ticks int64, progress func(string, ...any)) (worldReport, error) {
	rep := worldReport{
		Backends:    mode,
		Variants:    o.telemetry,
		Started:     time.Now().UTC().Format(time.RFC3339),
		CPUs:        runtime.NumCPU(),
		ClockTicks:  ticks,
		LoadBefore:  loadAverage(),
		CheckErrors: map[string]string{},
	}
	var sink *traceSink
	if slices.Contains(o.telemetry, telemetryOn) {
		var err error
		if sink, err = startTraceSink(); err != nil {
			return rep, err
		}
		defer sink.close()
	}
	w, err := startWorld(ctx, bins, mode, o.telemetry[0], sink, o.profile, false, 0, progress)
	if err != nil {
		return rep, err
	}
	defer w.close()

	multi := len(o.telemetry) > 1
	label := func(variant string) string {
		if multi || variant != telemetryOff {
			return mode + ", telemetry " + variant
		}
		return mode
	}
	// check makes each path's first call on the running gateway and
	// returns the paths that answered right.
	check := func(variant string) ([]benchPath, error) {
		var ok []benchPath
		for _, p := range o.paths {
			target, headers, _, err := p.target(ctx, w)
			if err == nil {
				err = p.firstAnswer(ctx, target, headers)
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				rep.CheckErrors[checkKey(p.Key, variant, multi)] = err.Error()
				progress("bench: [%s] %s: %v", label(variant), p.Label, err)
				continue
			}
			ok = append(ok, p)
		}
		return ok, nil
	}

	seconds := int(o.duration / time.Second)
	var measured []benchPath
	for round := 1; round <= o.rounds; round++ {
		for i, variant := range roundOrder(o.telemetry, round) {
			first := round == 1 && i == 0
			if multi && !first {
				if err := w.stopGateway(ctx); err != nil {
					return rep, fmt.Errorf("telemetry %s: %w", w.variant, err)
				}
				if err := w.startGateway(ctx, variant); err != nil {
					return rep, w.withLogs(fmt.Errorf("telemetry %s, round %d: %w", variant, round, err))
				}
				progress("bench: [%s] round %d: gateway (pid %d) started", label(variant), round, w.gateway.pid())
			}
			if first || multi {
				if measured, err = check(variant); err != nil {
					return rep, err
				}
			}
			for _, p := range measured {
				r, err := measurePath(ctx, o, w, p, round, seconds, ticks)
				if err != nil {
					return rep, fmt.Errorf("%s, round %d, telemetry %s: %w", p.Label, round, variant, err)
				}
				r.Round = round
				rep.Runs = append(rep.Runs, r)
				progress("bench: [%s] round %d/%d  %-30s %s", label(variant), round, o.rounds, p.Label, r.summaryLine())
			}
		}
	}
	if err := w.stopGateway(ctx); err != nil {
		return rep, fmt.Errorf("telemetry %s: %w", w.variant, err)
	}
	if w.tel != nil {
		w.tel.Sink = sink.received() // the gateway flushed its spans as it stopped
		rep.Telemetry = w.tel
	}
	rep.LoadAfter = loadAverage()
	rep.Summary = summarize(o.paths, o.telemetry, rep.Runs, rep.CheckErrors)
	return rep, nil
}

// roundOrder returns the order of the telemetry variants in round: the
// list turned by one each round (off, on; then on, off; ...), so that no
// variant always runs right after a gateway start of the other or at the
// same point of a slow drift in the machine's speed.
func roundOrder(variants []string, round int) []string {
	k := (round - 1) % len(variants)
	return append(slices.Clone(variants[k:]), variants[:k]...)
}

// checkKey is the key of a path's check error: the path, and with several
// telemetry variants the variant too.
func checkKey(path, variant string, multi bool) string {
	if multi {
		return path + "@" + variant
	}
	return path
}

// measurePath warms up (unless smoke) and measures one run of p, reading
// the paying process's CPU time just before and just after it.
func measurePath(ctx context.Context, o options, w *world, p benchPath, round, seconds int, ticks int64) (runResult, error) {
	target, headers, cpu, err := p.target(ctx, w)
	if err != nil {
		return runResult{}, err
	}
	if !o.smoke {
		if _, _, err := runWrk(ctx, warmUpSeconds, target, headers); err != nil {
			return runResult{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	var forwardedBefore int64
	if w.mode == modeCanned {
		if forwardedBefore, err = w.cannedForwarded(ctx); err != nil {
			return runResult{}, err
		}
	}
	before, err := w.cpuSnapshot()
	if err != nil {
		return runResult{}, err
	}
	var profiled chan error
	if w.profileDir != "" && w.gatewayAdmin != "" && cpu == w.gateway {
		profiled = make(chan error, 1)
		name := fmt.Sprintf("%s-%s-%s-r%d.pprof", w.mode, p.Key, w.variant, round)
		go func() { profiled <- w.profile(ctx, seconds, filepath.Join(w.profileDir, name)) }()
	}
	res, raw, err := runWrk(ctx, seconds, target, headers)
	if profiled != nil {
		if perr := <-profiled; err == nil && perr != nil {
			err = fmt.Errorf("CPU profile: %w", perr)
		}
	}
	if err != nil {
		return runResult{}, err
	}
	// With an admin listener, one scrape per measured run, as Prometheus
	// would every few seconds; its cost is the gateway's.
	if err := w.scrape(ctx); err != nil {
		return runResult{}, err
	}
	after, err := w.cpuSnapshot()
	if err != nil {
		return runResult{}, err
	}
	used := after.minus(before)
	r := newRunResult(p, res, raw, cpu.name, used.of(cpu, w), ticks)
	r.Telemetry = w.variant
	r.OtherCPUs = used.others(res.CPU, ticks)
	if w.mode == modeCanned {
		forwardedAfter, err := w.cannedForwarded(ctx)
		if err != nil {
			return runResult{}, err
		}
		n := forwardedAfter - forwardedBefore
		r.CannedForwarded = &n
	}
	return r, nil
}
