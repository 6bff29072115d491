package main

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clkTck is USER_HZ, the unit of utime/stime in /proc/PID/stat. It is 100 on
// every Linux architecture Go supports; -clk-tck overrides it.
var clkTck = 100.0

// pidList is a repeatable flag accepting comma-separated PIDs.
type pidList []int

func (p *pidList) String() string { return fmt.Sprint([]int(*p)) }

func (p *pidList) Set(s string) error {
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return fmt.Errorf("bad pid %q", f)
		}
		*p = append(*p, n)
	}
	return nil
}

// ProcStat is what the driver reports about one server process.
type ProcStat struct {
	PID     int     `json:"pid"`
	HWMKiB  int64   `json:"peak_rss_kib"` // VmHWM at the end of the run
	RSSKiB  int64   `json:"rss_kib"`      // VmRSS at the end of the run
	CPUSec  float64 `json:"cpu_sec"`      // utime+stime consumed during the run
	Threads int64   `json:"threads"`
}

// cpuSeconds returns utime+stime of pid in seconds.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// comm (field 2) may contain spaces and parentheses: split after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return float64(ut+st) / clkTck, nil
}

// memStatus returns VmHWM, VmRSS (KiB) and the thread count of pid.
func memStatus(pid int) (hwm, rss, threads int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
		switch k {
		case "VmHWM":
			hwm, _ = strconv.ParseInt(v, 10, 64)
		case "VmRSS":
			rss, _ = strconv.ParseInt(v, 10, 64)
		case "Threads":
			threads, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return hwm, rss, threads, nil
}

// machineBusy returns the CPU seconds all CPUs have spent busy (user, nice,
// system, irq, softirq, steal) and the number of CPUs, from /proc/stat.
func machineBusy() (busy float64, ncpu int) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			ncpu++
			continue
		}
		for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system irq softirq steal
			v, _ := strconv.ParseInt(f[i], 10, 64)
			busy += float64(v) / clkTck
		}
	}
	return busy, ncpu
}

// procWatch samples CPU time of a set of PIDs at the start of a run and
// reports the difference, plus memory, at the end. It also takes the
// machine's busy CPU time and the driver's own, so that CPU used by anything
// else during the run (other jobs on a shared machine) can be reported.
type procWatch struct {
	pids        []int
	start       []float64
	busy, drive float64
}

func watch(pids []int) (*procWatch, error) {
	w := &procWatch{pids: pids, start: make([]float64, len(pids))}
	w.busy, _ = machineBusy()
	w.drive = selfCPU()
	for i, p := range pids {
		c, err := cpuSeconds(p)
		if err != nil {
			return nil, err
		}
		w.start[i] = c
	}
	return w, nil
}

// foreign returns the CPU seconds used since watch by processes other than
// the watched ones and the driver (and its children). Call after finish.
func (w *procWatch) foreign(procs []ProcStat) float64 {
	busy, _ := machineBusy()
	f := busy - w.busy - (selfCPU() - w.drive)
	for _, p := range procs {
		f -= p.CPUSec
	}
	return max(f, 0)
}

func (w *procWatch) finish() ([]ProcStat, error) {
	out := make([]ProcStat, len(w.pids))
	for i, p := range w.pids {
		c, err := cpuSeconds(p)
		if err != nil {
			return nil, err
		}
		hwm, rss, th, err := memStatus(p)
		if err != nil {
			return nil, err
		}
		out[i] = ProcStat{PID: p, HWMKiB: hwm, RSSKiB: rss, CPUSec: c - w.start[i], Threads: th}
	}
	return out, nil
}

// kernelCounters are the TCP counters that reveal a listen queue or SYN
// queue overflowing during a burst of new connections.
var kernelCounters = []string{
	"ListenOverflows", "ListenDrops", "TCPReqQFullDoCookies", "TCPReqQFullDrop",
	"SyncookiesSent", "TCPSynRetrans", "TCPTimeouts", "TCPBacklogDrop", "TCPAbortOnOverflow",
}

// netstat returns the TcpExt counters named in kernelCounters (from
// /proc/net/netstat of the driver's network namespace) and Tcp RetransSegs.
func netstat() map[string]int64 {
	out := map[string]int64{}
	for _, f := range []string{"/proc/net/netstat", "/proc/net/snmp"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := strings.Split(string(b), "\n")
		for i := 0; i+1 < len(lines); i++ {
			k, v := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			if len(k) == 0 || len(k) != len(v) || k[0] != v[0] {
				continue
			}
			for j := 1; j < len(k); j++ {
				if (k[0] == "TcpExt:" && slices.Contains(kernelCounters, k[j])) || (k[0] == "Tcp:" && k[j] == "RetransSegs") {
					out[k[j]], _ = strconv.ParseInt(v[j], 10, 64)
				}
			}
			i++
		}
	}
	return out
}

// netstatDelta returns after-before, keeping only non-zero entries.
func netstatDelta(before, after map[string]int64) map[string]int64 {
	d := map[string]int64{}
	for k, v := range after {
		if v-before[k] != 0 {
			d[k] = v - before[k]
		}
	}
	return d
}

// waitQuiet blocks until the machine's CPUs are at most maxBusy busy (a
// fraction of all CPUs) over two consecutive one-second samples, or until
// limit has passed. It returns how long it waited and the last busy fraction.
func waitQuiet(maxBusy float64, limit time.Duration) (time.Duration, float64, bool) {
	start := time.Now()
	quiet := 0
	frac := 0.0
	for {
		b0, n := machineBusy()
		t0 := time.Now()
		time.Sleep(time.Second)
		b1, _ := machineBusy()
		frac = (b1 - b0) / (time.Since(t0).Seconds() * float64(max(n, 1)))
		if frac <= maxBusy {
			quiet++
			if quiet >= 2 {
				return time.Since(start), frac, true
			}
		} else {
			quiet = 0
		}
		if time.Since(start) >= limit {
			return time.Since(start), frac, false
		}
	}
}
