package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"
)

// soakReport is everything a soak gathered.
type soakReport struct {
	Backends  string `json:"backends"`
	Telemetry string `json:"telemetry"`
	Started   string `json:"started"`
	CPUs      int    `json:"cpus"`
	// DurationSeconds is the soak asked for, RanSeconds how long it ran.
	DurationSeconds float64    `json:"duration_seconds"`
	RanSeconds      float64    `json:"ran_seconds"`
	SampleSeconds   float64    `json:"sample_seconds"`
	Interrupted     bool       `json:"interrupted,omitempty"`
	Workers         int        `json:"connections"`
	Mix             []mixEntry `json:"mix"`
	// PeakRate is the mix's calls a second answered right with the
	// generator unthrottled; TargetRate is Load of it, the soak's rate;
	// AchievedRate the soak's calls a second.
	PeakRate       float64  `json:"peak_calls_per_second"`
	PeakErrors     int64    `json:"peak_errors"`
	PeakErrorTexts []string `json:"peak_error_texts,omitempty"`
	Load           float64  `json:"load"`
	TargetRate     float64  `json:"target_calls_per_second"`
	AchievedRate   float64  `json:"achieved_calls_per_second"`
	// The soak's totals: the mix's calls, every error (the mix's and the
	// sessions'), calls skipped as late, sign-ins and sign-outs.
	Calls      int64    `json:"calls"`
	Errors     int64    `json:"errors"`
	ErrorTexts []string `json:"error_texts,omitempty"`
	Late       int64    `json:"late"`
	Logins     int64    `json:"logins"`
	Logouts    int64    `json:"logouts"`
	LoadBefore string   `json:"load_average_before"`
	LoadAfter  string   `json:"load_average_after"`
	// Samples are every sample, the first one taken before the load.
	Samples []soakSample `json:"samples"`
	// HeapProfiles are the gateway's heap profiles taken with --profile:
	// at the end of the warm-up and at the end.
	HeapProfiles []string    `json:"heap_profiles,omitempty"`
	Verdict      soakVerdict `json:"verdict"`
}

// Flatness: after the warm-up, the least-squares line through a metric's
// samples may rise across the rest of the run by less than the larger of
// an absolute and a relative limit (relative to the metric's median after
// the warm-up). A fall does not fail: it is not a leak.
const (
	// warmUpShare is the share of the soak left out of the verdict: the
	// heap, caches and connection pools fill, and the runtime settles.
	warmUpShare = 0.2
	// minTrendSamples is the fewest samples after the warm-up to judge.
	minTrendSamples = 3
)

// trendRule is how one metric is judged.
type trendRule struct {
	metric string
	bytes  bool // shown in MiB
	// judged: the verdict depends on it; otherwise it is only shown.
	judged bool
	// absolute and relative: the rise must stay under the larger of
	// absolute and relative × the median.
	absolute, relative float64
	value              func(soakSample) float64
}

// trendRules are the metrics judged, and their limits: the heap goal and
// the resident memory may rise by less than 10 % of their level (or
// 1 MiB), goroutines by less than 20 (or 10 %). The heap is judged by its
// goal, the live heap as the last GC found it times 1 + GOGC/100 (five times
// with the gateway's default GOGC=400): the heap in use saws between
// collections, by up to that factor,
// and a sample lands anywhere on the tooth, so it is only shown.
// Goroutines follow the calls in flight, which on a busy machine swing
// the count by ±25 from one sample to the next; a leak tied to calls,
// connections or sign-ins adds hundreds over a 30-minute soak.
var trendRules = []trendRule{
	{metric: "heap goal", bytes: true, judged: true, absolute: 1 << 20, relative: 0.10, value: func(s soakSample) float64 { return float64(s.HeapGoal) }},
	{metric: "RSS", bytes: true, judged: true, absolute: 1 << 20, relative: 0.10, value: func(s soakSample) float64 { return float64(s.RSS) }},
	{metric: "goroutines", judged: true, absolute: 20, relative: 0.10, value: func(s soakSample) float64 { return float64(s.Goroutines) }},
	{metric: "heap in use", bytes: true, absolute: 1 << 20, relative: 0.10, value: func(s soakSample) float64 { return float64(s.HeapInuse) }},
}

