// Command bench load-tests the gateway with wrk, fairly: the gateway runs
// alone in its own process, its demo world (provider and backends) in
// another, and every measured run reports the CPU the gateway process spent
// per call beside req/s and latencies. Run it as
//
//	bash scripts/bench.sh [flags]
//
// (or go run ./scripts/bench [flags] from the repository root). It builds
// .build/custodian and .build/custodian-demo, then, for each backend mode
// asked for (--backends):
//
//   - starts custodian-demo (--canned for canned backends, which answer
//     from memory so that what is measured is the gateway's own cost), and
//     the gateway on the configuration it writes, plus the routes of
//     examples/routes unless --routes=false;
//   - signs in as alice through the real login flow;
//   - runs every path (--paths) once per round (--rounds), each measured
//     run after a 1 s warm-up, with wrk -t2 -c32 -d<duration> --latency;
//   - prints a markdown table of the medians per path.
//
// --telemetry both measures the gateway with its telemetry off (the
// default) and on (traces exported with OTLP/HTTP to a sink the harness
// runs, 10 % sampled; /metrics on an admin listener, scraped once per
// measured run), round by round, each on a gateway started for it, and
// adds a table of on against off.
//
// --soak 30m replaces the measurement with a soak: a steady half of the
// peak rate on a mix of paths, sessions signing in and out, the gateway's
// heap, RSS and goroutines sampled and judged flat or not (soak.go).
//
// Each path's first answer is checked before it is measured; a wrong one
// makes the command exit 1. --smoke runs each path once for 1 s and also
// exits 1 if any call failed: the check scripts/test.sh runs. docs/bench.md
// explains the columns and the two backend modes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Backend modes (--backends).
const (
	modeDemo   = "demo"   // the demo backends, checking every token
	modeCanned = "canned" // canned backends: answers from memory
)

// options are the command's flags.
type options struct {
	modes    []string
	duration time.Duration // whole seconds: wrk takes seconds
	rounds   int
	paths    []benchPath
	smoke    bool
	routes   bool
	jsonPath string
	// telemetry are the gateway's telemetry variants, in the order each
	// round runs them (--telemetry).
	telemetry []string
	// profile is where each measured run's CPU profile of the gateway is
	// written (--profile); empty, none is taken.
	profile string
	// soak is how long a soak runs instead of the paths' measurement
	// (--soak, soak.go); 0, no soak. soakLoad is its rate as a share of
	// the peak, soakSample how often it samples the gateway.
	soak       time.Duration
	soakLoad   float64
	soakSample time.Duration
}

