package main

import (
	"os"
	"testing"
)

// TestParseStat reads /proc/<pid>/stat lines captured on Linux 6 (a Go
// binary with 7 threads, bash), and ones whose command name holds spaces
// and parentheses, which only the last ')' delimits.
func TestParseStat(t *testing.T) {
	tests := []struct {
		name         string
		line         string
		utime, stime int64
		ok           bool
	}{
		{
			name:  "custodian-demo",
			line:  "15089 (custodian-demo) S 15086 15086 23981 0 -1 4194304 1918 0 0 0 4 0 0 0 20 0 7 0 2467064 1765015552 5686 18446744073709551615 4194304 13214032 140729619370048 0 0 0 1002060288 0 2143420159 0 0 0 17 1 0 0 0 0 0 23531520 24132864 1126199296 140729619376761 140729619376828 140729619376828 140729619378146 0\n",
			utime: 4, stime: 0, ok: true,
		},
		{
			name:  "bash",
			line:  "23981 (bash) S 23980 23981 23981 0 -1 4194560 16469 1647772 0 41 6 10 7492 1843 20 0 1 0 2253305 5251072 967 18446744073709551615 94146374111232 94146374900637 140727502734704 0 0 0 65536 4 1132560123 1 0 0 17 0 0 0 0 0 0 94146375133936 94146375182180 94147404505088 140727502740318 140727502740333 140727502740333 140727502741482 0\n",
			utime: 6, stime: 10, ok: true,
		},
		{
			name:  "a name with spaces and parentheses",
			line:  "42 (a) b (c)) R 1 42 42 0 -1 4194304 100 0 0 0 1234 567 0 0 20 0 1 0 2466774 3133440 394\n",
			utime: 1234, stime: 567, ok: true,
		},
		{name: "no name", line: "42 R 1 42 42 0 -1 4194304 100 0 0 0 1234 567 0 0 20\n"},
		{name: "too short", line: "42 (x) R 1 42 42 0 -1 4194304 100 0 0 0\n"},
		{name: "not a number", line: "42 (x) R 1 42 42 0 -1 4194304 100 0 0 0 12x4 567 0 0 20\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			utime, stime, err := parseStat(tt.line)
			if (err == nil) != tt.ok || utime != tt.utime || stime != tt.stime {
				t.Errorf("parseStat = %d, %d, %v; want %d, %d (ok %v)", utime, stime, err, tt.utime, tt.stime, tt.ok)
			}
		})
	}
}

// TestCPUTicksOfItself reads this process's own stat file.
func TestCPUTicksOfItself(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := cpuTicks(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}

// TestParseSystemStat reads /proc/stat's first line as captured here (a
// VM: steal is not 0): busy is everything but idle and iowait.
func TestParseSystemStat(t *testing.T) {
	got, err := parseSystemStat("cpu  1030823 15157 128083 3808868 4318 0 13161 62066 0 0")
	if want := int64(1030823 + 15157 + 128083 + 0 + 13161 + 62066); err != nil || got != want {
		t.Errorf("parseSystemStat = %d, %v; want %d", got, err, want)
	}
	for _, line := range []string{"cpu0 1 2 3 4 5 6 7 8 9 10", "cpu 1 2 3", "cpu 1 2 x 4 5 6 7 8 9 10"} {
		if _, err := parseSystemStat(line); err == nil {
			t.Errorf("parseSystemStat(%q): no error", line)
		}
	}
}