// trend is one metric's course after the warm-up.
type trend struct {
	Metric string  `json:"metric"`
	Bytes  bool    `json:"bytes"`
	Judged bool    `json:"judged"`
	Median float64 `json:"median"`
	// Drift is the least-squares line's rise from the first sample after
	// the warm-up to the last.
	Drift float64 `json:"drift"`
	// FirstThird and LastThird are the medians of the first and the last
	// third of the samples after the warm-up.
	FirstThird float64 `json:"first_third_median"`
	LastThird  float64 `json:"last_third_median"`
	Limit      float64 `json:"limit"`
	Flat       bool    `json:"flat"`
}

// soakVerdict says whether the gateway's memory and goroutines stayed flat
// after the warm-up.
type soakVerdict struct {
	WarmUpSeconds float64 `json:"warm_up_seconds"`
	// Samples are those after the warm-up, the ones judged.
	Samples int     `json:"samples"`
	Trends  []trend `json:"trends"`
	Flat    bool    `json:"flat"`
}

// judgeSoak judges samples of a soak planned to last planned: the warm-up
// is its first warmUpShare, and always holds the first sample, taken
// before the load.
func judgeSoak(samples []soakSample, planned time.Duration) soakVerdict {
	v := soakVerdict{WarmUpSeconds: warmUpShare * planned.Seconds()}
	var after []soakSample
	for i, s := range samples {
		if i > 0 && s.ElapsedSeconds > v.WarmUpSeconds {
			after = append(after, s)
		}
	}
	v.Samples = len(after)
	if len(after) < minTrendSamples {
		return v
	}
	ts := make([]float64, len(after))
	for i, s := range after {
		ts[i] = s.ElapsedSeconds
	}
	v.Flat = true
	for _, r := range trendRules {
		ys := make([]float64, len(after))
		for i, s := range after {
			ys[i] = r.value(s)
		}
		t := judgeTrend(r, ts, ys)
		v.Trends = append(v.Trends, t)
		v.Flat = v.Flat && (t.Flat || !t.Judged)
	}
	return v
}

// judgeTrend judges the series ys, sampled at ts, by r.
func judgeTrend(r trendRule, ts, ys []float64) trend {
	t := trend{Metric: r.metric, Bytes: r.bytes, Judged: r.judged, Median: median(ys)}
	t.Drift = slope(ts, ys) * (ts[len(ts)-1] - ts[0])
	third := max(len(ys)/3, 1)
	t.FirstThird, t.LastThird = median(ys[:third]), median(ys[len(ys)-third:])
	t.Limit = max(r.absolute, r.relative*t.Median)
	t.Flat = t.Drift < t.Limit
	return t
}

// slope returns the least-squares slope of ys over xs, 0 when the xs do
// not vary.
func slope(xs, ys []float64) float64 {
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	n := float64(len(xs))
	mx, my = mx/n, my/n
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	if sxx == 0 {
		return 0
	}
	return sxy / sxx
}

// curveEveryMinute is the soak length above which the table shows one
// sample a minute instead of every sample.
const curveEveryMinute = 10 * time.Minute

// curve returns the table's rows: every sample of a soak up to
// curveEveryMinute long, else the sample closest to each whole minute;
// the first and the last sample always.
func curve(samples []soakSample, planned time.Duration) []soakSample {
	if len(samples) == 0 || planned <= curveEveryMinute {
		return samples
	}
	last := samples[len(samples)-1]
	rows := []soakSample{samples[0]}
	i := 0
	for m := 1; float64(m*60) <= last.ElapsedSeconds+30; m++ {
		at := float64(m * 60)
		for i+1 < len(samples) && math.Abs(samples[i+1].ElapsedSeconds-at) <= math.Abs(samples[i].ElapsedSeconds-at) {
			i++
		}
		if samples[i] != rows[len(rows)-1] {
			rows = append(rows, samples[i])
		}
	}
	if rows[len(rows)-1] != last {
		rows = append(rows, last)
	}
	return rows
}

