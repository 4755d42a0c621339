package main

import (
	"bytes"
	"context"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// soakSeries returns the samples of a soak of length every sample apart,
// the first at 0, with heap goal, RSS and goroutines from the functions
// (given the elapsed seconds).
func soakSeries(length, sample time.Duration, heap, rss, goroutines func(t float64) float64) []soakSample {
	var ss []soakSample
	for t := time.Duration(0); t <= length; t += sample {
		x := t.Seconds()
		ss = append(ss, soakSample{
			ElapsedSeconds: x,
			HeapGoal:       int64(heap(x)),
			HeapInuse:      int64(heap(x) / 2),
			RSS:            int64(rss(x)),
			Goroutines:     int64(math.Round(goroutines(x))),
		})
	}
	return ss
}

func constant(v float64) func(float64) float64 { return func(float64) float64 { return v } }

// TestJudgeSoak judges series that are flat, that leak, that are noisy but
// flat, and that rise only during the warm-up.
func TestJudgeSoak(t *testing.T) {
	const mib = 1 << 20
	soak := 30 * time.Minute
	noise := rand.New(rand.NewPCG(1, 2))
	// jitter returns v ± share·v, uniformly.
	jitter := func(v, share float64) func(float64) float64 {
		return func(float64) float64 { return v * (1 + share*(2*noise.Float64()-1)) }
	}
	// warming rises from half of v to v over the first 5 minutes.
	warming := func(v float64) func(float64) float64 {
		return func(x float64) float64 { return v * (0.5 + 0.5*min(x/300, 1)) }
	}
	tests := []struct {
		name       string
		samples    []soakSample
		flat       bool
		notFlat    []string // the judged metrics that are not flat
		minSamples int
	}{
		{
			name:    "flat",
			samples: soakSeries(soak, 10*time.Second, constant(25*mib), constant(60*mib), constant(100)),
			flat:    true,
		},
		{
			name: "the heap leaks",
			samples: soakSeries(soak, 10*time.Second,
				func(x float64) float64 { return 25*mib + x*3000 }, // 4.1 MiB over the last 24 minutes, 15 %
				constant(60*mib), constant(100)),
			notFlat: []string{"heap goal"},
		},
		{
			name: "RSS and goroutines leak",
			samples: soakSeries(soak, 10*time.Second, constant(25*mib),
				func(x float64) float64 { return 60*mib + x*10000 },
				func(x float64) float64 { return 100 + x/60 }), // 24 more over the last 24 minutes
			notFlat: []string{"RSS", "goroutines"},
		},
		{
			// As much noise as a busy machine shows: the heap goal ±15 %,
			// RSS ±5 %, goroutines ±25.
			name: "noisy but flat",
			samples: soakSeries(soak, 10*time.Second,
				jitter(25*mib, 0.15), jitter(60*mib, 0.05), jitter(100, 0.25)),
			flat: true,
		},
		{
			name: "a leak inside the noise",
			samples: soakSeries(soak, 10*time.Second,
				func(x float64) float64 { return jitter(25*mib, 0.15)(x) + x*4000 }, // 5.5 MiB over the last 24 minutes, 19 %
				jitter(60*mib, 0.05), jitter(100, 0.25)),
			notFlat: []string{"heap goal"},
		},
		{
			name: "a rise during the warm-up only",
			samples: soakSeries(soak, 10*time.Second,
				warming(25*mib), warming(60*mib), warming(100)),
			flat: true,
		},
		{
			name: "falling",
			samples: soakSeries(soak, 10*time.Second,
				func(x float64) float64 { return 40*mib - x*5000 }, constant(60*mib), constant(100)),
			flat: true,
		},
		{
			name:    "too few samples after the warm-up",
			samples: soakSeries(20*time.Second, 10*time.Second, constant(25*mib), constant(60*mib), constant(100)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			planned := time.Duration(tt.samples[len(tt.samples)-1].ElapsedSeconds) * time.Second
			v := judgeSoak(tt.samples, planned)
			if v.Flat != tt.flat {
				t.Errorf("flat %v, want %v: %+v", v.Flat, tt.flat, v.Trends)
			}
			var notFlat []string
			for _, tr := range v.Trends {
				if tr.Judged && !tr.Flat {
					notFlat = append(notFlat, tr.Metric)
				}
			}
			if !slices.Equal(notFlat, tt.notFlat) {
				t.Errorf("not flat: %q, want %q: %+v", notFlat, tt.notFlat, v.Trends)
			}
			rep := &soakReport{Backends: modeCanned, Verdict: v}
			failures, _ := rep.problems()
			if (len(failures) == 0) != tt.flat {
				t.Errorf("problems: %q, with flat %v", failures, v.Flat)
			}
		})
	}
}

// TestJudgeSoakWarmUp leaves the first 20 % out, and always the first
// sample.
func TestJudgeSoakWarmUp(t *testing.T) {
	samples := soakSeries(30*time.Minute, 10*time.Second, constant(1), constant(1), constant(1))
	v := judgeSoak(samples, 30*time.Minute)
	if v.WarmUpSeconds != 360 || v.Samples != len(samples)-37 { // 0 to 6:00 left out
		t.Errorf("warm-up %vs, %d samples judged of %d", v.WarmUpSeconds, v.Samples, len(samples))
	}
	v = judgeSoak(samples[:5], 0)
	if v.Samples != 4 {
		t.Errorf("no warm-up: %d samples judged of 5, want all but the first", v.Samples)
	}
}

// TestJudgeTrend checks the line's rise and the thirds' medians.
func TestJudgeTrend(t *testing.T) {
	ts := []float64{0, 10, 20, 30, 40, 50}
	ys := []float64{100, 102, 104, 106, 108, 110}
	tr := judgeTrend(trendRule{metric: "x", judged: true, absolute: 10, relative: 0.1}, ts, ys)
	if math.Abs(tr.Drift-10) > 1e-9 || tr.FirstThird != 101 || tr.LastThird != 109 || tr.Median != 105 || tr.Limit != 10.5 || !tr.Flat {
		t.Errorf("%+v: want a rise of 10, thirds 101 and 109, median 105, limit 10.5, flat", tr)
	}
	ys[5] = 200 // one outlier at the end
	if tr := judgeTrend(trendRule{absolute: 10, relative: 0.1}, ts, ys); tr.Flat {
		t.Errorf("%+v: want not flat", tr)
	}
}

func TestMixCycle(t *testing.T) {
	weights := make([]int, len(soakMix))
	for i, m := range soakMix {
		weights[i] = m.Weight
	}
	cycle := mixCycle(weights)
	if len(cycle) != 10 {
		t.Fatalf("cycle %v: want 10 calls", cycle)
	}
	// Any 5 calls in a row, across the cycle's end too, are half the mix.
	for start := range cycle {
		counts := make([]int, len(weights))
		for k := range 5 {
			counts[cycle[(start+k)%len(cycle)]]++
		}
		for i, c := range counts {
			if 2*c != weights[i] {
				t.Errorf("cycle %v: the 5 calls from %d hold path %d %d times, want %d", cycle, start, i, c, weights[i]/2)
			}
		}
	}
	if got := mixCycle([]int{3, 0, 1}); !slices.Equal(got, []int{0, 0, 2, 0}) && !slices.Equal(got, []int{0, 2, 0, 0}) {
		t.Errorf("mixCycle(3, 0, 1) = %v: want three 0s and one 2, spread", got)
	}
	if got := mixCycle([]int{1}); !slices.Equal(got, []int{0}) {
		t.Errorf("mixCycle(1) = %v", got)
	}
}

func TestPacer(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	p := &pacer{start: t0, rate: 100}
	for i := range 5 {
		if got, want := p.due(t0), t0.Add(time.Duration(i)*10*time.Millisecond); !got.Equal(want) {
			t.Errorf("slot %d due at %v, want %v", i, got.Sub(t0), want.Sub(t0))
		}
	}
	// 3 s later the next slot (50 ms) is 2.95 s overdue: the slots more
	// than 1 s overdue are skipped.
	now := t0.Add(3 * time.Second)
	at := p.due(now)
	if lag := now.Sub(at); lag > maxLag || lag < maxLag-10*time.Millisecond {
		t.Errorf("after a stall, the next call is %v overdue, want just under %v", lag, maxLag)
	}
	if late := p.lateCalls(); late < 194 || late > 196 {
		t.Errorf("%d calls late, want about 195 (1.95 s at 100/s)", late)
	}
	if got, want := p.due(now), at.Add(10*time.Millisecond); got.Sub(want).Abs() > time.Microsecond {
		t.Errorf("then the next is due at %v, want %v: no burst beyond the schedule", got.Sub(t0), want.Sub(t0))
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if p50, p99 := percentile(ds, 0.5), percentile(ds, 0.99); p50 != 50*time.Millisecond || p99 != 99*time.Millisecond {
		t.Errorf("p50 %v, p99 %v of 1..100 ms", p50, p99)
	}
	if percentile(nil, 0.5) != 0 || percentile([]time.Duration{7}, 0.99) != 7 {
		t.Error("percentile of none or one")
	}
}

// metricsText is a /metrics as the gateway serves it, cut short.
const metricsText = `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 101
# HELP go_memstats_heap_alloc_bytes Number of heap bytes allocated and currently in use.
# TYPE go_memstats_heap_alloc_bytes gauge
go_memstats_heap_alloc_bytes 1.1236864e+07
# HELP go_memstats_heap_inuse_bytes Number of heap bytes that are in use.
# TYPE go_memstats_heap_inuse_bytes gauge
go_memstats_heap_inuse_bytes 1.1730944e+07
# HELP go_memstats_next_gc_bytes Number of heap bytes when next garbage collection will take place.
# TYPE go_memstats_next_gc_bytes gauge
go_memstats_next_gc_bytes 2.4637392e+07
go_memstats_heap_inuse_bytes_extra 5
# TYPE custodian_sessions_ended_total counter
custodian_sessions_ended_total{custodian_reason="signed_out",otel_scope_name="custodian"} 30
custodian_sessions_ended_total{custodian_reason="a } b {",otel_scope_name="custodian"} 2 1764720000000
custodian_sessions_started_total{otel_scope_name="custodian"} 33
rpc_server_call_duration_seconds_count{rpc_method="acme.storefront.v1.AccountService/GetOrder"} 1234
`

func TestParseMetrics(t *testing.T) {
	got, err := parseMetrics([]byte(metricsText), soakMetrics)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"go_goroutines":                    101,
		"go_memstats_heap_alloc_bytes":     11236864,
		"go_memstats_heap_inuse_bytes":     11730944,
		"go_memstats_next_gc_bytes":        24637392,
		"custodian_sessions_ended_total":   32,
		"custodian_sessions_started_total": 33,
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %v, want %v", name, got[name], v)
		}
	}
	for _, bad := range []string{
		"go_goroutines many\n",
		"go_goroutines\n",
		`go_goroutines{a="b" 3` + "\n",
	} {
		if _, err := parseMetrics([]byte(bad), soakMetrics); err == nil {
			t.Errorf("parseMetrics(%q): no error", bad)
		}
	}
	if got, err := parseMetrics([]byte("other_metric{x=\"1\"} nope\n"), soakMetrics); err != nil || len(got) != 0 {
		t.Errorf("a series not asked for is not read: %v, %v", got, err)
	}
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tcustodian\nVmPeak:\t 1262504 kB\nVmHWM:\t   61320 kB\nVmRSS:\t   56376 kB\nRssAnon:\t   38696 kB\n"
	if got, err := parseVmRSS([]byte(status)); err != nil || got != 56376*1024 {
		t.Errorf("parseVmRSS: %d, %v; want %d", got, err, 56376*1024)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\t 12 MB\n", "VmRSS:\t x kB\n"} {
		if _, err := parseVmRSS([]byte(bad)); err == nil {
			t.Errorf("parseVmRSS(%q): no error", bad)
		}
	}
	self, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc:", err)
	}
	if got, err := parseVmRSS(self); err != nil || got < 1<<20 {
		t.Errorf("this test's own VmRSS: %d, %v", got, err)
	}
}

