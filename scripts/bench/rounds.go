package main

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// warmUpSeconds is the wrk run before each measured one: connection
// pools, caches and, with canned backends, their answers.
const warmUpSeconds = 1

// measureWorld starts a world in mode, checks each path's first answer,
// and measures the paths in interleaved rounds: round 1 runs every path
// once, then round 2, and so on, so that a change in the machine's load
// spreads over all paths instead of hitting one.
func measureWorld(ctx context.Context, o options, bins binaries, mode string, ticks int64, progress func(string, ...any)) (worldReport, error) {
	rep := worldReport{
		Backends:    mode,
		Started:     time.Now().UTC().Format(time.RFC3339),
		CPUs:        runtime.NumCPU(),
		ClockTicks:  ticks,
		LoadBefore:  loadAverage(),
		CheckErrors: map[string]string{},
	}
	w, err := startWorld(ctx, bins, mode, progress)
	if err != nil {
		return rep, err
	}
	defer w.close()

	var measured []benchPath
	for _, p := range o.paths {
		target, headers, _, err := p.target(ctx, w)
		if err == nil {
			err = p.firstAnswer(ctx, target, headers)
		}
		if err != nil {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			rep.CheckErrors[p.Key] = err.Error()
			progress("bench: [%s] %s: %v", mode, p.Label, err)
			continue
		}
		measured = append(measured, p)
	}

	seconds := int(o.duration / time.Second)
	for round := 1; round <= o.rounds; round++ {
		for _, p := range measured {
			r, err := measurePath(ctx, o, w, p, seconds, ticks)
			if err != nil {
				return rep, fmt.Errorf("%s, round %d: %w", p.Label, round, err)
			}
			r.Round = round
			rep.Runs = append(rep.Runs, r)
			progress("bench: [%s] round %d/%d  %-30s %s", mode, round, o.rounds, p.Label, r.summaryLine())
		}
	}
	rep.LoadAfter = loadAverage()
	rep.Summary = summarize(o.paths, rep.Runs, rep.CheckErrors)
	return rep, nil
}

// measurePath warms up (unless smoke) and measures one run of p, reading
// the paying process's CPU time just before and just after it.
func measurePath(ctx context.Context, o options, w *world, p benchPath, seconds int, ticks int64) (runResult, error) {
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
	res, raw, err := runWrk(ctx, seconds, target, headers)
	if err != nil {
		return runResult{}, err
	}
	after, err := w.cpuSnapshot()
	if err != nil {
		return runResult{}, err
	}
	used := after.minus(before)
	r := newRunResult(p, res, raw, cpu.name, used.of(cpu, w), ticks)
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
