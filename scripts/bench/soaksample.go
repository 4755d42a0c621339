package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// soakSample is the soak at one moment: the load over the interval since
// the previous sample, and the gateway's memory, goroutines and CPU.
type soakSample struct {
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	// Calls and Late are the mix's over the interval, Rate is Calls a
	// second; Errors are the interval's, the mix's and the sessions'.
	Calls  int64   `json:"calls"`
	Rate   float64 `json:"calls_per_second"`
	Errors int64   `json:"errors"`
	Late   int64   `json:"late"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	// TotalErrors is every error so far, the mix's and the sessions'.
	TotalErrors int64 `json:"total_errors"`
	Logins      int64 `json:"logins"`  // so far
	Logouts     int64 `json:"logouts"` // so far
	// The gateway's Go runtime, from its /metrics: go_memstats_heap_inuse_bytes,
	// go_memstats_heap_alloc_bytes, go_memstats_next_gc_bytes (the heap
	// size at which the next GC starts: the live heap at the last one
	// times 1 + GOGC/100, five with the gateway's default) and go_goroutines.
	HeapInuse  int64 `json:"heap_inuse_bytes"`
	HeapAlloc  int64 `json:"heap_alloc_bytes"`
	HeapGoal   int64 `json:"heap_goal_bytes"`
	Goroutines int64 `json:"goroutines"`
	// RSS is the gateway's resident memory, VmRSS of /proc/<pid>/status.
	RSS int64 `json:"rss_bytes"`
	// CPUs is how many CPUs the gateway kept busy over the interval, on
	// average; CPUMicrosPerCall its CPU time over the mix's calls.
	CPUs             float64 `json:"gateway_cpus"`
	CPUMicrosPerCall float64 `json:"gateway_cpu_us_per_call"`
	// The gateway's sessions counters: custodian_sessions_started_total,
	// and custodian_sessions_ended_total summed over its reasons.
	SessionsStarted int64 `json:"sessions_started"`
	SessionsEnded   int64 `json:"sessions_ended"`
}

// liveSessions is how many sessions the gateway started and has not ended.
func (s soakSample) liveSessions() int64 { return s.SessionsStarted - s.SessionsEnded }

// soakMetrics are the series a soak reads from /metrics; every series of
// a name is summed, whatever its labels.
var soakMetrics = []string{
	"go_memstats_heap_inuse_bytes",
	"go_memstats_heap_alloc_bytes",
	"go_memstats_next_gc_bytes",
	"go_goroutines",
	"custodian_sessions_started_total",
	"custodian_sessions_ended_total",
}

// soakRequired are the soakMetrics /metrics must have: the sessions'
// counters appear with their first event.
var soakRequired = soakMetrics[:4]

// gatewayState is what the sampler reads from the gateway at one moment.
type gatewayState struct {
	at      time.Time
	metrics map[string]float64
	rss     int64
	ticks   int64 // CPU time so far
}

// readGateway reads w's gateway: /metrics, VmRSS and CPU time.
func readGateway(ctx context.Context, w *world) (gatewayState, error) {
	st := gatewayState{at: time.Now()}
	body, err := getMetrics(ctx, w.gatewayAdmin)
	if err != nil {
		return st, err
	}
	if st.metrics, err = parseMetrics(body, soakMetrics); err != nil {
		return st, err
	}
	for _, name := range soakRequired {
		if _, ok := st.metrics[name]; !ok {
			return st, fmt.Errorf("/metrics has no %s", name)
		}
	}
	pid := w.gateway.pid()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, fmt.Errorf("the gateway's resident memory: %w", err)
	}
	if st.rss, err = parseVmRSS(status); err != nil {
		return st, fmt.Errorf("the gateway's resident memory: %w", err)
	}
	if st.ticks, err = cpuTicks(pid); err != nil {
		return st, err
	}
	return st, nil
}

// parseMetrics returns, for each of names found in a Prometheus text
// exposition, the sum of its series' values, whatever their labels.
func parseMetrics(body []byte, names []string) (map[string]float64, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	sums := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// name[{labels}] value [timestamp]; a label value may hold
		// spaces and braces, so the labels end at the last '}'.
		name, rest := line, ""
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				return nil, fmt.Errorf("/metrics: unclosed labels: %q", line)
			}
			name, rest = line[:i], line[j+1:]
		} else if i := strings.IndexAny(line, " \t"); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if !want[name] {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("/metrics: no value: %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("/metrics: %q: %w", line, err)
		}
		sums[name] += v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("/metrics: %w", err)
	}
	return sums, nil
}

// parseVmRSS returns the VmRSS line of a /proc/<pid>/status, in bytes.
func parseVmRSS(status []byte) (int64, error) {
	for line := range strings.Lines(string(status)) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("VmRSS line %q: want a number of kB", strings.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS: %w", err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("no VmRSS line")
}

// counters are the load's running totals at one moment.
type counters struct {
	calls, errors, late, logins, logouts int64
}

// newSoakSample is the sample at now of the interval from prev to now, of
// the gateway (CPU clock ticks a second: ticks) and the load's counters.
func newSoakSample(start time.Time, prev, now gatewayState, was, is counters, lat []time.Duration, ticks int64) soakSample {
	m := now.metrics
	s := soakSample{
		ElapsedSeconds:  now.at.Sub(start).Seconds(),
		Calls:           is.calls - was.calls,
		Errors:          is.errors - was.errors,
		Late:            is.late - was.late,
		P50Ms:           ms(percentile(lat, 0.50)),
		P99Ms:           ms(percentile(lat, 0.99)),
		TotalErrors:     is.errors,
		Logins:          is.logins,
		Logouts:         is.logouts,
		HeapInuse:       int64(m["go_memstats_heap_inuse_bytes"]),
		HeapAlloc:       int64(m["go_memstats_heap_alloc_bytes"]),
		HeapGoal:        int64(m["go_memstats_next_gc_bytes"]),
		Goroutines:      int64(m["go_goroutines"]),
		RSS:             now.rss,
		SessionsStarted: int64(m["custodian_sessions_started_total"]),
		SessionsEnded:   int64(m["custodian_sessions_ended_total"]),
	}
	if interval := now.at.Sub(prev.at).Seconds(); interval > 0 && !prev.at.IsZero() {
		s.Rate = float64(s.Calls) / interval
		s.CPUs = float64(now.ticks-prev.ticks) / float64(ticks) / interval
	}
	if s.Calls > 0 && !prev.at.IsZero() {
		s.CPUMicrosPerCall = float64(now.ticks-prev.ticks) * 1e6 / float64(ticks) / float64(s.Calls)
	}
	return s
}
