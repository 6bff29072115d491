// Command jobs measures durable background jobs on Ferry against River
// (PostgreSQL) and asynq (Redis) doing the same work, in the same run.
//
//	cd bench/jobs && go run .                      # every contender, 3 rounds, medians
//	go run . -n 50000 -d 60s -rounds 5 -json
//	go run . -contenders ferry-interval -rounds 1 -cpuprofile /tmp/ferry.prof
//	go tool pprof -top -cum /tmp/ferry.prof*
//
// The workload, for every contender: up to -n jobs (and for at most -d)
// enqueued by 64 producer goroutines, each enqueuing one job at a time
// and waiting for it to be stored; a worker of concurrency 64 whose
// handler only notes when it started. A measurement is timed from the
// first enqueue to the moment every job enqueued is recorded as done
// (Ferry: its record written succeeded and its message acknowledged;
// River: its row completed; asynq: its task done). It reports jobs per
// second over that time, the enqueue latency (the call, per job), the
// pickup latency (from the start of the enqueue call to the start of the
// handler), the CPU used per job by this process and by the database
// server's processes, and what each contender writes per job.
//
// The contenders:
//
//   - ferry-interval, ferry-always: a ferry.Host with the embedded broker
//     in a fresh temporary store (Config{NATSEmbed, DataDir} with the
//     default 1s sync interval, or SyncAlways), one service with
//     HandleJob(JobConcurrency(64)), and Job.Enqueue through a client on
//     the host's in-process connection.
//   - river: River with riverpgxv5 on PostgreSQL (-pg, trust auth) in a
//     scratch database (-pg-db, dropped and created, River's migrations
//     run with rivermigrate; river_job is truncated before each
//     measurement), a queue of MaxWorkers 64, Client.Insert on a pgx pool
//     of -pg-conns connections, River's defaults otherwise.
//   - asynq: asynq on Redis (-redis) in a scratch DB number (-redis-db,
//     flushed before each measurement), Server{Concurrency: 64},
//     Client.EnqueueContext, asynq's defaults otherwise.
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
		fmt.Fprintln(os.Stderr, "bench/jobs:", err)
		os.Exit(1)
	}
}

const (
	producers   = 64 // enqueuing goroutines
	concurrency = 64 // worker slots
	warmJobs    = 64 // untimed jobs before each measurement
)

