package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestParseWrk reads wrk 4's output as captured on loopback (testdata):
// the gateway's GetDashboard, a fast handler (latencies in µs), a server
// that answers 404, one slower than wrk's timeout, and one that closes
// every connection after its answer.
func TestParseWrk(t *testing.T) {
	tests := []struct {
		file string
		want wrkResult
	}{
		{"wrk-gateway.txt", wrkResult{
			Requests: 1241, Elapsed: time.Second, RPS: 1237.60,
			P50: 24860 * time.Microsecond, P99: 50060 * time.Microsecond,
		}},
		{"wrk-microseconds.txt", wrkResult{
			Requests: 30324, Elapsed: 1100 * time.Millisecond, RPS: 27620.58,
			P50: 116 * time.Microsecond, P99: 2870 * time.Microsecond,
		}},
		{"wrk-non2xx.txt", wrkResult{
			Requests: 138, Elapsed: time.Second, RPS: 137.64,
			P50: 43980 * time.Microsecond, P99: 48060 * time.Microsecond, Non2xx: 138,
		}},
		{"wrk-timeouts.txt", wrkResult{
			Requests: 11, Elapsed: 2010 * time.Millisecond, RPS: 5.48,
			SocketErrors: socketErrors{Timeout: 11},
		}},
		{"wrk-read-errors.txt", wrkResult{
			Requests: 2077, Elapsed: time.Second, RPS: 2069.82,
			P50: 14420 * time.Microsecond, P99: 31690 * time.Microsecond,
			SocketErrors: socketErrors{Read: 2077},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			out, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseWrk(string(out))
			if err != nil {
				t.Fatal(err)
			}
			if !closeTo(got, tt.want) {
				t.Errorf("parseWrk:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// closeTo compares wrk results, durations to within a nanosecond (they
// are parsed from decimal text).
func closeTo(a, b wrkResult) bool {
	near := func(x, y time.Duration) bool { return x-y <= 1 && y-x <= 1 }
	return a.Requests == b.Requests && a.RPS == b.RPS && a.Non2xx == b.Non2xx && a.SocketErrors == b.SocketErrors &&
		near(a.Elapsed, b.Elapsed) && near(a.P50, b.P50) && near(a.P99, b.P99)
}

func TestParseWrkRefusesTruncatedOutput(t *testing.T) {
	out, err := os.ReadFile(filepath.Join("testdata", "wrk-gateway.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []string{"Requests/sec:", "  1241 requests in", "     99%", "  Latency Distribution"} {
		i := strings.Index(string(out), cut)
		if i < 0 {
			t.Fatalf("no %q in the sample", cut)
		}
		if _, err := parseWrk(string(out[:i])); err == nil {
			t.Errorf("output cut before %q: no error", cut)
		}
	}
}

func TestParseWrkDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"116.00us", 116 * time.Microsecond, true},
		{"0.93ms", 930 * time.Microsecond, true},
		{"1.00s", time.Second, true},
		{"2.00m", 2 * time.Minute, true},
		{"-nan%", 0, false},
		{"12", 0, false},
		{"3.0x", 0, false},
	}
	for _, tt := range tests {
		got, err := parseWrkDuration(tt.in)
		if (err == nil) != tt.ok || got-tt.want > 1 || tt.want-got > 1 {
			t.Errorf("parseWrkDuration(%q) = %v, %v; want %v (ok %v)", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