// parseFlags reads args into options.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	flags := flag.NewFlagSet("bench", flag.ContinueOnError)
	flags.SetOutput(stderr)
	backends := flags.String("backends", modeCanned, "backend `mode`: demo, canned or both (demo, then canned)")
	duration := flags.Duration("duration", 5*time.Second, "length of each measured run, in whole seconds")
	rounds := flags.Int("rounds", 2, "rounds; each runs every path once, and the table shows medians")
	paths := flags.String("paths", strings.Join(pathKeys(), ","), "comma-separated `paths` to measure")
	smoke := flags.Bool("smoke", false, "1 round of 1 s per path, no warm-up; exit 1 unless every path answered right")
	routes := flags.Bool("routes", true, "add the config-only routes of examples/routes (path route needs them)")
	jsonPath := flags.String("json", "", "also write every run's raw results to this `file` as JSON")
	telemetry := flags.String("telemetry", telemetryOff, "the gateway's telemetry `variant`: off, on (OTLP traces at 10 % to a sink, /metrics scraped), nolog (access log off), both (off,on), all (off,on,nolog), or a list; several interleave by round")
	profile := flags.String("profile", "", "write a CPU profile of the gateway over each measured run into this `directory` (the gateway runs with --pprof)")
	soak := flags.Duration("soak", 0, "instead of measuring the paths, hold a steady load on a mix of them, with sessions signing in and out, for this `long` (at least 1m), and judge the gateway's heap, RSS and goroutines (docs/bench.md)")
	soakLoad := flags.Float64("soak-load", defaultSoakLoad, "the soak's rate as a `share` of the peak rate measured before it")
	soakSample := flags.Duration("soak-sample", defaultSoakSample, "how `often` the soak samples the gateway")
	if err := flags.Parse(args); err != nil {
		return options{}, err
	}
	if flags.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q (the length of a run is --duration, such as --duration 5s)", flags.Args())
	}
	o := options{duration: *duration, rounds: *rounds, smoke: *smoke, routes: *routes, jsonPath: *jsonPath}
	var err error
	if o.telemetry, err = parseTelemetry(*telemetry); err != nil {
		return options{}, err
	}
	switch *backends {
	case modeDemo, modeCanned:
		o.modes = []string{*backends}
	case "both":
		o.modes = []string{modeDemo, modeCanned}
	default:
		return options{}, fmt.Errorf("--backends %q: want demo, canned or both", *backends)
	}
	o.profile = *profile
	o.soak, o.soakLoad, o.soakSample = *soak, *soakLoad, *soakSample
	if err := o.checkSoak(); err != nil {
		return options{}, err
	}
	if o.smoke {
		o.duration, o.rounds = time.Second, 1
	}
	if o.duration < time.Second || o.duration%time.Second != 0 {
		return options{}, fmt.Errorf("--duration %v: want whole seconds, at least 1s", o.duration)
	}
	if o.rounds < 1 {
		return options{}, fmt.Errorf("--rounds %d: want at least 1", o.rounds)
	}
	pathsSet := false
	flags.Visit(func(f *flag.Flag) { pathsSet = pathsSet || f.Name == "paths" })
	for key := range strings.SplitSeq(*paths, ",") {
		p, ok := pathByKey(strings.TrimSpace(key))
		switch {
		case !ok:
			return options{}, fmt.Errorf("--paths: unknown path %q; the paths are %s", key, strings.Join(pathKeys(), ", "))
		case p.Route && !o.routes && pathsSet:
			return options{}, fmt.Errorf("--paths: %s needs --routes", p.Key)
		case p.Route && !o.routes:
			continue // not asked for by name: left out
		}
		if !slices.ContainsFunc(o.paths, func(q benchPath) bool { return q.Key == p.Key }) {
			o.paths = append(o.paths, p)
		}
	}
	return o, nil
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "bench: %v\n", err)
		}
		return 2
	}
	if o.soak > 0 {
		return runSoak(ctx, o, stdout, stderr)
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		fmt.Fprintln(stderr, "bench: wrk is not installed (apt-get install wrk)")
		return 1
	}
	progress := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	start := time.Now()
	reports, err := measure(ctx, o, progress)
	for _, rep := range reports {
		fmt.Fprintln(stdout)
		writeMarkdown(stdout, rep, o)
	}
	if o.jsonPath != "" && len(reports) > 0 {
		if jerr := writeJSON(o.jsonPath, o, reports); jerr != nil {
			err = errors.Join(err, jerr)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	progress("bench: done in %v", time.Since(start).Round(100*time.Millisecond))
	var failures, warnings []string
	for _, rep := range reports {
		f, w := rep.problems(o.smoke)
		failures, warnings = append(failures, f...), append(warnings, w...)
	}
	return verdict(stderr, failures, warnings)
}

// verdict prints the warnings and failures and returns the exit code: 1
// when anything failed.
func verdict(stderr io.Writer, failures, warnings []string) int {
	for _, w := range warnings {
		fmt.Fprintf(stderr, "bench: warning: %s\n", w)
	}
	for _, f := range failures {
		fmt.Fprintf(stderr, "bench: FAILED: %s\n", f)
	}
	if len(failures) > 0 {
		return 1
	}
	return 0
}

// measure builds what it needs and measures each backend mode in turn.
func measure(ctx context.Context, o options, progress func(string, ...any)) ([]worldReport, error) {
	bins, done, err := prepare(ctx, o, progress)
	if err != nil {
		return nil, err
	}
	defer done()
	ticks := clockTicks(ctx)
	var reports []worldReport
	for _, mode := range o.modes {
		rep, err := measureWorld(ctx, o, bins, mode, ticks, progress)
		if err != nil {
			return reports, fmt.Errorf("%s backends: %w", mode, err)
		}
		reports = append(reports, rep)
	}
	return reports, nil
}

// prepare builds the binaries, and with --routes the descriptor set into a
// scratch directory, which done removes.
func prepare(ctx context.Context, o options, progress func(string, ...any)) (bins binaries, done func(), err error) {
	root, err := moduleRoot()
	if err != nil {
		return bins, nil, err
	}
	scratch, err := os.MkdirTemp("", "custodian-bench-")
	if err != nil {
		return bins, nil, fmt.Errorf("scratch directory: %w", err)
	}
	done = func() { _ = os.RemoveAll(scratch) } // temporary; nothing to do if it fails
	if o.routes {
		progress("bench: building the binaries and the descriptor set of examples/routes")
	} else {
		progress("bench: building the binaries")
	}
	if bins, err = build(ctx, root, scratch, o.routes); err != nil {
		done()
		return bins, nil, err
	}
	return bins, done, nil
}

// moduleRoot returns the repository's root: the nearest directory up from
// the working directory whose go.mod is Custodian's.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(mod), "module github.com/custodian-bff/custodian\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run it inside the Custodian repository: no go.mod of github.com/custodian-bff/custodian above the working directory")
		}
		dir = parent
	}
}
