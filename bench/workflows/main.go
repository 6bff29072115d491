// Command workflows measures durable workflows on Ferry against DBOS
// Transact (PostgreSQL) doing the same work, in the same run.
//
//	cd bench/workflows && go run .                 # every contender, 3 rounds, medians
//	go run . -n 5000 -d 60s -rounds 5 -json
//	go run . -contenders ferry-interval -rounds 1 -cpuprofile /tmp/ferry.prof
//	go tool pprof -top -cum /tmp/ferry.prof*
//
// The workflow, for every contender: three steps in sequence, each a
// trivial function that returns a small value (step i returns in.N+i),
// and a result that is their sum. Each step's result is stored durably by
// the contender before the next step runs, as a durable workflow does.
//
// The workload: up to -n runs (and for at most -d) started by 64 producer
// goroutines, each starting one run and waiting until it observes the run
// succeeded before starting the next. A measurement is timed from the
// first start to the moment every producer has observed its last run
// succeed. It reports runs per second over that time, the start latency
// (the start call, which returns once the run is stored), the run latency
// (from the start call to the moment the caller observes the run
// succeeded), the CPU used per run by this process and by the database
// server's processes, and what each contender writes per run.
//
// The contenders:
//
//   - ferry-interval, ferry-always: a ferry.Host with the embedded broker
//     in a fresh temporary store (Config{NATSEmbed, DataDir} with the
//     default 1s sync interval, or SyncAlways), one service with
//     HandleWorkflow(JobConcurrency(64)); Workflow.Start and Workflow.Wait
//     through a client on the host's in-process connection.
//   - dbos: DBOS Transact for Go on PostgreSQL (-pg, trust auth) in a
//     scratch database (-pg-db, dropped and created; its tables truncated
//     before each measurement), the workflow registered with
//     RegisterWorkflow, each step a RunAsStep, started with RunWorkflow and
//     awaited with the handle's GetResult; DBOS's defaults otherwise (a
//     pool of 20 connections unless -pg-conns says otherwise).
//
// A contender whose server does not answer is skipped, with a message on
// stderr; under CI=true that is an error. The contenders alternate
// within each round, in an order that rotates from round to round; the
// report gives each one's median over the rounds and the ratio of its
// rate to the reference's (-ref) in the same run.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/ferrygo/ferry/bench/internal/procstat"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "bench/workflows:", err)
		os.Exit(1)
	}
}

const (
	producers   = 64 // goroutines starting runs, one run at a time each
	concurrency = 64 // runs in progress at once in a worker (Ferry)
	warmRuns    = 64 // untimed runs before each measurement
	steps       = 3  // steps per run
)

