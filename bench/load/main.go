// Command load is a light HTTP/1.1 load driver for the benchmarks in bench/.
//
// It writes raw request bytes on net.Conn and parses responses with a small
// allocation-free parser over bufio, so that the driver, which shares the
// machine with the server, spends as little CPU as possible.
//
// Modes:
//
//	burst  fire -n simultaneous requests and wait for all of them.
//	       -conns open: first open -n keep-alive connections and warm each
//	       with one request to -warm, then release every real request at
//	       once (a start barrier) and time from the release to the last
//	       response. -conns new: each request dials its own connection at
//	       the release.
//	loop   closed loop: -c connections each sending back-to-back requests
//	       for -d; reports requests/s and latency.
//	exec   run the command after "--" (e.g. wrk) and report the server CPU
//	       time it caused; wrk's Requests/sec is picked up if present.
//	quiet  wait, at most -d, until the machine's CPUs are idle (at most
//	       -max-busy busy over two one-second samples); for shared machines.
//	table  read the -json results in the directory given as argument (as
//	       written by bench/http.sh) and print markdown tables of medians
//	       with ratios to the reference server (-ref).
//
// With -pid PID (repeatable, or a comma list) it reports each server's peak
// RSS (VmHWM from /proc/PID/status) at the end of the run and the CPU time
// (utime+stime from /proc/PID/stat) consumed during the run, hence requests
// per server CPU-second.
//
// Examples:
//
//	go run ./bench/load -mode burst -n 10000 -conns open -url http://127.0.0.1:8080/items/42 -pid 1234
//	go run ./bench/load -mode loop -c 64 -d 10s -url http://127.0.0.1:8080/items/42
//	go run ./bench/load -mode exec -pid 1234 -json -- wrk -t1 -c64 -d10s http://127.0.0.1:8080/items/42
//	go run ./bench/load -mode table /tmp/ferry-bench-http-XXXX
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Result is one run's outcome; -json prints it as is.
type Result struct {
	Mode     string `json:"mode"`
	Conns    string `json:"conns,omitempty"`
	URL      string `json:"url,omitempty"`
	Server   string `json:"server,omitempty"`   // -label
	Scenario string `json:"scenario,omitempty"` // -scenario
	Run      int    `json:"run,omitempty"`      // -run
	Note     string `json:"note,omitempty"`     // -note

	Requests    int              `json:"requests"`
	Concurrency int              `json:"concurrency,omitempty"`
	OK          int              `json:"ok"`      // status 200 (and body as -expect, if given)
	Non200      int              `json:"non_200"` // responses with another status
	BadBody     int              `json:"bad_body,omitempty"`
	Errors      int              `json:"errors"` // no response at all
	ErrorKinds  map[string]int   `json:"error_kinds,omitempty"`
	Statuses    map[string]int   `json:"statuses,omitempty"`
	SetupSec    float64          `json:"setup_sec,omitempty"` // opening+warming connections
	WallSec     float64          `json:"wall_sec"`            // release to last response
	RPS         float64          `json:"rps"`
	LatP50Ms    float64          `json:"lat_p50_ms"` // per request, from its own send (or dial)
	LatP99Ms    float64          `json:"lat_p99_ms"`
	LatMaxMs    float64          `json:"lat_max_ms"`
	DoneP50Ms   float64          `json:"done_p50_ms,omitempty"` // burst: from the release
	DoneP99Ms   float64          `json:"done_p99_ms,omitempty"`
	Procs       []ProcStat       `json:"procs,omitempty"`
	ServerCPU   float64          `json:"server_cpu_sec,omitempty"`
	ServerHWM   int64            `json:"server_peak_rss_kib,omitempty"`
	ReqPerCPU   float64          `json:"req_per_server_cpu_sec,omitempty"`
	DriverCPU   float64          `json:"driver_cpu_sec"`
	ForeignCPU  float64          `json:"foreign_cpu_sec"`            // CPU used by other processes during the run
	Kernel      map[string]int64 `json:"kernel_tcp_delta,omitempty"` // /proc/net/netstat counters, whole run incl. setup
	Command     string           `json:"command,omitempty"`
	Output      string           `json:"output,omitempty"`
}

type config struct {
	mode, conns, url, warm string
	n, c, par              int
	d, timeout             time.Duration
	expect                 []byte
	pids                   pidList
}

