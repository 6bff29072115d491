//go:build unix

package ferry_test

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time the process has used, in user and
// system mode, over all its threads (the garbage collector's included).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