type options struct {
	n          int
	d          time.Duration
	rounds     int
	timeout    time.Duration
	idleWait   time.Duration
	maxForeign float64
	dir        string
	ref        string
	pg         string
	pgDB       string
	pgConns    int
	json       bool
	cpuprofile string
	contenders []string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("workflows", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.n, "n", 2000, "runs per measurement (fewer if -d passes first)")
	fs.DurationVar(&o.d, "d", 20*time.Second, "stop starting runs after this long (the runs started are then waited for)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; the contenders alternate within each")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Minute, "limit of one measurement, waiting included")
	fs.DurationVar(&o.idleWait, "idle-wait", 10*time.Second, "before each measurement, wait at most this long for other processes to use less than -max-foreign CPUs")
	fs.Float64Var(&o.maxForeign, "max-foreign", 0.3, "CPUs other processes may use before a measurement starts (see -idle-wait)")
	fs.StringVar(&o.dir, "dir", "", "where Ferry's temporary stores go (default: the system's temporary directory)")
	fs.StringVar(&o.ref, "ref", "dbos", "the contender the ratios compare to")
	fs.StringVar(&o.pg, "pg", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL to connect to (for creating the scratch database)")
	fs.StringVar(&o.pgDB, "pg-db", "ferry_bench_workflows", "scratch database for DBOS: dropped and created")
	fs.IntVar(&o.pgConns, "pg-conns", 0, "connections of DBOS's pool (0: DBOS's default, 20)")
	fs.BoolVar(&o.json, "json", false, "print the results as JSON instead of tables")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of each timed section to this file, then FILE.2, …; pass them all to go tool pprof")
	list := fs.String("contenders", strings.Join(defaultContenders, ","), "comma-separated contenders: "+strings.Join(contenderNames(), ", "))
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.n <= 0 || o.rounds <= 0 || o.d <= 0 {
		return errors.New("-n, -d and -rounds must be positive")
	}
	for _, c := range strings.Split(*list, ",") {
		if _, ok := contenders[c]; !ok {
			return fmt.Errorf("-contenders: unknown %q", c)
		}
		o.contenders = append(o.contenders, c)
	}
	if o.cpuprofile != "" {
		timedProfile = &profiler{path: o.cpuprofile}
		defer func() { timedProfile = nil }()
	}

	// Prepare each contender's server; skip those that do not answer.
	var active []*contender
	durability := map[string]string{}
	env := describeMachine()
	for _, name := range o.contenders {
		c := contenders[name]
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		d, err := c.prepare(pctx, &o)
		cancel()
		if err != nil {
			if os.Getenv("CI") == "true" {
				return fmt.Errorf("%s: %w", name, err)
			}
			fmt.Fprintf(stderr, "skipping %s: %v\n", name, err)
			continue
		}
		if c.cleanup != nil {
			defer c.cleanup(context.WithoutCancel(ctx), &o)
		}
		durability[name] = d
		active = append(active, c)
	}
	if len(active) == 0 {
		return errors.New("no contender could run")
	}

	var results []result
	for round := range o.rounds {
		order := slices.Clone(active)
		k := round % len(order)
		order = append(order[k:], order[:k]...)
		for _, c := range order {
			waited, _ := procstat.WaitIdle(ctx, o.idleWait, o.maxForeign)
			r, err := measure(ctx, &o, c)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, c.name, err)
			}
			r.Round, r.IdleWaitSec = round+1, waited.Seconds()
			fmt.Fprintf(stderr, "round %d  %-15s %6d runs %7.0f runs/s  start p50 %6.2fms p99 %7.2fms  run p50 %7.2fms p99 %8.2fms  %7.1f µs CPU/run  foreign %.2f CPUs\n",
				r.Round, r.Contender, r.N, r.Rate(), r.StartP50*1e3, r.StartP99*1e3, r.RunP50*1e3, r.RunP99*1e3,
				r.CPUPerRun()*1e6, r.Foreign/r.Wall)
			results = append(results, r)
		}
	}
	names := make([]string, 0, len(active))
	for _, c := range active {
		names = append(names, c.name)
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report{Env: env, Durability: durability, Results: results})
	}
	printReport(stdout, &o, names, durability, env, results)
	return nil
}

// result is one measurement.
type result struct {
	Contender string `json:"contender"`
	Round     int    `json:"round"`
	// N is the runs started and observed succeeded in the timed section.
	N int `json:"n"`
	procstat.Usage
	StartP50 float64 `json:"start_p50_sec"`
	StartP99 float64 `json:"start_p99_sec"`
	RunP50   float64 `json:"run_p50_sec"`
	RunP99   float64 `json:"run_p99_sec"`
	// ExtraSteps counts step executions beyond three per run.
	ExtraSteps int `json:"extra_steps"`
	// Writes is what the contender wrote, per run (see each contender's
	// counters).
	Writes      map[string]float64 `json:"writes_per_run"`
	IdleWaitSec float64            `json:"idle_wait_sec"`
}

// Rate is runs per second of wall time.
func (r result) Rate() float64 { return float64(r.N) / r.Wall }

// CPUPerRun is the CPU seconds per run of this process and the server's.
func (r result) CPUPerRun() float64 { return (r.Self + r.Server) / float64(r.N) }

type report struct {
	Env        map[string]string `json:"env"`
	Durability map[string]string `json:"durability"`
	Results    []result          `json:"results"`
}

// input is every contender's workflow input.
type input struct {
	N int `json:"n"`
}

// output is every contender's workflow result: the sum of its steps'
// results, (N+1)+(N+2)+(N+3).
type output struct {
	Sum int `json:"sum"`
}

// want is the result of the run with input n.
func want(n int) int { return 3*n + 6 }

// sink counts the step executions of every run.
type sink struct {
	steps atomic.Int64
}