func main() {
	var cfg config
	var expect string
	var asJSON bool
	var label, scenario string
	var run int
	var note string
	flag.StringVar(&cfg.mode, "mode", "burst", "burst | loop | exec | quiet | table")
	flag.StringVar(&cfg.url, "url", "http://127.0.0.1:8080/items/42", "target URL (http only)")
	flag.IntVar(&cfg.n, "n", 10000, "burst: number of simultaneous requests")
	flag.StringVar(&cfg.conns, "conns", "open", "burst: open (pre-opened, warmed keep-alive connections) | new (one dial per request)")
	flag.StringVar(&cfg.warm, "warm", "/items/abc", "burst -conns open: path of the warm-up request on each connection (any status)")
	flag.IntVar(&cfg.par, "dial-parallel", 128, "burst -conns open: connections opened and warmed concurrently during setup")
	flag.IntVar(&cfg.c, "c", 64, "loop: connections")
	flag.DurationVar(&cfg.d, "d", 10*time.Second, "loop: duration; quiet: longest wait")
	flag.DurationVar(&cfg.timeout, "timeout", 60*time.Second, "per request deadline (burst: from the release)")
	flag.StringVar(&expect, "expect", "", "if set, a 200 whose body (trailing newline trimmed) differs counts as bad_body")
	flag.Var(&cfg.pids, "pid", "server PID to watch (repeatable or comma list)")
	flag.Float64Var(&clkTck, "clk-tck", clkTck, "USER_HZ for /proc/PID/stat")
	flag.BoolVar(&asJSON, "json", false, "print the result as JSON")
	flag.StringVar(&label, "label", "", "label stored in the result (server name)")
	flag.StringVar(&scenario, "scenario", "", "label stored in the result (scenario)")
	flag.IntVar(&run, "run", 0, "label stored in the result (run number)")
	flag.StringVar(&note, "note", "", "free text stored in the result (e.g. the server's delay); shown in table headings")
	maxBusy := flag.Float64("max-busy", 0.10, "quiet: wait (at most -d) until the CPUs are at most this fraction busy")
	ref := flag.String("ref", "plain", "table: the reference server label")
	flag.Parse()
	if expect != "" {
		cfg.expect = []byte(expect)
	}

	if cfg.mode == "table" {
		if flag.NArg() != 1 {
			fatalf("table: give the results directory as the only argument")
		}
		if err := printTables(os.Stdout, flag.Arg(0), *ref); err != nil {
			fatalf("table: %v", err)
		}
		return
	}

	if lim := raiseNofile(); cfg.mode == "burst" && lim > 0 && uint64(cfg.n)+32 > lim {
		fmt.Fprintf(os.Stderr, "load: warning: -n %d connections need more file descriptors than the limit %d (ulimit -n); expect errors\n", cfg.n, lim)
	}
	var (
		res *Result
		err error
	)
	switch cfg.mode {
	case "burst":
		res, err = burst(cfg)
	case "loop":
		res, err = loop(cfg)
	case "exec":
		res, err = execCmd(cfg, flag.Args())
	case "quiet":
		waited, frac, ok := waitQuiet(*maxBusy, cfg.d)
		if !ok {
			fmt.Fprintf(os.Stderr, "load: machine still %.0f%% busy after %s; going on\n", 100*frac, waited.Round(time.Second))
		} else if waited > 3*time.Second {
			fmt.Fprintf(os.Stderr, "load: waited %s for the machine to be quiet (%.0f%% busy)\n", waited.Round(time.Second), 100*frac)
		}
		return
	default:
		err = fmt.Errorf("unknown -mode %q", cfg.mode)
	}
	if err != nil {
		fatalf("%v", err)
	}
	res.Server, res.Scenario, res.Run, res.Note = label, scenario, run, note
	res.DriverCPU = selfCPU()
	if len(res.Procs) > 0 {
		for _, p := range res.Procs {
			res.ServerCPU += p.CPUSec
			res.ServerHWM += p.HWMKiB
		}
		if res.ServerCPU > 0 {
			res.ReqPerCPU = float64(res.OK) / res.ServerCPU
		}
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
		return
	}
	printText(res)
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "load: "+format+"\n", a...)
	os.Exit(1)
}

