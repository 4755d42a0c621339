package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// runResult is one measured wrk run.
type runResult struct {
	Round int    `json:"round"`
	Path  string `json:"path"`
	// Telemetry is the gateway's telemetry variant (--telemetry).
	Telemetry      string  `json:"telemetry"`
	Label          string  `json:"label"`
	Requests       int64   `json:"requests"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	RPS            float64 `json:"requests_per_second"`
	P50Ms          float64 `json:"p50_ms"`
	P99Ms          float64 `json:"p99_ms"`
	Non2xx         int64   `json:"non_2xx"`
	SocketErrors   int64   `json:"socket_errors"`
	// CPUProcess is the process whose CPU time is counted: custodian, or
	// custodian-demo for the floor, bench-floor for the library floor.
	CPUProcess string `json:"cpu_process"`
	// CPUTicks is its utime+stime over the run, in clock ticks.
	CPUTicks int64 `json:"cpu_ticks"`
	// CPUMicrosPerCall is CPUTicks in microseconds over Requests.
	CPUMicrosPerCall float64 `json:"cpu_us_per_call"`
	// OtherCPUs is how many CPUs the rest of the machine kept busy on
	// average during the run: processes other than the gateway,
	// custodian-demo and wrk, and hypervisor steal. Near 0: the run had the
	// machine to itself.
	OtherCPUs float64 `json:"other_cpus"`
	// CannedForwarded is how many requests the canned backends forwarded to
	// the demo backends during the run (canned mode only): 0 when every
	// backend call was answered from memory.
	CannedForwarded *int64 `json:"canned_forwarded,omitempty"`
	// Wrk is wrk's output.
	Wrk string `json:"wrk"`
}

// newRunResult records a measured run of p: wrk's result and output, and
// the ticks of CPU time process used over it.
func newRunResult(p benchPath, res wrkResult, raw, process string, ticks, ticksPerSecond int64) runResult {
	r := runResult{
		Path:           p.Key,
		Label:          p.Label,
		Requests:       res.Requests,
		ElapsedSeconds: res.Elapsed.Seconds(),
		RPS:            res.RPS,
		P50Ms:          ms(res.P50),
		P99Ms:          ms(res.P99),
		Non2xx:         res.Non2xx,
		SocketErrors:   res.SocketErrors.Total(),
		CPUProcess:     process,
		CPUTicks:       ticks,
		Wrk:            raw,
	}
	if res.Requests > 0 {
		r.CPUMicrosPerCall = float64(ticks) * 1e6 / float64(ticksPerSecond) / float64(res.Requests)
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summaryLine is the run in one line, for progress.
func (r runResult) summaryLine() string {
	return fmt.Sprintf("%8.0f req/s  p50 %7.2f ms  p99 %7.2f ms  non-2xx %d  socket errors %d  %s CPU %.1f µs/call  (others: %.2f CPUs)",
		r.RPS, r.P50Ms, r.P99Ms, r.Non2xx, r.SocketErrors, r.CPUProcess, r.CPUMicrosPerCall, r.OtherCPUs)
}

// pathSummary is one row of the table: a path's medians over its runs,
// and its failures summed.
type pathSummary struct {
	Path             string  `json:"path"`
	Telemetry        string  `json:"telemetry"`
	Label            string  `json:"label"`
	Runs             int     `json:"runs"`
	Requests         int64   `json:"requests"` // summed
	RPS              float64 `json:"requests_per_second"`
	P50Ms            float64 `json:"p50_ms"`
	P99Ms            float64 `json:"p99_ms"`
	Non2xx           int64   `json:"non_2xx"`       // summed
	SocketErrors     int64   `json:"socket_errors"` // summed
	CPUProcess       string  `json:"cpu_process"`
	CPUMicrosPerCall float64 `json:"cpu_us_per_call"`
	CannedForwarded  int64   `json:"canned_forwarded"` // summed
	// CheckError is why the path was not measured: its first answer did
	// not look right.
	CheckError string `json:"check_error,omitempty"`
}

// summarize returns a row per path and telemetry variant, in the order of
// paths, then of variants.
func summarize(paths []benchPath, variants []string, runs []runResult, checkErrors map[string]string) []pathSummary {
	var rows []pathSummary
	for _, p := range paths {
		for _, v := range variants {
			rows = append(rows, summarizeOne(p, v, runs, checkErrors[checkKey(p.Key, v, len(variants) > 1)]))
		}
	}
	return rows
}

// summarizeOne returns the row of path p with telemetry variant.
func summarizeOne(p benchPath, variant string, runs []runResult, checkError string) pathSummary {
	row := pathSummary{Path: p.Key, Telemetry: variant, Label: p.Label, CheckError: checkError}
	var rps, p50, p99, cpu []float64
	for _, r := range runs {
		if r.Path != p.Key || r.Telemetry != variant {
			continue
		}
		row.Runs++
		row.Requests += r.Requests
		row.Non2xx += r.Non2xx
		row.SocketErrors += r.SocketErrors
		row.CPUProcess = r.CPUProcess
		if r.CannedForwarded != nil {
			row.CannedForwarded += *r.CannedForwarded
		}
		rps, p50, p99, cpu = append(rps, r.RPS), append(p50, r.P50Ms), append(p99, r.P99Ms), append(cpu, r.CPUMicrosPerCall)
	}
	row.RPS, row.P50Ms, row.P99Ms, row.CPUMicrosPerCall = median(rps), median(p50), median(p99), median(cpu)
	return row
}

// median returns the median of xs, the mean of the middle two for an even
// count, 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// worldReport is everything measured in one backend mode.
type worldReport struct {
	Backends string `json:"backends"`
	// Variants are the telemetry variants measured, in the order each
	// round runs them.
	Variants    []string          `json:"telemetry_variants"`
	Started     string            `json:"started"`
	CPUs        int               `json:"cpus"`
	ClockTicks  int64             `json:"clock_ticks"`
	LoadBefore  string            `json:"load_average_before"`
	LoadAfter   string            `json:"load_average_after"`
	CheckErrors map[string]string `json:"check_errors,omitempty"`
	Summary     []pathSummary     `json:"summary"`
	Runs        []runResult       `json:"runs"`
	// Telemetry is what the on variant's gateways exported and served;
	// nil unless on was measured.
	Telemetry *telemetryReport `json:"telemetry,omitempty"`
}

// showTelemetry says whether rep's tables name the telemetry variant: not
// for a run of off alone, which reads as every run before --telemetry.
func (rep worldReport) showTelemetry() bool {
	return len(rep.Variants) > 1 || (len(rep.Variants) == 1 && rep.Variants[0] != telemetryOff)
}

// problems lists what went wrong. A wrong first answer fails any run;
// failed calls and paths without a completed request fail a smoke run and
// are warnings otherwise; requests forwarded by canned backends while
// measured (the run then measured demo backends too) are warnings.
func (rep worldReport) problems(smoke bool) (failures, warnings []string) {
	for _, row := range rep.Summary {
		prefix := fmt.Sprintf("[%s] %s: ", rep.Backends, row.Label)
		if rep.showTelemetry() {
			prefix = fmt.Sprintf("[%s, telemetry %s] %s: ", rep.Backends, row.Telemetry, row.Label)
		}
		if row.CheckError != "" {
			failures = append(failures, prefix+row.CheckError)
			continue
		}
		var calls []string
		if row.Non2xx > 0 || row.SocketErrors > 0 {
			calls = append(calls, prefix+fmt.Sprintf("%d non-2xx answers and %d socket errors", row.Non2xx, row.SocketErrors))
		}
		if row.Requests == 0 {
			calls = append(calls, prefix+"no request completed")
		}
		if smoke {
			failures = append(failures, calls...)
		} else {
			warnings = append(warnings, calls...)
		}
		if row.CannedForwarded > 0 {
			warnings = append(warnings, prefix+fmt.Sprintf("the canned backends forwarded %d requests while measured", row.CannedForwarded))
		}
	}
	if t := rep.Telemetry; t != nil {
		prefix := fmt.Sprintf("[%s, telemetry on] ", rep.Backends)
		switch {
		case t.Sink.Spans == 0:
			failures = append(failures, prefix+"the trace sink received no span: telemetry on measured no trace export")
		case t.Sink.Rejected > 0:
			failures = append(failures, prefix+fmt.Sprintf("the trace sink could not read %d export requests", t.Sink.Rejected))
		case t.GatewayCalls >= 1000 && (t.tracesPerCall() < t.SampleRatio/2 || t.tracesPerCall() > t.SampleRatio*2):
			warnings = append(warnings, prefix+fmt.Sprintf("the sink received %d traces for %d calls (%.3f a call), far from the sample ratio %g", t.Sink.Traces, t.GatewayCalls, t.tracesPerCall(), t.SampleRatio))
		}
		if t.Scrapes == 0 {
			failures = append(failures, prefix+"the admin listener was never scraped")
		}
	}
	return failures, warnings
}

// writeMarkdown writes rep's table.
func writeMarkdown(w io.Writer, rep worldReport, o options) {
	others := make([]float64, len(rep.Runs))
	for i, r := range rep.Runs {
		others[i] = r.OtherCPUs
	}
	fmt.Fprintf(w, "Backends: **%s**. %d round(s) × %v per path, wrk -t%d -c%d, %d CPUs, %s. "+
		"Other processes kept %.2f CPUs busy during a measured run (median; at most %.2f).\n\n",
		rep.Backends, o.rounds, o.duration, wrkThreads, wrkConnections, rep.CPUs, rep.Started,
		median(others), slices.Max(append(others, 0)))
	show := rep.showTelemetry()
	if show {
		fmt.Fprintf(w, "Telemetry variants, each measured once per round on a gateway started for it, their order turning from round to round: %s.\n\n", describeVariants(rep.Variants))
		fmt.Fprintln(w, "| path | telemetry | req/s | p50 | p99 | non-2xx | gateway CPU µs/call |")
		fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|")
	} else {
		fmt.Fprintln(w, "| path | req/s | p50 | p99 | non-2xx | gateway CPU µs/call |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	}
	floor, libfloor := false, false
	for _, row := range rep.Summary {
		label := row.Label
		if show {
			label += " | " + row.Telemetry
		}
		if row.Runs == 0 {
			fmt.Fprintf(w, "| %s | – | – | – | – | – |\n", label)
			continue
		}
		failed := fmt.Sprint(row.Non2xx)
		if row.SocketErrors > 0 {
			failed += fmt.Sprintf(" (+%d socket errors)", row.SocketErrors)
		}
		cpu := fmt.Sprintf("%.1f", row.CPUMicrosPerCall)
		switch row.CPUProcess {
		case "custodian":
		case "bench-floor":
			cpu += " ²"
			libfloor = true
		default:
			cpu += " ¹"
			floor = true
		}
		fmt.Fprintf(w, "| %s | %s | %.2f ms | %.2f ms | %s | %s |\n",
			label, thousands(row.RPS), row.P50Ms, row.P99Ms, failed, cpu)
	}
	var notes []string
	if floor {
		notes = append(notes, "¹ not the gateway's: the CPU of custodian-demo, where the "+rep.Backends+" backend runs.")
	}
	if libfloor {
		notes = append(notes, "² not the gateway's: the CPU of bench-floor, the least a gateway on connect-go does for the call: handler, backend clients forwarding the bearer, field copies (internal/benchfloor).")
	}
	for _, row := range rep.Summary {
		if row.CheckError != "" {
			what := row.Label
			if show {
				what += " (telemetry " + row.Telemetry + ")"
			}
			notes = append(notes, fmt.Sprintf("%s was not measured in every round: %s", what, firstLine(row.CheckError)))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "\n%s\n", strings.Join(notes, "\n"))
	}
	writeComparison(w, rep)
	if t := rep.Telemetry; t != nil {
		fmt.Fprintf(w, "\nTelemetry on: the harness's OTLP/HTTP sink received %s spans in %s traces (%s export requests, %.1f MiB of protobuf) "+
			"for the %s browser-facing calls the on gateways answered, checks and warm-ups included: %.3f traces a call at a sample ratio of %g. "+
			"Their /metrics was scraped %d times (the last: %d series, %.0f KiB).\n",
			thousands(float64(t.Sink.Spans)), thousands(float64(t.Sink.Traces)), thousands(float64(t.Sink.Requests)), float64(t.Sink.Bytes)/(1<<20),
			thousands(float64(t.GatewayCalls)), t.tracesPerCall(), t.SampleRatio, t.Scrapes, t.ScrapeSeries, float64(t.ScrapeBytes)/1024)
	}
}

// describeVariants says what each telemetry variant is.
func describeVariants(variants []string) string {
	var parts []string
	for _, v := range variants {
		switch v {
		case telemetryOff:
			parts = append(parts, "**off** (the default: access log on, no trace exporter, no admin listener)")
		case telemetryOn:
			parts = append(parts, "**on** (traces exported with OTLP/HTTP to a sink in the harness, 10 % of new traces sampled; /metrics on an admin listener, scraped once per measured run; access log on)")
		case telemetryNoLog:
			parts = append(parts, "**nolog** (off with telemetry.access_log: false)")
		}
	}
	return strings.Join(parts, ", ")
}

// writeComparison writes, when off was measured with other variants, each
// other variant's medians beside off's, and their ratio.
func writeComparison(w io.Writer, rep worldReport) {
	if !slices.Contains(rep.Variants, telemetryOff) || len(rep.Variants) < 2 {
		return
	}
	row := func(path, variant string) (pathSummary, bool) {
		for _, r := range rep.Summary {
			if r.Path == path && r.Telemetry == variant && r.Runs > 0 {
				return r, true
			}
		}
		return pathSummary{}, false
	}
	cell := func(off, other float64, format string) string {
		if off == 0 {
			return "–"
		}
		return fmt.Sprintf(format+" → "+format+" (×%.3f)", off, other, other/off)
	}
	for _, variant := range rep.Variants {
		if variant == telemetryOff {
			continue
		}
		fmt.Fprintf(w, "\n%s against off (medians; off → %s, and the ratio %s ÷ off):\n\n", variant, variant, variant)
		fmt.Fprintln(w, "| path | req/s | gateway CPU µs/call | p50 ms | p99 ms |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
		for _, off := range rep.Summary {
			if off.Telemetry != telemetryOff || off.Runs == 0 {
				continue
			}
			other, ok := row(off.Path, variant)
			if !ok {
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", off.Label,
				cell(off.RPS, other.RPS, "%.0f"), cell(off.CPUMicrosPerCall, other.CPUMicrosPerCall, "%.1f"),
				cell(off.P50Ms, other.P50Ms, "%.2f"), cell(off.P99Ms, other.P99Ms, "%.2f"))
		}
	}
}

// thousands formats a rate without decimals, thousands separated.
func thousands(x float64) string {
	s := fmt.Sprintf("%.0f", x)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// writeJSON writes every run's raw results to path.
func writeJSON(path string, o options, reports []worldReport) error {
	doc := struct {
		Options struct {
			Backends        []string `json:"backends"`
			DurationSeconds int      `json:"duration_seconds"`
			Rounds          int      `json:"rounds"`
			Paths           []string `json:"paths"`
			Smoke           bool     `json:"smoke"`
			Routes          bool     `json:"routes"`
			Telemetry       []string `json:"telemetry"`
			Wrk             string   `json:"wrk"`
		} `json:"options"`
		Worlds []worldReport `json:"worlds"`
	}{Worlds: reports}
	doc.Options.Backends = o.modes
	doc.Options.DurationSeconds = int(o.duration / time.Second)
	doc.Options.Rounds, doc.Options.Smoke, doc.Options.Routes = o.rounds, o.smoke, o.routes
	doc.Options.Telemetry = o.telemetry
	for _, p := range o.paths {
		doc.Options.Paths = append(doc.Options.Paths, p.Key)
	}
	doc.Options.Wrk = fmt.Sprintf("wrk -t%d -c%d -d%ds --latency", wrkThreads, wrkConnections, doc.Options.DurationSeconds)
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("results as JSON: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the results: %w", err)
	}
	return nil
}
