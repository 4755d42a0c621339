package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The soak (--soak): a steady share of the peak rate on a mix of paths,
// with sessions signing in and out, for a long time, sampling the
// gateway's heap, RSS and goroutines, which must stay flat.
const (
	defaultSoakLoad   = 0.5
	defaultSoakSample = 10 * time.Second
	// minSoak is the shortest soak; minSoakSamples the fewest samples.
	minSoak        = time.Minute
	minSoakSamples = 6
	// peakDuration is how long the mix runs unthrottled to find the peak.
	peakDuration = 10 * time.Second
	// signInEvery is how often a session is signed in, used and signed out.
	signInEvery = 2 * time.Second
	// soakSessionIdle is the gateway's session.idle_timeout in a soak (the
	// demo's is 30 minutes): what a session leaves behind (the tombstone
	// that tells its cookie why it ended, a rate-limit bucket) lives that
	// long, so it must be well inside the warm-up for a steady state to
	// show. Alice's session, in use all the time, does not go idle.
	soakSessionIdle = 3 * time.Minute
)

// checkSoak checks the soak's flags against the others.
func (o options) checkSoak() error {
	if o.soak == 0 {
		return nil
	}
	switch {
	case o.soak < minSoak:
		return fmt.Errorf("--soak %v: want at least %v", o.soak, minSoak)
	case len(o.modes) != 1:
		return errors.New("--soak takes one backend mode: --backends demo or canned")
	case len(o.telemetry) != 1:
		return errors.New("--soak takes one telemetry variant")
	case o.smoke:
		return errors.New("--soak and --smoke do not go together")
	case !(o.soakLoad > 0 && o.soakLoad <= 1):
		return fmt.Errorf("--soak-load %v: want a share of the peak above 0, at most 1", o.soakLoad)
	case o.soakSample < time.Second || o.soak/o.soakSample < minSoakSamples:
		return fmt.Errorf("--soak-sample %v: want at least 1s, and at least %d samples in --soak %v", o.soakSample, minSoakSamples, o.soak)
	}
	return nil
}

