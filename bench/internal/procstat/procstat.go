// Package procstat measures CPU time and disk writes from /proc, for the
// benchmark programs under bench/: the machine's busy time, this process's
// own, and named server processes', so that each figure can say what else
// ran beside it.
package procstat

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/stat (100 on Linux).
const clockTicks = 100

// Sample is the machine's busy CPU time (all processes), this
// process's own and the contender's server processes', at one instant.
type Sample struct {
	at      time.Time
	machine float64 // seconds; 0 when /proc/stat is unreadable
	self    float64 // seconds
	server  float64 // seconds
}

// SampleCPU takes a Sample now, server naming the server processes.
func SampleCPU(server []string) Sample {
	return Sample{at: time.Now(), machine: MachineBusy(), self: SelfCPU(), server: ProcessesCPU(server)}
}

// Usage is what happened between two samples.
type Usage struct {
	Wall    float64 `json:"wall_sec"`
	Self    float64 `json:"self_cpu_sec"`    // this process: contender (Ferry: and broker), measurement
	Server  float64 `json:"server_cpu_sec"`  // the contender's server processes (PostgreSQL, Redis)
	Foreign float64 `json:"foreign_cpu_sec"` // every other process
}

// To is the Usage from a to b.
func (a Sample) To(b Sample) Usage {
	u := Usage{Wall: b.at.Sub(a.at).Seconds(), Self: b.self - a.self, Server: max(0, b.server-a.server)}
	if a.machine > 0 && b.machine > 0 {
		u.Foreign = max(0, (b.machine-a.machine)-u.Self-u.Server)
	}
	return u
}

// SelfCPU is this process's CPU seconds (user and system).
func SelfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// Processes returns the /proc directories of the processes named one of
// names ("self": this process).
func Processes(names []string) []string {
	var dirs []string
	for _, n := range names {
		if n == "self" {
			dirs = append(dirs, "/proc/self")
		}
	}
	all, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range all {
		comm, err := os.ReadFile(d + "/comm")
		if err != nil {
			continue
		}
		c := strings.TrimSpace(string(comm))
		for _, n := range names {
			if c == n {
				dirs = append(dirs, d)
				break
			}
		}
	}
	return dirs
}

// ProcessesCPU is the CPU seconds (user and system) of the processes
// named one of names. A process that exits meanwhile takes its time with
// it: the servers measured keep their processes (pooled connections).
func ProcessesCPU(names []string) float64 {
	var total float64
	for _, d := range Processes(names) {
		data, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		total += (ut + st) / clockTicks
	}
	return total
}

// WriteBytes is the bytes the processes named name caused to be written
// to storage (write_bytes of /proc/PID/io, counted when pages are
// dirtied): "self" for this process.
func WriteBytes(name string) int64 {
	var total int64
	for _, d := range Processes([]string{name}) {
		f, err := os.Open(d + "/io")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "write_bytes: "); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				total += n
			}
		}
		f.Close()
	}
	return total
}

// MachineBusy reads the busy time of all CPUs from /proc/stat: user,
// nice, system, irq, softirq and steal (not idle, not iowait).
func MachineBusy() float64 {
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

// WaitIdle waits, at most limit, until the other processes use less than
// maxForeign CPUs over a 500ms window; it returns how long it waited and
// whether the machine was idle enough.
func WaitIdle(ctx context.Context, limit time.Duration, maxForeign float64) (time.Duration, bool) {
	start := time.Now()
	if limit <= 0 {
		return 0, false
	}
	for {
		a := SampleCPU(nil)
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return time.Since(start), false
		}
		u := a.To(SampleCPU(nil))
		if u.Wall > 0 && u.Foreign/u.Wall < maxForeign {
			return time.Since(start), true
		}
		if time.Since(start) >= limit {
			return time.Since(start), false
		}
	}
}