// step is step i's work for input n: note it ran, return n+i.
func (s *sink) step(n, i int) int {
	s.steps.Add(1)
	return n + i
}

// measure runs one measurement: start the contender, run the warm-up runs
// (untimed), then the timed section, then check the runs' records.
func measure(ctx context.Context, o *options, c *contender) (r result, err error) {
	r = result{Contender: c.name}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	s := &sink{}
	inst, err := c.start(ctx, o, s)
	if err != nil {
		return r, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err = errors.Join(err, inst.close(sctx))
	}()

	// Warm up: connections, streams, prepared statements, the first fetch.
	// Warm-up inputs start at 1e9, away from the timed ones.
	if _, _, _, err := produce(ctx, inst, 1_000_000_000, warmRuns, time.Minute); err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	}
	before, err := inst.counters(ctx)
	if err != nil {
		return r, err
	}
	steps0 := s.steps.Load()
	runtime.GC()

	stopProfile := timedProfile.start()
	cpu0 := procstat.SampleCPU(c.server)
	n, startLat, runLat, err := produce(ctx, inst, 0, o.n, o.d)
	cpu1 := procstat.SampleCPU(c.server)
	if perr := stopProfile(); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return r, err
	}
	r.Usage = cpu0.To(cpu1)
	r.N = n
	r.ExtraSteps = int(s.steps.Load()-steps0) - steps*n

	after, err := inst.counters(ctx)
	if err != nil {
		return r, err
	}
	r.Writes = map[string]float64{}
	for k, v := range after {
		r.Writes[k] = (v - before[k]) / float64(n)
	}
	r.StartP50, r.StartP99 = quantile(startLat, 0.5), quantile(startLat, 0.99)
	r.RunP50, r.RunP99 = quantile(runLat, 0.5), quantile(runLat, 0.99)
	if err := inst.verify(ctx, warmRuns+n); err != nil {
		return r, fmt.Errorf("verify: %w", err)
	}
	return r, nil
}

// produce runs inputs base…base+n-1 from 64 goroutines, each starting one
// run and waiting for its result before starting the next, until all ran
// or d passed (no run starts after d); it returns how many ran (every one
// succeeded with the right result), and each one's start and run latency
// in seconds.
func produce(ctx context.Context, inst instance, base, n int, d time.Duration) (int, []float64, []float64, error) {
	startLat, runLat := make([]float64, n), make([]float64, n)
	deadline := time.Now().Add(d)
	var next atomic.Int64
	var stopped atomic.Bool
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	fail := func(err error) {
		firstErr.CompareAndSwap(nil, &err)
		stopped.Store(true)
	}
	for range producers {
		wg.Go(func() {
			for !stopped.Load() {
				if time.Now().After(deadline) {
					stopped.Store(true)
					return
				}
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				in := base + i
				t0 := time.Now()
				wait, err := inst.start(ctx, in)
				if err != nil {
					fail(fmt.Errorf("start run %d: %w", in, err))
					return
				}
				t1 := time.Now()
				sum, err := wait(ctx)
				if err != nil {
					fail(fmt.Errorf("run %d: %w", in, err))
					return
				}
				t2 := time.Now()
				if sum != want(in) {
					fail(fmt.Errorf("run %d: result %d, want %d", in, sum, want(in)))
					return
				}
				startLat[i], runLat[i] = t1.Sub(t0).Seconds(), t2.Sub(t0).Seconds()
			}
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return 0, nil, nil, *p
	}
	// Every number taken ran.
	count := min(int(next.Load()), n)
	return count, startLat[:count], runLat[:count], nil
}

// timedProfile, when set, profiles the timed sections.
var timedProfile *profiler

// profiler writes one CPU profile per timed section.
type profiler struct {
	path string
	n    int
}

// start starts profiling into the next file; the function it returns
// stops and closes it. A nil profiler does nothing.
func (p *profiler) start() (stop func() error) {
	if p == nil {
		return func() error { return nil }
	}
	p.n++
	path := p.path
	if p.n > 1 {
		path = fmt.Sprintf("%s.%d", p.path, p.n)
	}
	f, err := os.Create(path)
	if err != nil {
		return func() error { return err }
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() error { return err }
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}
}