func TestNewSoakSample(t *testing.T) {
	start := time.Now()
	metrics := func(goroutines, started, ended float64) map[string]float64 {
		return map[string]float64{"go_goroutines": goroutines, "go_memstats_next_gc_bytes": 4 << 20,
			"custodian_sessions_started_total": started, "custodian_sessions_ended_total": ended}
	}
	prev := gatewayState{at: start.Add(10 * time.Second), metrics: metrics(90, 5, 4), rss: 50 << 20, ticks: 1000}
	now := gatewayState{at: start.Add(20 * time.Second), metrics: metrics(101, 12, 10), rss: 51 << 20, ticks: 1600}
	s := newSoakSample(start, prev, now,
		counters{calls: 1000, errors: 1, late: 0, logins: 5, logouts: 4},
		counters{calls: 14000, errors: 3, late: 7, logins: 10, logouts: 9},
		[]time.Duration{time.Millisecond, 3 * time.Millisecond}, 100)
	want := soakSample{
		ElapsedSeconds: 20, Calls: 13000, Rate: 1300, Errors: 2, Late: 7, P50Ms: 1, P99Ms: 3,
		TotalErrors: 3, Logins: 10, Logouts: 9, HeapGoal: 4 << 20, Goroutines: 101, RSS: 51 << 20,
		CPUs: 0.6, CPUMicrosPerCall: 600 * 1e6 / 100 / 13000.0, SessionsStarted: 12, SessionsEnded: 10,
	}
	if math.Abs(s.CPUs-want.CPUs) > 1e-9 || math.Abs(s.Rate-want.Rate) > 1e-9 || math.Abs(s.CPUMicrosPerCall-want.CPUMicrosPerCall) > 1e-9 {
		t.Errorf("rate %v, CPUs %v, µs/call %v; want %v, %v, %v", s.Rate, s.CPUs, s.CPUMicrosPerCall, want.Rate, want.CPUs, want.CPUMicrosPerCall)
	}
	s.Rate, s.CPUs, s.CPUMicrosPerCall = want.Rate, want.CPUs, want.CPUMicrosPerCall
	if s != want {
		t.Errorf("sample\n%+v\nwant\n%+v", s, want)
	}
	if s.liveSessions() != 2 {
		t.Errorf("live sessions %d, want 2", s.liveSessions())
	}
	// The first sample, before the load, has no interval.
	first := newSoakSample(start, gatewayState{}, gatewayState{at: start, metrics: metrics(50, 0, 0)}, counters{}, counters{}, nil, 100)
	if first.Rate != 0 || first.CPUs != 0 || first.ElapsedSeconds != 0 || first.Goroutines != 50 {
		t.Errorf("first sample %+v", first)
	}
}