// problems lists what fails the soak, and what only warns.
func (r *soakReport) problems() (failures, warnings []string) {
	prefix := fmt.Sprintf("[%s] soak: ", r.Backends)
	if r.PeakErrors > 0 {
		failures = append(failures, prefix+fmt.Sprintf("%d errors while finding the peak; the first: %s", r.PeakErrors, firstOf(r.PeakErrorTexts)))
	}
	if r.Errors > 0 {
		failures = append(failures, prefix+fmt.Sprintf("%d errors; the first: %s", r.Errors, firstOf(r.ErrorTexts)))
	}
	v := r.Verdict
	if v.Samples < minTrendSamples {
		failures = append(failures, prefix+fmt.Sprintf("%d samples after the warm-up, too few to judge (want %d)", v.Samples, minTrendSamples))
	}
	for _, t := range v.Trends {
		if t.Judged && !t.Flat {
			failures = append(failures, prefix+fmt.Sprintf("%s not flat: it rose by %s after the warm-up (limit %s), from %s to %s (medians of the first and last thirds)",
				t.Metric, t.format(t.Drift), t.format(t.Limit), t.format(t.FirstThird), t.format(t.LastThird)))
		}
	}
	if r.Late > 0 {
		warnings = append(warnings, prefix+fmt.Sprintf("%d calls skipped, more than %v behind the schedule: the generator could not hold the rate", r.Late, maxLag))
	}
	if r.TargetRate > 0 && r.AchievedRate < 0.95*r.TargetRate {
		warnings = append(warnings, prefix+fmt.Sprintf("achieved %.0f calls/s of the %.0f asked", r.AchievedRate, r.TargetRate))
	}
	return failures, warnings
}

func firstOf(texts []string) string {
	if len(texts) == 0 {
		return "(none kept)"
	}
	return firstLine(texts[0])
}

// format shows a value of t's metric.
func (t trend) format(x float64) string {
	if t.Bytes {
		return mib(x)
	}
	return fmt.Sprintf("%.0f", x)
}

func mib(bytes float64) string { return fmt.Sprintf("%.1f MiB", bytes/(1<<20)) }

// summaryLine is a sample in one line, for progress.
func (s soakSample) summaryLine() string {
	return fmt.Sprintf("%6.0f calls/s  p99 %6.2f ms  errors %d  heap %s (goal %s)  RSS %s  goroutines %d  CPU %.2f  sign-ins %d",
		s.Rate, s.P99Ms, s.TotalErrors, mib(float64(s.HeapInuse)), mib(float64(s.HeapGoal)), mib(float64(s.RSS)), s.Goroutines, s.CPUs, s.Logins)
}

