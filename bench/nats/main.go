// Command nats measures request/reply over NATS through Ferry against a raw
// nats.go responder doing the same input and output work, in one process,
// on one broker, in the same run.
//
//	go run ./bench/nats                       # 64 callers, 10s per contender, 3 rounds
//	go run ./bench/nats -d 5s -rounds 5 -json
//	go run ./bench/nats -only ferry -cpuprofile ferry.prof && go tool pprof -top ferry.prof
//
// One nats-server listens on a random loopback port. The Ferry side is the
// items service (itemsapi.GetItem, no delay) hosted by a ferry.Host that
// connects to that broker by URL; the reference is a queue-subscribed
// nats.go responder that reads the item ID from the Ferry-Path header and
// answers {"item_id":N}. Servers and callers each have their own TCP
// connection. Each round gives every contender -d of closed-loop load from
// -c callers, cut into slices of -slice: the contenders take turns slice by
// slice (the first of each slice rotating), so load from other processes
// on a shared machine falls on all of them alike. The report gives each
// contender's median over -rounds rounds, the ratio ferry/raw, the median
// of the per-slice ratios, and CPU time per call (which other processes'
// load hardly moves).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "bench/nats:", err)
		os.Exit(1)
	}
}

// ferryEnv returns the FERRY_* and OTEL_* variables set, which configure
// the Ferry host (the variant measured).
func ferryEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "FERRY_") || strings.HasPrefix(kv, "OTEL_") {
			out = append(out, kv)
		}
	}
	slices.Sort(out)
	return out
}

