package gatewaytest

import (
	"syscall"
	"time"
)

// ProcessCPU returns the CPU time the process has used, user and system:
// benchmarks report it per call beside the wall time, which on a shared
// machine measures the neighbours as much as the code.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