// raiseNofile lifts the soft fd limit to the hard one (Go does this itself
// since 1.19, but be explicit for clarity) and returns it.
func raiseNofile() uint64 {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) != nil {
		return 0
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	return rl.Cur
}

// selfCPU is the CPU time of the driver and of the commands it ran (exec mode).
func selfCPU() float64 {
	var t time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			t += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return t.Seconds()
}

// outcome of one request.
type outcome struct {
	status int
	err    error
	bad    bool
	lat    time.Duration // from its own send (or dial)
	done   time.Duration // burst: from the release
}

type conn struct {
	c  net.Conn
	br *bufio.Reader
}

// roundTrip writes req on c and reads one response into *buf.
func (c *conn) roundTrip(req []byte, buf *[]byte) (response, error) {
	if _, err := c.c.Write(req); err != nil {
		return response{}, err
	}
	r, b, err := readResponse(c.br, *buf)
	*buf = b
	return r, err
}

func dial(addr string, timeout time.Duration) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, br: bufio.NewReaderSize(c, 2048)}, nil
}

func burst(cfg config) (*Result, error) {
	t, err := parseTarget(cfg.url)
	if err != nil {
		return nil, err
	}
	if cfg.conns != "open" && cfg.conns != "new" {
		return nil, fmt.Errorf("-conns must be open or new, got %q", cfg.conns)
	}
	warmReq := buildRequest(hostOf(cfg.url), cfg.warm)
	n := cfg.n
	outs := make([]outcome, n)
	var (
		ready, answered, closed sync.WaitGroup
		start                   = make(chan struct{})
		finish                  = make(chan struct{})
		sem                     = make(chan struct{}, max(cfg.par, 1))
		t0                      time.Time // written before close(start)
	)
	ready.Add(n)
	answered.Add(n)
	closed.Add(n)
	ns0 := netstat()
	setupStart := time.Now()
	for i := range n {
		go func() {
			defer closed.Done()
			o := &outs[i]
			var c *conn
			var buf []byte
			if cfg.conns == "open" {
				sem <- struct{}{}
				var err error
				c, err = dial(t.addr, cfg.timeout)
				if err == nil {
					c.c.SetDeadline(time.Now().Add(cfg.timeout))
					var r response
					r, err = c.roundTrip(warmReq, &buf)
					if err == nil && r.close {
						err = errors.New("server closed the connection")
					}
					if err != nil {
						c.c.Close()
						err = fmt.Errorf("warm-up: %w", err)
					}
				}
				<-sem
				ready.Done()
				<-start
				if err != nil {
					o.err = err
					answered.Done()
					return
				}
				c.c.SetDeadline(t0.Add(cfg.timeout))
			} else {
				ready.Done()
				<-start
			}
			s := time.Now()
			if c == nil {
				nc, err := net.DialTimeout("tcp", t.addr, cfg.timeout)
				if err != nil {
					o.err = err
					answered.Done()
					return
				}
				nc.SetDeadline(t0.Add(cfg.timeout))
				c = &conn{c: nc, br: bufio.NewReaderSize(nc, 2048)}
			}
			r, err := c.roundTrip(t.req, &buf)
			e := time.Now()
			if err != nil {
				o.err = err
			} else {
				o.status, o.lat, o.done = r.status, e.Sub(s), e.Sub(t0)
				o.bad = r.status == 200 && cfg.expect != nil &&
					!bytes.Equal(bytes.TrimRight(r.body, "\r\n"), cfg.expect)
			}
			answered.Done()
			if cfg.conns == "open" && err == nil {
				<-finish // keep the connection open until every request is answered
			}
			c.c.Close()
		}()
	}
	ready.Wait()
	setup := time.Since(setupStart)
	runtime.GC()
	w, err := watch(cfg.pids)
	if err != nil {
		return nil, err
	}
	t0 = time.Now()
	close(start)
	answered.Wait()
	wall := time.Since(t0)
	procs, err := w.finish()
	if err != nil {
		return nil, err
	}
	foreign := w.foreign(procs)
	close(finish)
	closed.Wait()
	kern := netstatDelta(ns0, netstat())

	res := &Result{Mode: "burst", Conns: cfg.conns, URL: cfg.url, Requests: n, Concurrency: n,
		SetupSec: setup.Seconds(), WallSec: wall.Seconds(), Procs: procs, Kernel: kern, ForeignCPU: foreign}
	summarize(res, outs)
	if res.WallSec > 0 {
		res.RPS = float64(res.OK) / res.WallSec
	}
	return res, nil
}

