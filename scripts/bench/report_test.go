package main

import "testing"

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{4, 2}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{9, 1, 2, 3}, 2.5},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestCPUPerCall checks the table's last column: CPU ticks over the run,
// in microseconds, per completed request.
func TestCPUPerCall(t *testing.T) {
	// 74 ticks of 10 ms over 3027 requests: 244.5 µs a call.
	r := newRunResult(paths[0], wrkResult{Requests: 3027}, "", "custodian", 74, 100)
	if got, want := r.CPUMicrosPerCall, 740000.0/3027; got != want {
		t.Errorf("CPU per call %v µs, want %v", got, want)
	}
	if r := newRunResult(paths[0], wrkResult{}, "", "custodian", 74, 100); r.CPUMicrosPerCall != 0 {
		t.Errorf("CPU per call with no request: %v, want 0", r.CPUMicrosPerCall)
	}
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999.4: "999", 1000: "1,000", 41803.2: "41,803", 1234567: "1,234,567"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestProblems(t *testing.T) {
	rep := worldReport{Backends: "canned", Summary: []pathSummary{
		{Label: "ok", Runs: 2, Requests: 10},
		{Label: "wrong", CheckError: "no \"o-1001\" in it"},
		{Label: "failing", Runs: 1, Requests: 10, Non2xx: 3},
		{Label: "idle", Runs: 1},
		{Label: "forwarding", Runs: 1, Requests: 10, CannedForwarded: 2},
	}}
	for _, tt := range []struct {
		smoke              bool
		failures, warnings int
	}{
		{smoke: true, failures: 3, warnings: 1},
		{smoke: false, failures: 1, warnings: 3},
	} {
		failures, warnings := rep.problems(tt.smoke)
		if len(failures) != tt.failures || len(warnings) != tt.warnings {
			t.Errorf("smoke %v: failures %q, warnings %q; want %d and %d", tt.smoke, failures, warnings, tt.failures, tt.warnings)
		}
	}
}