// runSoak is run for --soak: it soaks the gateway, prints the report
// (also what it gathered before an error or Ctrl-C) and returns the exit
// code.
func runSoak(ctx context.Context, o options, stdout, stderr io.Writer) int {
	progress := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	start := time.Now()
	rep, err := soak(ctx, o, progress)
	if rep != nil {
		fmt.Fprintln(stdout)
		writeSoakMarkdown(stdout, rep)
		if o.jsonPath != "" {
			if jerr := writeSoakJSON(o.jsonPath, rep); jerr != nil {
				err = errors.Join(err, jerr)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	progress("bench: done in %v", time.Since(start).Round(100*time.Millisecond))
	failures, warnings := rep.problems()
	return verdict(stderr, failures, warnings)
}

// soak builds the binaries, starts a world whose gateway has an admin
// listener, finds the mix's peak rate and holds o.soakLoad of it for
// o.soak. The report holds what was gathered, also with an error.
func soak(ctx context.Context, o options, progress func(string, ...any)) (*soakReport, error) {
	bins, done, err := prepare(ctx, o, progress)
	if err != nil {
		return nil, err
	}
	defer done()
	ticks := clockTicks(ctx)
	mode, variant := o.modes[0], o.telemetry[0]
	var sink *traceSink
	if variant == telemetryOn {
		if sink, err = startTraceSink(); err != nil {
			return nil, err
		}
		defer sink.close()
	}
	rep := &soakReport{
		Backends:        mode,
		Telemetry:       variant,
		Started:         time.Now().UTC().Format(time.RFC3339),
		CPUs:            runtime.NumCPU(),
		DurationSeconds: o.soak.Seconds(),
		SampleSeconds:   o.soakSample.Seconds(),
		Load:            o.soakLoad,
		Workers:         soakWorkers,
		Mix:             soakMix,
		LoadBefore:      loadAverage(),
	}
	defer func() { rep.LoadAfter = loadAverage() }()
	w, err := startWorld(ctx, bins, mode, variant, sink, o.profile, true, soakSessionIdle, progress)
	if err != nil {
		return rep, err
	}
	defer w.close()
	label := mode
	if variant != telemetryOff {
		label += ", telemetry " + variant
	}

	// The mix's calls, each checked once, which also records their answers
	// in canned backends.
	var calls []soakCall
	var weights []int
	for _, m := range soakMix {
		p, _ := pathByKey(m.Key)
		c, err := newSoakCall(ctx, w, p)
		if err != nil {
			return rep, err
		}
		target, headers, _, err := p.target(ctx, w)
		if err == nil {
			err = p.firstAnswer(ctx, target, headers)
		}
		if err != nil {
			return rep, fmt.Errorf("%s: %w", p.Label, err)
		}
		calls, weights = append(calls, c), append(weights, m.Weight)
	}

	progress("bench: [%s] peak: the mix from %d connections, as fast as they go, for %v", label, soakWorkers, peakDuration)
	peakErrs := &errorLog{start: time.Now()}
	peak := newLoadGen(calls, weights, nil, peakErrs)
	peakCtx, cancel := context.WithTimeout(ctx, peakDuration)
	began := time.Now()
	peak.run(peakCtx, soakWorkers)
	elapsed := time.Since(began)
	cancel()
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	rep.PeakRate = float64(peak.done.Load()) / elapsed.Seconds()
	rep.PeakErrors, rep.PeakErrorTexts = peak.failed.Load(), peakErrs.texts()
	rep.TargetRate = rep.PeakRate * o.soakLoad
	progress("bench: [%s] peak %.0f calls/s (%d errors); soaking at %.0f calls/s (%.0f %%) for %v, sampling every %v",
		label, rep.PeakRate, rep.PeakErrors, rep.TargetRate, o.soakLoad*100, o.soak, o.soakSample)
	if rep.TargetRate < 1 {
		return rep, fmt.Errorf("a peak of %.1f calls/s leaves no rate to soak at", rep.PeakRate)
	}

	churn := &sessionChurn{public: w.public}
	for i, m := range soakMix {
		switch m.Key {
		case "session":
			churn.session = calls[i]
		case "dashboard":
			churn.dashboard = calls[i]
		}
	}
	err = soakLoad(ctx, o, w, rep, calls, weights, churn, ticks, func(s soakSample) {
		progress("bench: [%s] soak %v/%v  %s", label, time.Duration(s.ElapsedSeconds*float64(time.Second)).Round(time.Second), o.soak, s.summaryLine())
	})
	rep.Verdict = judgeSoak(rep.Samples, o.soak)
	return rep, err
}

// soakLoad holds the load and the sessions' churn for o.soak from now,
// sampling the gateway every o.soakSample into rep, the first sample
// before the load starts. It stops early, keeping what it has, when ctx
// ends (rep.Interrupted), the gateway exits or it cannot be read.
func soakLoad(ctx context.Context, o options, w *world, rep *soakReport, calls []soakCall, weights []int, churn *sessionChurn, ticks int64, show func(soakSample)) error {
	before, err := readGateway(ctx, w)
	if err != nil {
		return err
	}
	start := before.at
	errs := &errorLog{start: start}
	churn.errs = errs
	gen := newLoadGen(calls, weights, &pacer{start: start, rate: rep.TargetRate}, errs)
	total := func() counters {
		return counters{
			calls:   gen.done.Load() + gen.failed.Load(),
			errors:  gen.failed.Load() + churn.failed.Load(),
			late:    gen.late(),
			logins:  churn.logins.Load(),
			logouts: churn.logouts.Load(),
		}
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { gen.run(loadCtx, soakWorkers) })
	wg.Go(func() { churn.run(loadCtx, signInEvery) })
	defer func() {
		stopLoad()
		wg.Wait()
		t := total()
		rep.Calls, rep.Errors, rep.Late, rep.Logins, rep.Logouts = t.calls, t.errors, t.late, t.logins, t.logouts
		rep.ErrorTexts = errs.texts()
		rep.RanSeconds = time.Since(start).Seconds()
		if rep.RanSeconds > 0 {
			rep.AchievedRate = float64(t.calls) / rep.RanSeconds
		}
	}()

	rep.Samples = append(rep.Samples, newSoakSample(start, gatewayState{}, before, counters{}, counters{}, nil, ticks))
	prev, was := before, counters{}
	n := int(math.Ceil(float64(o.soak) / float64(o.soakSample)))
	for i := 1; i <= n; i++ {
		select {
		case <-ctx.Done():
			rep.Interrupted = true
			return fmt.Errorf("interrupted after %v: %w", time.Since(start).Round(time.Second), ctx.Err())
		case <-time.After(time.Until(start.Add(min(time.Duration(i)*o.soakSample, o.soak)))):
		}
		if w.gateway.exited() {
			return w.withLogs(errors.New("the gateway exited during the soak"))
		}
		is := total()
		now, err := readGateway(ctx, w)
		if err != nil {
			if ctx.Err() != nil {
				rep.Interrupted = true
			}
			return fmt.Errorf("sampling the gateway after %v: %w", time.Since(start).Round(time.Second), err)
		}
		s := newSoakSample(start, prev, now, was, is, gen.lat.take(), ticks)
		rep.Samples = append(rep.Samples, s)
		show(s)
		prev, was = now, is
		if w.profileDir == "" {
			continue
		}
		// With --profile, the gateway's heap where the verdict starts and
		// where it ends, for go tool pprof -base.
		var name string
		switch {
		case i == n:
			name = "soak-heap-end.pprof"
		case s.ElapsedSeconds > warmUpShare*o.soak.Seconds() && rep.Samples[len(rep.Samples)-2].ElapsedSeconds <= warmUpShare*o.soak.Seconds():
			name = "soak-heap-warm.pprof"
		default:
			continue
		}
		path := filepath.Join(w.profileDir, name)
		if err := w.pprof(ctx, "heap", path); err != nil {
			return fmt.Errorf("the gateway's heap profile: %w", err)
		}
		rep.HeapProfiles = append(rep.HeapProfiles, path)
	}
	return nil
}

// soakUser is a user who signs in and out during a soak, with the name
// their dashboard shows.
type soakUser struct{ name, display string }

// soakUsers sign in in turn; their password is demo.
var soakUsers = []soakUser{{"alice", "Alice Martin"}, {"bob", "Bob Janssen"}}

// sessionChurn signs users in and out as browsers do, checking the
// sessions before and after.
type sessionChurn struct {
	public string
	// session and dashboard are alice's GetSession and GetDashboard, whose
	// cookie each sign-in replaces.
	session, dashboard soakCall
	errs               *errorLog

	logins, logouts, failed atomic.Int64
}

// run signs a session in and out every every until ctx ends.
func (c *sessionChurn) run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; ; i++ {
		if err := c.once(ctx, soakUsers[i%len(soakUsers)]); err != nil && ctx.Err() == nil {
			c.failed.Add(1)
			c.errs.add(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// once signs u in through the real login flow, calls GetSession and
// GetDashboard with the new session, signs it out as a page would, and
// checks that the old cookie is then signed out.
func (c *sessionChurn) once(ctx context.Context, u soakUser) error {
	cookie, err := signIn(ctx, c.public, u.name, "demo")
	if err != nil {
		return fmt.Errorf("%s signs in: %w", u.name, err)
	}
	c.logins.Add(1)
	client := soakClient()
	defer client.CloseIdleConnections()
	for _, call := range []soakCall{
		c.session.withSession(cookie, 0, sessionOf(u.name)),
		c.dashboard.withSession(cookie, 0, contains(`"`+u.display+`"`)),
	} {
		if err := call.do(ctx, client); err != nil {
			return fmt.Errorf("%s's new session: %w", u.name, err)
		}
	}
	if err := signOut(ctx, c.public, cookie); err != nil {
		return fmt.Errorf("%s signs out: %w", u.name, err)
	}
	c.logouts.Add(1)
	for _, call := range []soakCall{
		c.session.withSession(cookie, 0, signedOut),
		c.dashboard.withSession(cookie, http.StatusUnauthorized, nil),
	} {
		if err := call.do(ctx, client); err != nil {
			return fmt.Errorf("%s's session after sign-out: %w", u.name, err)
		}
	}
	return nil
}

// sessionOf checks that a GetSession answer is signed in as subject.
func sessionOf(subject string) func([]byte) error {
	return func(body []byte) error {
		var res struct {
			SignedIn bool `json:"signedIn"`
			User     struct {
				Subject string `json:"subject"`
			} `json:"user"`
		}
		if err := json.Unmarshal(body, &res); err != nil {
			return err
		}
		if !res.SignedIn || res.User.Subject != subject {
			return fmt.Errorf("not signed in as %s", subject)
		}
		return nil
	}
}

// signedOut checks that a GetSession answer is signed out.
func signedOut(body []byte) error {
	var res struct {
		SignedIn bool `json:"signedIn"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return err
	}
	if res.SignedIn {
		return errors.New("still signed in")
	}
	return nil
}
