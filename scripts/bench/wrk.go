package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// wrk's load: two threads, 32 connections, as scripts/bench.sh always used.
const (
	wrkThreads     = 2
	wrkConnections = 32
)

// wrkResult is what the harness reads from wrk's output.
type wrkResult struct {
	Requests     int64         // completed: "N requests in"
	Elapsed      time.Duration // "in 5.00s"
	RPS          float64       // "Requests/sec:"
	P50, P99     time.Duration // --latency's distribution
	Non2xx       int64         // "Non-2xx or 3xx responses:" (wrk counts status >= 400)
	SocketErrors socketErrors
	// CPU is wrk's own CPU time, user and system, from the process (not
	// its output).
	CPU time.Duration
}

// socketErrors is wrk's "Socket errors:" line.
type socketErrors struct {
	Connect, Read, Write, Timeout int64
}

// Total is every socket error.
func (s socketErrors) Total() int64 { return s.Connect + s.Read + s.Write + s.Timeout }

// runWrk loads target for seconds with headers ("Name: value"); it returns
// the result and wrk's output.
func runWrk(ctx context.Context, seconds int, target string, headers []string) (wrkResult, string, error) {
	args := []string{
		"-t" + strconv.Itoa(wrkThreads), "-c" + strconv.Itoa(wrkConnections),
		"-d" + strconv.Itoa(seconds) + "s", "--latency",
	}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	args = append(args, target)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "wrk", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with the harness
	if err := cmd.Run(); err != nil {
		return wrkResult{}, stdout.String(), fmt.Errorf("wrk: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	res, err := parseWrk(stdout.String())
	if err != nil {
		return res, stdout.String(), fmt.Errorf("wrk's output: %w\n%s", err, stdout.String())
	}
	res.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return res, stdout.String(), nil
}

var (
	wrkRequestsRE = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([0-9.]+[a-z]+),`)
	wrkRPSRE      = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkPercentRE  = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+[a-z]+)\s*$`)
	wrkNon2xxRE   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses: (\d+)`)
	wrkSocketRE   = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// parseWrk reads wrk's output (with --latency). The requests line, the
// rate and both percentiles must be there; the non-2xx and socket error
// lines are printed only when there are some.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := wrkRequestsRE.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New(`no "N requests in" line`)
	}
	var err error
	if r.Requests, err = strconv.ParseInt(m[1], 10, 64); err != nil {
		return r, fmt.Errorf("requests: %w", err)
	}
	if r.Elapsed, err = parseWrkDuration(m[2]); err != nil {
		return r, fmt.Errorf("elapsed: %w", err)
	}
	m = wrkRPSRE.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New(`no "Requests/sec:" line`)
	}
	if r.RPS, err = strconv.ParseFloat(m[1], 64); err != nil {
		return r, fmt.Errorf("requests/sec: %w", err)
	}
	found := 0
	for _, m := range wrkPercentRE.FindAllStringSubmatch(out, -1) {
		d, err := parseWrkDuration(m[2])
		if err != nil {
			return r, fmt.Errorf("%s%% latency: %w", m[1], err)
		}
		if m[1] == "50" {
			r.P50 = d
		} else {
			r.P99 = d
		}
		found++
	}
	if found != 2 {
		return r, errors.New("no 50% and 99% latency lines (run wrk with --latency)")
	}
	if m := wrkNon2xxRE.FindStringSubmatch(out); m != nil {
		if r.Non2xx, err = strconv.ParseInt(m[1], 10, 64); err != nil {
			return r, fmt.Errorf("non-2xx: %w", err)
		}
	}
	if m := wrkSocketRE.FindStringSubmatch(out); m != nil {
		counts := make([]int64, 4)
		for i := range counts {
			if counts[i], err = strconv.ParseInt(m[i+1], 10, 64); err != nil {
				return r, fmt.Errorf("socket errors: %w", err)
			}
		}
		r.SocketErrors = socketErrors{Connect: counts[0], Read: counts[1], Write: counts[2], Timeout: counts[3]}
	}
	return r, nil
}

// parseWrkDuration reads a duration as wrk prints one: a number and us,
// ms, s, m or h.
func parseWrkDuration(s string) (time.Duration, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' })
	if i <= 0 {
		return 0, fmt.Errorf("duration %q: no number or no unit", s)
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", s, err)
	}
	unit, ok := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour}[s[i:]]
	if !ok {
		return 0, fmt.Errorf("duration %q: unknown unit", s)
	}
	return time.Duration(n * float64(unit)), nil
}