type options struct {
	d, warmup   time.Duration
	slice       time.Duration
	concurrency int
	rounds      int
	maxOps      int64
	json        bool
	only        []string
	cpuprofile  string
	out         string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("nats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.DurationVar(&o.d, "d", 10*time.Second, "measured duration of each contender in each round")
	fs.DurationVar(&o.slice, "slice", time.Second, "the contenders alternate every slice within a round (-d is split into slices)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load of each contender before the first round")
	fs.IntVar(&o.concurrency, "c", 64, "concurrent callers (closed loop)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; the contenders are interleaved within each")
	fs.Int64Var(&o.maxOps, "max-ops", 20_000_000, "upper bound on the calls of one run")
	fs.BoolVar(&o.json, "json", false, "print the results as JSON")
	only := fs.String("only", "", "comma-separated contenders to run (default all): ferry, raw, ferry-raw-client, raw-inline, raw-bare")
	fs.StringVar(&o.out, "out", "", "also write the JSON results to this file")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the measured runs to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.d <= 0 || o.slice <= 0 || o.concurrency <= 0 || o.rounds <= 0 || o.maxOps <= 0 {
		return errors.New("-d, -slice, -c, -rounds and -max-ops must be positive")
	}
	if *only != "" {
		o.only = strings.Split(*only, ",")
	}

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	e, err := start(ctx)
	cancel()
	if err != nil {
		return err
	}
	defer e.close()

	wire, err := e.sniff(context.Background())
	if err != nil {
		return fmt.Errorf("wire check: %w", err)
	}
	var contenders []contender
	for _, c := range e.contenders() {
		if o.only == nil || slices.Contains(o.only, c.name) {
			contenders = append(contenders, c)
		}
	}
	if len(contenders) == 0 {
		return fmt.Errorf("-only %q names no contender", *only)
	}

	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	nSlices := max(1, int((o.d+o.slice/2)/o.slice))
	sliceDur := o.d / time.Duration(nSlices)
	rep := report{
		Machine:     machine(),
		Command:     strings.TrimSpace("go run ./bench/nats " + strings.Join(args, " ")),
		Env:         ferryEnv(),
		Duration:    o.d.String(),
		Slice:       sliceDur.String(),
		Concurrency: o.concurrency,
		Rounds:      o.rounds,
		Wire:        wire,
	}
	// Warm every contender up once; the slices that follow keep them warm.
	for _, c := range contenders {
		if o.warmup > 0 {
			load(c.call, o.warmup, o.concurrency, o.maxOps, false)
		}
	}
	for round := 1; round <= o.rounds; round++ {
		got := make(map[string][]sample, len(contenders))
		for i := range nSlices {
			// Each slice starts with a different contender, so that none
			// always runs first or right after the same one.
			k := (round - 1 + i) % len(contenders)
			bySlice := map[string]float64{}
			for _, c := range append(contenders[k:len(contenders):len(contenders)], contenders[:k]...) {
				smp := load(c.call, sliceDur, o.concurrency, o.maxOps, true)
				got[c.name] = append(got[c.name], smp)
				bySlice[c.name] = smp.rps()
			}
			if f, r := bySlice["ferry"], bySlice["raw"]; f > 0 && r > 0 {
				rep.SliceRatios = append(rep.SliceRatios, f/r)
			}
		}
		for _, c := range contenders {
			r := aggregate(got[c.name])
			r.Name, r.Round = c.name, round
			rep.Runs = append(rep.Runs, r)
			if !o.json {
				fmt.Fprintf(stderr, "round %d %-17s %9.0f req/s  p50 %-9v p99 %-9v %6.1f allocs/op %6.1f µs CPU/op  CPU %3.0f%%  errors %d\n",
					round, c.name, r.RPS, r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.AllocsPerOp, r.CPUPerOpUS, r.CPUPercent, r.Errors)
			}
		}
	}
	rep.summarise(contenders)
	doc, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if o.out != "" {
		if err := os.WriteFile(o.out, append(doc, '\n'), 0o644); err != nil {
			return err
		}
	}
	if o.json {
		_, err := stdout.Write(append(doc, '\n'))
		return err
	}
	rep.markdown(stdout)
	return nil
}

// runResult is one contender's measurement in one round: the sum of its
// slices.
type runResult struct {
	Name        string        `json:"name"`
	Round       int           `json:"round"`
	Ops         int64         `json:"ops"`
	Errors      int64         `json:"errors"`
	FirstError  string        `json:"first_error,omitempty"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	RPS         float64       `json:"rps"`
	P50         time.Duration `json:"p50_ns"`
	P90         time.Duration `json:"p90_ns"`
	P99         time.Duration `json:"p99_ns"`
	AllocsPerOp float64       `json:"allocs_per_op"`
	BytesPerOp  float64       `json:"bytes_per_op"`
	CPUPerOpUS  float64       `json:"cpu_us_per_op"`
	CPUPercent  float64       `json:"cpu_percent"` // process CPU time / elapsed; 200 = both cores
	GCs         uint32        `json:"gcs"`
}

// sample is one measured slice of load.
type sample struct {
	ops, errors    int64
	firstErr       string
	elapsed, cpu   time.Duration
	mallocs, bytes uint64
	gcs            uint32
	lats           []time.Duration
}

func (s sample) rps() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.ops) / s.elapsed.Seconds()
}

// aggregate sums samples into a result; latencies are pooled.
func aggregate(samples []sample) runResult {
	var r runResult
	var cpu time.Duration
	var mallocs, bytes uint64
	var all []time.Duration
	for _, s := range samples {
		r.Ops += s.ops
		r.Errors += s.errors
		if r.FirstError == "" {
			r.FirstError = s.firstErr
		}
		r.Elapsed += s.elapsed
		cpu += s.cpu
		mallocs += s.mallocs
		bytes += s.bytes
		r.GCs += s.gcs
		all = append(all, s.lats...)
	}
	if r.Ops == 0 || r.Elapsed == 0 {
		return r
	}
	slices.Sort(all)
	r.RPS = float64(r.Ops) / r.Elapsed.Seconds()
	r.P50, r.P90, r.P99 = percentile(all, 0.50), percentile(all, 0.90), percentile(all, 0.99)
	r.AllocsPerOp = float64(mallocs) / float64(r.Ops)
	r.BytesPerOp = float64(bytes) / float64(r.Ops)
	r.CPUPerOpUS = float64(cpu.Microseconds()) / float64(r.Ops)
	r.CPUPercent = 100 * cpu.Seconds() / r.Elapsed.Seconds()
	return r
}

// load runs concurrency callers in a closed loop for d (and at most maxOps
// calls), each timing its calls; the sample counts the calls that ended
// without error. Allocations and CPU time are the whole process's (broker,
// servers and callers). The elapsed time runs until the last caller has
// its last answer.
func load(call caller, d time.Duration, concurrency int, maxOps int64, measure bool) sample {
	var (
		stop     atomic.Bool
		started  atomic.Int64
		errs     atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
		lats     = make([][]time.Duration, concurrency)
		ms0, ms1 runtime.MemStats
	)
	if measure {
		runtime.GC()
		runtime.ReadMemStats(&ms0)
	}
	cpu0 := cpuTime()
	ctx := context.Background()
	begin := time.Now()
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	defer timer.Stop()
	for w := range concurrency {
		wg.Go(func() {
			mine := make([]time.Duration, 0, 1<<12)
			id := w * 1_000_000
			for !stop.Load() && started.Add(1) <= maxOps {
				id = w*1_000_000 + (id+1)%1_000_000
				t0 := time.Now()
				err := call(ctx, id)
				lat := time.Since(t0)
				if err != nil {
					if errs.Add(1) == 1 {
						firstErr.Store(err.Error())
					}
					continue
				}
				if measure {
					mine = append(mine, lat)
				}
			}
			lats[w] = mine
		})
	}
	wg.Wait()
	s := sample{elapsed: time.Since(begin), cpu: cpuTime() - cpu0, errors: errs.Load()}
	if e, ok := firstErr.Load().(string); ok {
		s.firstErr = e
	}
	if !measure {
		return s
	}
	runtime.ReadMemStats(&ms1)
	s.lats = slices.Concat(lats...)
	s.ops = int64(len(s.lats))
	s.mallocs, s.bytes = ms1.Mallocs-ms0.Mallocs, ms1.TotalAlloc-ms0.TotalAlloc
	s.gcs = ms1.NumGC - ms0.NumGC
	return s
}

// percentile returns the q-quantile of sorted (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineInfo describes where the figures were taken.
type machineInfo struct {
	CPUs       int    `json:"nproc"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Go         string `json:"go"`
	CPU        string `json:"cpu"`
	OS         string `json:"os"`
}

func machine() machineInfo {
	m := machineInfo{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(),
		OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		m.OS += " (Linux " + strings.TrimSpace(string(out)) + ")"
	}
	return m
}