// clock shows seconds as h:mm:ss or m:ss.
func clock(seconds float64) string {
	d := time.Duration(math.Round(seconds)) * time.Second
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

// writeSoakMarkdown writes the soak's report.
func writeSoakMarkdown(w io.Writer, r *soakReport) {
	planned := time.Duration(r.DurationSeconds * float64(time.Second))
	ran := time.Duration(r.RanSeconds * float64(time.Second)).Round(time.Second)
	fmt.Fprintf(w, "Soak: backends **%s**, telemetry %s, %v", r.Backends, r.Telemetry, planned)
	if r.Interrupted || ran < planned.Round(time.Second) {
		fmt.Fprintf(w, " (**stopped after %v**)", ran)
	}
	fmt.Fprintf(w, ", %d CPUs, %s; load average %s before, %s after.\n\n", r.CPUs, r.Started, r.LoadBefore, r.LoadAfter)
	if r.PeakRate == 0 {
		fmt.Fprintln(w, "It stopped before the peak was measured.")
		return
	}
	var mix []string
	for _, m := range r.Mix {
		p, _ := pathByKey(m.Key)
		mix = append(mix, fmt.Sprintf("%s %d %%", p.Label, m.Weight*10))
	}
	fmt.Fprintf(w, "Peak: %s calls/s answered right (the mix unthrottled from %d connections for %v; %d errors). "+
		"Soaked at %.0f %% of it: %s calls/s asked, %s achieved, paced from %d connections. "+
		"Mix: %s, with alice's session where it takes one; and every %v a session of alice or bob signed in through the login flow, "+
		"used (GetSession, GetDashboard), signed out (POST /auth/logout, then the provider's end-session) and checked signed out.\n\n",
		thousands(r.PeakRate), r.Workers, peakDuration, r.PeakErrors,
		r.Load*100, thousands(r.TargetRate), thousands(r.AchievedRate), r.Workers,
		strings.Join(mix, ", "), signInEvery)
	fmt.Fprintf(w, "Totals: %s calls, **%d errors**, %d late (skipped, over %v behind), %d sign-ins, %d sign-outs.\n\n",
		thousands(float64(r.Calls)), r.Errors, r.Late, maxLag, r.Logins, r.Logouts)

	if len(r.Samples) == 0 {
		fmt.Fprintln(w, "It stopped before the gateway was sampled.")
		return
	}
	rows := curve(r.Samples, planned)
	if len(rows) < len(r.Samples) {
		fmt.Fprintf(w, "The curve, one sample a minute (every %v in the JSON); the rates, latencies and CPU are the %v before each:\n\n", time.Duration(r.SampleSeconds*float64(time.Second)), time.Duration(r.SampleSeconds*float64(time.Second)))
	} else {
		fmt.Fprintf(w, "The curve, a sample every %v; the rates, latencies and CPU are the %v before each:\n\n", time.Duration(r.SampleSeconds*float64(time.Second)), time.Duration(r.SampleSeconds*float64(time.Second)))
	}
	fmt.Fprintln(w, "| time | calls/s | p50 | p99 | errors so far | heap in use | heap goal | RSS | goroutines | gateway CPUs | CPU µs/call | live sessions |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for i, s := range rows {
		load := "– | – | – "
		cpu := "– | –"
		if i > 0 {
			load = fmt.Sprintf("%s | %.2f ms | %.2f ms ", thousands(s.Rate), s.P50Ms, s.P99Ms)
			cpu = fmt.Sprintf("%.2f | %.1f", s.CPUs, s.CPUMicrosPerCall)
		}
		fmt.Fprintf(w, "| %s | %s| %d | %s | %s | %s | %d | %s | %d |\n",
			clock(s.ElapsedSeconds), load, s.TotalErrors, mib(float64(s.HeapInuse)), mib(float64(s.HeapGoal)), mib(float64(s.RSS)), s.Goroutines, cpu, s.liveSessions())
	}

	v := r.Verdict
	warmUp := time.Duration(v.WarmUpSeconds * float64(time.Second)).Round(time.Second)
	verdict := "**flat**"
	if !v.Flat {
		verdict = "**not flat**"
	}
	if v.Samples < minTrendSamples {
		fmt.Fprintf(w, "\nVerdict: **not judged**: %d sample(s) after the warm-up (the first %v), fewer than %d.\n", v.Samples, warmUp, minTrendSamples)
	} else {
		fmt.Fprintf(w, "\nVerdict: %s, on the %d samples after the warm-up (the first %v). "+
			"A metric is flat when the least-squares line through those samples rises across them by less than its limit.\n\n",
			verdict, v.Samples, warmUp)
	}
	if len(v.Trends) > 0 {
		fmt.Fprintln(w, "| metric | median | rise of the line | limit | first third → last third (medians) | |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---|")
		for _, t := range v.Trends {
			flat, limit := "flat", t.format(t.Limit)
			switch {
			case !t.Judged:
				flat, limit = "not judged: it saws between collections", "–"
			case !t.Flat:
				flat = "**not flat**"
			}
			pct := ""
			if t.Median != 0 {
				pct = fmt.Sprintf(" (%+.1f %%)", t.Drift/t.Median*100)
			}
			fmt.Fprintf(w, "| %s | %s | %s%s | %s | %s → %s | %s |\n",
				t.Metric, t.format(t.Median), sign(t.Drift)+t.format(math.Abs(t.Drift)), pct, limit, t.format(t.FirstThird), t.format(t.LastThird), flat)
		}
	}
	if len(r.HeapProfiles) > 0 {
		fmt.Fprintf(w, "\nHeap profiles of the gateway (compare with go tool pprof -base): %s.\n", strings.Join(r.HeapProfiles, ", "))
	}
	if len(r.ErrorTexts) > 0 || len(r.PeakErrorTexts) > 0 {
		fmt.Fprintf(w, "\nThe first errors:\n\n")
		for _, e := range r.PeakErrorTexts {
			fmt.Fprintf(w, "- peak, %s\n", firstLine(e))
		}
		for _, e := range r.ErrorTexts {
			fmt.Fprintf(w, "- %s\n", firstLine(e))
		}
	}
}

func sign(x float64) string {
	if x < 0 {
		return "-"
	}
	return "+"
}

// writeSoakJSON writes the soak's report, every sample included, to path.
func writeSoakJSON(path string, r *soakReport) error {
	data, err := json.MarshalIndent(struct {
		Soak *soakReport `json:"soak"`
	}{r}, "", "  ")
	if err != nil {
		return fmt.Errorf("the soak as JSON: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the soak's results: %w", err)
	}
	return nil
}
