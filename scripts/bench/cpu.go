package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// defaultClockTicks is Linux's USER_HZ nearly everywhere, used if getconf
// cannot say.
const defaultClockTicks = 100

// clockTicks returns the clock ticks per second of /proc's CPU times
// (sysconf(_SC_CLK_TCK), which getconf prints).
func clockTicks(ctx context.Context) int64 {
	out, err := exec.CommandContext(ctx, "getconf", "CLK_TCK").Output()
	if err != nil {
		return defaultClockTicks
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || n <= 0 {
		return defaultClockTicks
	}
	return n
}

// cpuTicks returns the CPU time pid has used so far, user and system, in
// clock ticks, every thread included.
func cpuTicks(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("CPU time: %w", err)
	}
	utime, stime, err := parseStat(string(data))
	if err != nil {
		return 0, fmt.Errorf("CPU time of %d: %w", pid, err)
	}
	return utime + stime, nil
}

// parseStat returns utime and stime, fields 14 and 15 of a /proc/<pid>/stat
// line (proc(5)). Field 2, the command name in parentheses, may itself hold
// spaces and parentheses, so fields are counted from the last ')'.
func parseStat(line string) (utime, stime int64, err error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, 0, errors.New("no command name in parentheses")
	}
	// After the name: field 3 (state) is at index 0, so field n at n-3.
	fields := strings.Fields(line[i+1:])
	if len(fields) < 15-3+1 {
		return 0, 0, fmt.Errorf("%d fields after the command name, want at least 13", len(fields))
	}
	if utime, err = strconv.ParseInt(fields[14-3], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("utime: %w", err)
	}
	if stime, err = strconv.ParseInt(fields[15-3], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("stime: %w", err)
	}
	return utime, stime, nil
}

// loadAverage returns the 1, 5 and 15 minute load averages of
// /proc/loadavg, "?" if it cannot be read: a busy machine shows there.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	fields := strings.Fields(string(data))
	if len(fields) < 3 {
		return "?"
	}
	return strings.Join(fields[:3], " ")
}

// systemBusyTicks returns the CPU time every process of the machine has
// used so far, in clock ticks: the busy fields of /proc/stat's "cpu" line
// (user, nice, system, irq, softirq, steal; guest time is within user).
func systemBusyTicks() (int64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("machine CPU time: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	busy, err := parseSystemStat(line)
	if err != nil {
		return 0, fmt.Errorf("machine CPU time: %w", err)
	}
	return busy, nil
}

// parseSystemStat returns the busy ticks of /proc/stat's "cpu" line.
func parseSystemStat(line string) (int64, error) {
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, fmt.Errorf("not a cpu line with 8 times: %q", line)
	}
	var busy int64
	// user nice system idle iowait irq softirq steal
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, err := strconv.ParseInt(fields[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("field %d: %w", i, err)
		}
		busy += n
	}
	return busy, nil
}

// cpuSnapshot is the CPU time used so far, in clock ticks, by the machine
// and by the world's processes (libfloor 0 while it is not running).
type cpuSnapshot struct {
	at                               time.Time
	machine, gateway, demo, libfloor int64
}

func (w *world) cpuSnapshot() (cpuSnapshot, error) {
	s := cpuSnapshot{at: time.Now()}
	var err error
	if s.machine, err = systemBusyTicks(); err != nil {
		return s, err
	}
	if s.gateway, err = cpuTicks(w.gateway.pid()); err != nil {
		return s, err
	}
	if s.demo, err = cpuTicks(w.demo.pid()); err != nil {
		return s, err
	}
	if w.libfloor != nil && !w.libfloor.exited() {
		if s.libfloor, err = cpuTicks(w.libfloor.pid()); err != nil {
			return s, err
		}
	}
	return s, nil
}

// cpuUsed is the CPU time used between two snapshots.
type cpuUsed struct {
	elapsed                          time.Duration
	machine, gateway, demo, libfloor int64 // clock ticks
}

// minus returns the CPU time used from before to s.
func (s cpuSnapshot) minus(before cpuSnapshot) cpuUsed {
	return cpuUsed{
		elapsed: s.at.Sub(before.at),
		machine: s.machine - before.machine,
		gateway: s.gateway - before.gateway,
		demo:    s.demo - before.demo,
		// The library floor starts at its first use, after a snapshot
		// taken before; it used no CPU before it ran.
		libfloor: s.libfloor - before.libfloor,
	}
}

// of returns the ticks of p, one of w's processes.
func (u cpuUsed) of(p *process, w *world) int64 {
	switch p {
	case w.demo:
		return u.demo
	case w.libfloor:
		return u.libfloor
	}
	return u.gateway
}

// others returns how many CPUs, on average, the rest of the machine kept
// busy: every process but the gateway, custodian-demo, the library floor and wrk (whose own
// CPU time is wrkCPU), and the time a hypervisor gave to other machines
// (steal). Near 0 means the run had the machine to itself.
func (u cpuUsed) others(wrkCPU time.Duration, ticks int64) float64 {
	if u.elapsed <= 0 {
		return 0
	}
	rest := float64(u.machine-u.gateway-u.demo-u.libfloor)/float64(ticks) - wrkCPU.Seconds()
	return max(rest/u.elapsed.Seconds(), 0)
}