type options struct {
	n          int
	d          time.Duration
	rate       float64
	rounds     int
	timeout    time.Duration
	idleWait   time.Duration
	maxForeign float64
	dir        string
	ref        string
	pg         string
	pgDB       string
	pgConns    int
	redis      string
	redisDB    int
	json       bool
	cpuprofile string
	contenders []string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("jobs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.n, "n", 20_000, "jobs per measurement (fewer if -d passes first)")
	fs.DurationVar(&o.d, "d", 30*time.Second, "stop enqueuing after this long (the jobs enqueued are then waited for)")
	fs.Float64Var(&o.rate, "rate", 0, "enqueue at most this many jobs per second, spread evenly (0: as fast as the producers go); a rate the contender keeps up with makes the pickup latency that of a queue that does not grow")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; the contenders alternate within each")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Minute, "limit of one measurement, waiting included")
	fs.DurationVar(&o.idleWait, "idle-wait", 10*time.Second, "before each measurement, wait at most this long for other processes to use less than -max-foreign CPUs")
	fs.Float64Var(&o.maxForeign, "max-foreign", 0.3, "CPUs other processes may use before a measurement starts (see -idle-wait)")
	fs.StringVar(&o.dir, "dir", "", "where Ferry's temporary stores go (default: the system's temporary directory)")
	fs.StringVar(&o.ref, "ref", "river", "the contender the ratios compare to")
	fs.StringVar(&o.pg, "pg", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL to connect to (for creating the scratch database)")
	fs.StringVar(&o.pgDB, "pg-db", "ferry_bench_jobs", "scratch database for River: dropped and created")
	fs.IntVar(&o.pgConns, "pg-conns", 72, "connections of River's pgx pool (the 64 producers each hold one while inserting)")
	fs.StringVar(&o.redis, "redis", "127.0.0.1:6379", "Redis for asynq")
	fs.IntVar(&o.redisDB, "redis-db", 13, "scratch Redis DB number for asynq: flushed")
	fs.BoolVar(&o.json, "json", false, "print the results as JSON instead of tables")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of each timed section to this file, then FILE.2, …; pass them all to go tool pprof")
	list := fs.String("contenders", "ferry-interval,ferry-always,river,asynq", "comma-separated contenders: "+strings.Join(contenderNames(), ", "))
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
			fmt.Fprintf(stderr, "round %d  %-15s %6d jobs %8.0f jobs/s  enqueue p50 %6.2fms p99 %7.2fms  pickup p50 %7.2fms p99 %8.2fms  %6.1f µs CPU/job  foreign %.2f CPUs\n",
				r.Round, r.Contender, r.N, r.Rate(), r.EnqueueP50*1e3, r.EnqueueP99*1e3, r.PickupP50*1e3, r.PickupP99*1e3,
				r.CPUPerJob()*1e6, r.Foreign/r.Wall)
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
	// N is the jobs enqueued and done in the timed section.
	N int `json:"n"`
	procstat.Usage
	EnqueueP50 float64 `json:"enqueue_p50_sec"`
	EnqueueP99 float64 `json:"enqueue_p99_sec"`
	PickupP50  float64 `json:"pickup_p50_sec"`
	PickupP99  float64 `json:"pickup_p99_sec"`
	// Duplicates counts handler runs beyond the first of each job.
	Duplicates int `json:"duplicates"`
	// Writes is what the contender wrote, per job (see each contender's
	// counters).
	Writes      map[string]float64 `json:"writes_per_job"`
	IdleWaitSec float64            `json:"idle_wait_sec"`
}

// Rate is jobs per second of wall time.
func (r result) Rate() float64 { return float64(r.N) / r.Wall }

// CPUPerJob is the CPU seconds per job of this process and the server's.
func (r result) CPUPerJob() float64 { return (r.Self + r.Server) / float64(r.N) }

type report struct {
	Env        map[string]string `json:"env"`
	Durability map[string]string `json:"durability"`
	Results    []result          `json:"results"`
}

// payload is every contender's job input: its sequence number (negative
// for warm-up jobs) and when its enqueue started (Unix nanoseconds).
type payload struct {
	Seq int   `json:"seq"`
	At  int64 `json:"at"`
}

// sink notes the handler runs: the first start of each job, and the
// warm-up jobs.
type sink struct {
	started []atomic.Int64 // per job: the pickup latency in ns, or 0
	handled atomic.Int64
	dups    atomic.Int64
	warm    atomic.Int64
}

func newSink(n int) *sink { return &sink{started: make([]atomic.Int64, n)} }

// run is the handler's work: note the start.
func (s *sink) run(p *payload) {
	now := time.Now().UnixNano()
	if p.Seq < 0 {
		s.warm.Add(1)
		return
	}
	if p.Seq >= len(s.started) {
		return
	}
	if s.started[p.Seq].CompareAndSwap(0, max(1, now-p.At)) {
		s.handled.Add(1)
	} else {
		s.dups.Add(1)
	}
}

// measure runs one measurement: start the contender, run the warm-up jobs
// (untimed), then the timed section, then check the jobs' records.
func measure(ctx context.Context, o *options, c *contender) (r result, err error) {
	r = result{Contender: c.name}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	s := newSink(o.n)
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
	for i := range warmJobs {
		if err := inst.enqueue(ctx, &payload{Seq: -1 - i, At: time.Now().UnixNano()}); err != nil {
			return r, fmt.Errorf("warm-up enqueue: %w", err)
		}
	}
	if err := waitDone(ctx, inst, func() bool { return s.warm.Load() >= warmJobs }, warmJobs); err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	}
	before, err := inst.counters(ctx)
	if err != nil {
		return r, err
	}
	runtime.GC()

	stopProfile := timedProfile.start()
	cpu0 := procstat.SampleCPU(c.server)
	enqueued, enqLat, err := produce(ctx, inst, o.n, o.d, o.rate)
	if err == nil {
		err = waitDone(ctx, inst, func() bool { return s.handled.Load() >= int64(enqueued) }, warmJobs+enqueued)
	}
	cpu1 := procstat.SampleCPU(c.server)
	if perr := stopProfile(); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return r, err
	}
	r.Usage = cpu0.To(cpu1)
	r.N = enqueued

	after, err := inst.counters(ctx)
	if err != nil {
		return r, err
	}
	r.Writes = map[string]float64{}
	for k, v := range after {
		r.Writes[k] = (v - before[k]) / float64(enqueued)
	}
	pickup := make([]float64, 0, enqueued)
	for i := range enqueued {
		pickup = append(pickup, float64(s.started[i].Load())/1e9)
	}
	r.EnqueueP50, r.EnqueueP99 = quantile(enqLat, 0.5), quantile(enqLat, 0.99)
	r.PickupP50, r.PickupP99 = quantile(pickup, 0.5), quantile(pickup, 0.99)
	r.Duplicates = int(s.dups.Load())
	if err := inst.verify(ctx, warmJobs+enqueued); err != nil {
		return r, fmt.Errorf("verify: %w", err)
	}
	return r, nil
}

// produce enqueues jobs 0…n-1 from 64 goroutines, each one at a time,
// until all are enqueued or d passed, job i no earlier than i/rate seconds
// after the start when rate is positive; it returns how many were
// enqueued (a prefix of the sequence) and each one's enqueue latency in
// seconds.
func produce(ctx context.Context, inst instance, n int, d time.Duration, rate float64) (int, []float64, error) {
	lat := make([]float64, n)
	begin := time.Now()
	deadline := begin.Add(d)
	var next atomic.Int64
	var stopped atomic.Bool
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
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
				if rate > 0 {
					if wait := time.Until(begin.Add(time.Duration(float64(i) / rate * 1e9))); wait > 0 {
						time.Sleep(wait)
					}
				}
				start := time.Now()
				if err := inst.enqueue(ctx, &payload{Seq: i, At: start.UnixNano()}); err != nil {
					err = fmt.Errorf("enqueue job %d: %w", i, err)
					firstErr.CompareAndSwap(nil, &err)
					stopped.Store(true)
					return
				}
				lat[i] = time.Since(start).Seconds()
			}
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return 0, nil, *p
	}
	// Every number taken was enqueued.
	count := min(int(next.Load()), n)
	return count, lat[:count], nil
}

// waitDone waits until handled says every job ran and the contender
// records total jobs done (warm-up included), polling.
func waitDone(ctx context.Context, inst instance, handled func() bool, total int) error {
	for !handled() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("jobs not all handled: %w", ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
	for {
		done, err := inst.done(ctx)
		if err != nil {
			return err
		}
		if done >= total {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d jobs recorded done: %w", done, total, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
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