// summarize fills the counters and percentiles of res from outs.
func summarize(res *Result, outs []outcome) {
	var lat, done []time.Duration
	for _, o := range outs {
		switch {
		case o.err != nil:
			res.Errors++
			if res.ErrorKinds == nil {
				res.ErrorKinds = map[string]int{}
			}
			res.ErrorKinds[errKind(o.err)]++
			continue
		case o.status != 200:
			res.Non200++
		case o.bad:
			res.BadBody++
		default:
			res.OK++
		}
		if res.Statuses == nil {
			res.Statuses = map[string]int{}
		}
		res.Statuses[strconv.Itoa(o.status)]++
		lat = append(lat, o.lat)
		if o.done > 0 {
			done = append(done, o.done)
		}
	}
	res.LatP50Ms, res.LatP99Ms, res.LatMaxMs = pct(lat, 50), pct(lat, 99), pct(lat, 100)
	res.DoneP50Ms, res.DoneP99Ms = pct(done, 50), pct(done, 99)
}

// pct returns the p-th percentile (nearest rank) of d in milliseconds; d is sorted in place.
func pct(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	if !slices.IsSorted(d) {
		slices.Sort(d)
	}
	k := int(p/100*float64(len(d))+0.999999) - 1
	k = min(max(k, 0), len(d)-1)
	return float64(d[k]) / float64(time.Millisecond)
}

// errKind strips addresses from network errors so that they can be counted.
func errKind(err error) string {
	prefix := ""
	if strings.HasPrefix(err.Error(), "warm-up: ") {
		prefix = "warm-up "
	}
	var op *net.OpError
	if errors.As(err, &op) {
		s := prefix + op.Op
		if op.Err != nil {
			var se *os.SyscallError
			if errors.As(op.Err, &se) {
				return s + ": " + se.Err.Error()
			}
			return s + ": " + op.Err.Error()
		}
		return s
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return prefix + "timeout"
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

func hostOf(raw string) string {
	s := strings.TrimPrefix(raw, "http://")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	return s
}

func loop(cfg config) (*Result, error) {
	t, err := parseTarget(cfg.url)
	if err != nil {
		return nil, err
	}
	c := max(cfg.c, 1)
	per := make([][]outcome, c)
	w, err := watch(cfg.pids)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	deadline := t0.Add(cfg.d)
	var wg sync.WaitGroup
	for i := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cn *conn
			var buf []byte
			outs := make([]outcome, 0, 1024)
			for time.Now().Before(deadline) {
				if cn == nil {
					var err error
					cn, err = dial(t.addr, cfg.timeout)
					if err != nil {
						outs = append(outs, outcome{err: err})
						time.Sleep(10 * time.Millisecond)
						continue
					}
				}
				cn.c.SetDeadline(time.Now().Add(cfg.timeout))
				s := time.Now()
				r, err := cn.roundTrip(t.req, &buf)
				if err != nil {
					if time.Now().Before(deadline) {
						outs = append(outs, outcome{err: err})
					}
					cn.c.Close()
					cn = nil
					continue
				}
				o := outcome{status: r.status, lat: time.Since(s)}
				o.bad = r.status == 200 && cfg.expect != nil &&
					!bytes.Equal(bytes.TrimRight(r.body, "\r\n"), cfg.expect)
				outs = append(outs, o)
				if r.close {
					cn.c.Close()
					cn = nil
				}
			}
			if cn != nil {
				cn.c.Close()
			}
			per[i] = outs
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	procs, err := w.finish()
	if err != nil {
		return nil, err
	}
	res := &Result{Mode: "loop", URL: cfg.url, Concurrency: c, WallSec: el.Seconds(), Procs: procs, ForeignCPU: w.foreign(procs)}
	all := slices.Concat(per...)
	res.Requests = len(all)
	summarize(res, all)
	res.RPS = float64(res.OK) / el.Seconds()
	return res, nil
}

// execCmd runs argv (typically wrk) while watching the server PIDs. The
// command's output is copied to stderr and stored in the result; wrk's
// figures are parsed from it.
func execCmd(cfg config, argv []string) (*Result, error) {
	if len(argv) == 0 {
		return nil, errors.New("exec: give the command after --")
	}
	w, err := watch(cfg.pids)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	t0 := time.Now()
	runErr := cmd.Run()
	el := time.Since(t0)
	procs, err := w.finish()
	if err != nil {
		return nil, err
	}
	os.Stderr.Write(out.Bytes())
	if runErr != nil {
		return nil, fmt.Errorf("exec %s: %v", argv[0], runErr)
	}
	res := &Result{Mode: "exec", Command: strings.Join(argv, " "), Output: out.String(),
		WallSec: el.Seconds(), Procs: procs, ForeignCPU: w.foreign(procs)}
	parseWrk(res, out.String())
	return res, nil
}

// parseWrk picks requests/s, request count, errors and latency percentiles
// out of wrk's text output (run wrk with --latency for the percentiles).
func parseWrk(res *Result, s string) {
	for line := range strings.SplitSeq(s, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			res.RPS, _ = strconv.ParseFloat(f[1], 64)
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			res.Requests, _ = strconv.Atoi(f[0])
		case strings.HasPrefix(strings.TrimSpace(line), "Non-2xx or 3xx responses:"):
			res.Non200, _ = strconv.Atoi(f[len(f)-1])
		case strings.HasPrefix(strings.TrimSpace(line), "Socket errors:"):
			// Socket errors: connect 0, read 0, write 0, timeout 0
			for i := 2; i+1 < len(f); i += 2 {
				v, _ := strconv.Atoi(strings.TrimSuffix(f[i+1], ","))
				if v > 0 {
					res.Errors += v
					if res.ErrorKinds == nil {
						res.ErrorKinds = map[string]int{}
					}
					res.ErrorKinds[f[i]] += v
				}
			}
		case len(f) == 2 && f[0] == "50%":
			res.LatP50Ms = wrkDur(f[1])
		case len(f) == 2 && f[0] == "99%":
			res.LatP99Ms = wrkDur(f[1])
		}
	}
	res.OK = res.Requests - res.Non200
	if res.WallSec > 0 && res.RPS == 0 {
		res.RPS = float64(res.OK) / res.WallSec
	}
}

// wrkDur converts wrk's "1.23ms", "456.00us", "1.02s", "2.00m" to milliseconds.
func wrkDur(s string) float64 {
	for _, u := range []struct {
		suf string
		ms  float64
	}{{"us", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 60e3}} {
		if v, ok := strings.CutSuffix(s, u.suf); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f * u.ms
			}
		}
	}
	return 0
}

