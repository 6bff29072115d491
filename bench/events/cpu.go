package main

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/stat (100 on Linux).
const clockTicks = 100

// cpuSample is the machine's busy CPU time (all processes) and this
// process's own, at one instant.
type cpuSample struct {
	at      time.Time
	machine float64 // seconds; NaN-free, 0 when /proc/stat is unreadable
	self    float64 // seconds
}

func sampleCPU() cpuSample {
	return cpuSample{at: time.Now(), machine: machineBusy(), self: selfCPU()}
}

// usage is what happened between two samples.
type usage struct {
	Wall    float64 `json:"wall_sec"`
	Self    float64 `json:"self_cpu_sec"`    // this process: contender, broker, measurement
	Foreign float64 `json:"foreign_cpu_sec"` // every other process
}

func (a cpuSample) to(b cpuSample) usage {
	u := usage{Wall: b.at.Sub(a.at).Seconds(), Self: b.self - a.self}
	if a.machine > 0 && b.machine > 0 {
		u.Foreign = max(0, (b.machine-a.machine)-u.Self)
	}
	return u
}

func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// machineBusy reads the busy time of all CPUs from /proc/stat: user,
// nice, system, irq, softirq and steal (not idle, not iowait).
func machineBusy() float64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0
	}
	var busy float64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return 0
		}
		busy += v
	}
	return busy / clockTicks
}

// waitIdle waits, at most limit, until the other processes use less than
// maxForeign CPUs over a 500ms window; it returns how long it waited and
// whether the machine was idle enough.
func waitIdle(ctx context.Context, limit time.Duration, maxForeign float64) (time.Duration, bool) {
	start := time.Now()
	if limit <= 0 {
		return 0, false
	}
	for {
		a := sampleCPU()
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return time.Since(start), false
		}
		u := a.to(sampleCPU())
		if u.Wall > 0 && u.Foreign/u.Wall < maxForeign {
			return time.Since(start), true
		}
		if time.Since(start) >= limit {
			return time.Since(start), false
		}
	}
}