func TestCurve(t *testing.T) {
	// A sample every 10 s and a little: 10.03 s apart.
	var samples []soakSample
	for i := range 180 {
		samples = append(samples, soakSample{ElapsedSeconds: float64(i) * 10.03, Calls: int64(i)})
	}
	rows := curve(samples, 30*time.Minute)
	if len(rows) != 31 { // 0, 1:00 … 29:00 and the last, at 29:55
		t.Fatalf("%d rows, want 31", len(rows))
	}
	for m, r := range rows[:30] {
		if d := math.Abs(r.ElapsedSeconds - float64(60*m)); d > 5.1 {
			t.Errorf("row %d at %.2f s, %.2f s from minute %d", m, r.ElapsedSeconds, d, m)
		}
	}
	if rows[30] != samples[179] {
		t.Errorf("the last row is not the last sample: %+v", rows[30])
	}
	if rows := curve(samples[:13], 2*time.Minute); len(rows) != 13 {
		t.Errorf("a 2-minute soak shows %d of its 13 samples, want all", len(rows))
	}
	// Stopped after 5:30 of 30 minutes: every minute, then the last.
	rows = curve(samples[:34], 30*time.Minute)
	var at []float64
	for _, r := range rows {
		at = append(at, math.Round(r.ElapsedSeconds))
	}
	if want := []float64{0, 60, 120, 181, 241, 301, 331}; !slices.Equal(at, want) {
		t.Errorf("rows at %v s, want %v", at, want)
	}
	if rows := curve(nil, time.Hour); len(rows) != 0 {
		t.Errorf("no samples: %v", rows)
	}
}

func TestSoakCallDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Cookie") {
		case sessionCookie + "=good":
			io.WriteString(w, `{"signedIn":true,"user":{"subject":"bob"}}`)
		case sessionCookie + "=ended":
			io.WriteString(w, `{"endReason":"SESSION_END_REASON_SIGNED_OUT"}`)
		default:
			http.Error(w, `{"code":"unauthenticated"}`, http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	p, _ := pathByKey("session")
	base := soakCall{path: p, url: srv.URL, header: http.Header{"Cookie": {sessionCookie + "=alice"}, "X-Csrf": {"1"}}, check: p.Check}
	ctx, client := context.Background(), srv.Client()
	for _, tt := range []struct {
		name string
		call soakCall
		ok   bool
	}{
		{"signed in as bob", base.withSession("good", 0, sessionOf("bob")), true},
		{"signed in, not as alice", base.withSession("good", 0, sessionOf("alice")), false},
		{"signed out, as wanted", base.withSession("ended", 0, signedOut), true},
		{"signed in, not out", base.withSession("good", 0, signedOut), false},
		{"401, as wanted", base.withSession("nobody", http.StatusUnauthorized, nil), true},
		{"401, not 200", base.withSession("nobody", 0, nil), false},
		{"200, not 401", base.withSession("good", http.StatusUnauthorized, nil), false},
		{"alice's cookie: unknown here", base, false},
	} {
		if err := tt.call.do(ctx, client); (err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	if got := base.header.Get("Cookie"); got != sessionCookie+"=alice" {
		t.Errorf("withSession changed the original's cookie: %s", got)
	}
}

func TestCheckSoak(t *testing.T) {
	o, err := parseFlags([]string{"--soak", "30m"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.soak != 30*time.Minute || o.soakLoad != 0.5 || o.soakSample != 10*time.Second || !slices.Equal(o.modes, []string{modeCanned}) {
		t.Errorf("--soak 30m: %+v", o)
	}
	if o, err := parseFlags(nil, io.Discard); err != nil || o.soak != 0 {
		t.Errorf("no soak by default: %v, %v", o.soak, err)
	}
	if _, err := parseFlags([]string{"--soak", "1m", "--backends", "demo", "--telemetry", "on", "--soak-load", "1", "--soak-sample", "10s", "--profile", "/tmp/x"}, io.Discard); err != nil {
		t.Errorf("a 1-minute soak of demo backends with telemetry on: %v", err)
	}
	for _, args := range [][]string{
		{"--soak", "59s"},
		{"--soak", "-1m"},
		{"--soak", "30m", "--backends", "both"},
		{"--soak", "30m", "--telemetry", "both"},
		{"--soak", "30m", "--smoke"},
		{"--soak", "30m", "--soak-load", "0"},
		{"--soak", "30m", "--soak-load", "1.5"},
		{"--soak", "30m", "--soak-sample", "500ms"},
		{"--soak", "1m", "--soak-sample", "11s"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q): no error", args)
		}
	}
}

// TestWriteSoakMarkdown writes a report with a table, a verdict and
// errors, and one with nothing gathered (stopped during the peak).
func TestWriteSoakMarkdown(t *testing.T) {
	samples := soakSeries(2*time.Minute, 10*time.Second, constant(25<<20), constant(60<<20), constant(100))
	rep := &soakReport{
		Backends: modeCanned, Telemetry: telemetryOff, DurationSeconds: 120, RanSeconds: 120, SampleSeconds: 10,
		Mix: soakMix, Workers: 32, PeakRate: 2600, Load: 0.5, TargetRate: 1300, AchievedRate: 1299,
		Calls: 155880, Errors: 1, ErrorTexts: []string{"at 1m3s: order: 502 Bad Gateway, want 200"},
		Samples: samples, Verdict: judgeSoak(samples, 2*time.Minute),
	}
	var buf bytes.Buffer
	writeSoakMarkdown(&buf, rep)
	out := buf.String()
	for _, want := range []string{
		"| 0:00 | – | – | – | 0 | 12.5 MiB | 25.0 MiB | 60.0 MiB | 100 | – | – | 0 |",
		"| 2:00 |",
		"Verdict: **flat**, on the 10 samples after the warm-up (the first 24s)",
		"| heap goal | 25.0 MiB | +0.0 MiB (+0.0 %) | 2.5 MiB | 25.0 MiB → 25.0 MiB | flat |",
		"| goroutines | 100 | +0 (+0.0 %) | 20 | 100 → 100 | flat |",
		"- at 1m3s: order: 502 Bad Gateway",
		"**1 errors**",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n| "); n != 1+13+1+4 { // header, 13 samples; header, 4 trends
		t.Errorf("%d table rows, want 19:\n%s", n, out)
	}
	buf.Reset()
	writeSoakMarkdown(&buf, &soakReport{Backends: modeCanned, DurationSeconds: 1800, Interrupted: true})
	if !strings.Contains(buf.String(), "**stopped after 0s**") || !strings.Contains(buf.String(), "It stopped before the peak was measured.") {
		t.Errorf("a soak stopped before it started:\n%s", buf.String())
	}
	// Stopped after one sample past the warm-up.
	rep.Samples = samples[:4]
	rep.Verdict = judgeSoak(rep.Samples, 2*time.Minute)
	buf.Reset()
	writeSoakMarkdown(&buf, rep)
	if !strings.Contains(buf.String(), "Verdict: **not judged**: 1 sample(s) after the warm-up (the first 24s), fewer than 3.") {
		t.Errorf("a soak stopped early:\n%s", buf.String())
	}
}