func printText(r *Result) {
	fmt.Printf("mode=%s", r.Mode)
	if r.Conns != "" {
		fmt.Printf(" conns=%s", r.Conns)
	}
	fmt.Printf(" url=%s\n", r.URL)
	fmt.Printf("requests=%d ok=%d non200=%d bad_body=%d errors=%d", r.Requests, r.OK, r.Non200, r.BadBody, r.Errors)
	if len(r.ErrorKinds) > 0 {
		fmt.Printf(" %v", r.ErrorKinds)
	}
	fmt.Printf(" statuses=%v\n", r.Statuses)
	if r.SetupSec > 0 {
		fmt.Printf("setup=%.3fs ", r.SetupSec)
	}
	fmt.Printf("wall=%.3fs rps=%.1f latency p50=%.1fms p99=%.1fms max=%.1fms", r.WallSec, r.RPS, r.LatP50Ms, r.LatP99Ms, r.LatMaxMs)
	if r.DoneP50Ms > 0 {
		fmt.Printf(" (from release: p50=%.1fms p99=%.1fms)", r.DoneP50Ms, r.DoneP99Ms)
	}
	fmt.Println()
	for _, p := range r.Procs {
		fmt.Printf("pid=%d peak_rss=%.1fMiB rss=%.1fMiB threads=%d cpu=%.2fs\n", p.PID, float64(p.HWMKiB)/1024, float64(p.RSSKiB)/1024, p.Threads, p.CPUSec)
	}
	if r.ReqPerCPU > 0 {
		fmt.Printf("requests per server CPU-second=%.0f\n", r.ReqPerCPU)
	}
	fmt.Printf("driver cpu=%.2fs foreign cpu during the run=%.2fs\n", r.DriverCPU, r.ForeignCPU)
	if len(r.Kernel) > 0 {
		fmt.Printf("kernel tcp counters (delta): %v\n", r.Kernel)
	}
}
