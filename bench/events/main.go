// Command events measures durable events through Ferry against raw
// nats.go jetstream doing the same work, in one process, on an embedded
// broker configured identically, in the same run.
//
//	go run ./bench/events                          # both sync modes, 3 rounds, medians
//	go run ./bench/events -n 50000 -n-always 5000 -rounds 5 -json
//	go run ./bench/events -contenders ferry -scenarios consume -modes interval -cpuprofile /tmp/ferry.prof
//	go tool pprof -top -cum /tmp/ferry.prof*
//
// Each measurement starts a ferry.Host with the embedded broker
// (Config{NATSEmbed, DataDir, SyncInterval: 1s} or {SyncAlways}) in a
// fresh temporary store, so both contenders get the same broker, options
// and in-process connection:
//
//   - ferry: a service that Subscribes to the topic with
//     WithConcurrency(64) (or, publishing only, declares it with
//     NewPublisher); events are published with Topic.PublishBatch.
//   - raw: a service with only WithNATS (the host starts the broker); the
//     program creates Ferry's topic stream and consumer configuration
//     itself, publishes with js.PublishMsgAsync (Nats-Msg-Id header,
//     expected stream) waiting for each batch's acks, and consumes with
//     Messages(PullMaxMessages(64)) and 64 workers that json.Unmarshal
//     and Ack.
//
// Scenarios, each on a fresh store: e2e (the consumer runs; timed from the
// first publish to the last handled event), publish (no consumer; timed
// until the last batch is acknowledged), consume (the stream is filled
// first, untimed, while the handlers wait at a gate; timed from opening
// the gate to the last handled event). The contenders alternate within
// each round; the report gives each one's median over the rounds and the
// ratio ferry/raw, and the CPU this process (contender and broker) used
// per event, which depends less on what else the machine runs.
//
// Before each measurement the command waits (-idle-wait) for other
// processes to use under -max-foreign CPUs, and it measures again (up to
// -tries) when they used more, or when handling stalled for over a second
// (the jetstream pull iterator can wait for its 30s heartbeat check while
// the server holds no pull request; see the stall lines on stderr).
//
// Diagnosis of the consume path: the replica contenders (replica.go) and
// diag.sh, which runs each measurement in a process of its own and
// merges the results (-merge).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "bench/events:", err)
		os.Exit(1)
	}
}

type options struct {
	n, nAlways  int
	batch       int
	rounds      int
	tries       int
	idleWait    time.Duration
	maxForeign  float64
	timeout     time.Duration
	dir         string
	json        bool
	out         string
	cpuprofile  string
	contenders  []string
	scenarios   []string
	modes       []syncMode
	progressOut io.Writer
}

var allScenarios = []string{"e2e", "publish", "consume"}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.n, "n", 100_000, "events per measurement with sync every 1s")
	fs.IntVar(&o.nAlways, "n-always", 10_000, "events per measurement with sync always")
	fs.IntVar(&o.batch, "batch", 1000, "events per publish batch (acks awaited per batch)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; the contenders alternate within each")
	fs.IntVar(&o.tries, "tries", 3, "tries of a measurement during which other processes used more than -max-foreign CPUs, or handling stalled for over 1s; the best is kept")
	fs.DurationVar(&o.idleWait, "idle-wait", 20*time.Second, "before each measurement, wait at most this long for other processes to use less than -max-foreign CPUs")
	fs.Float64Var(&o.maxForeign, "max-foreign", 0.2, "CPUs other processes may use during a measurement (see -tries, -idle-wait)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "limit of one measurement")
	fs.StringVar(&o.dir, "dir", "", "where the temporary stores go (default: the system's temporary directory)")
	fs.BoolVar(&o.json, "json", false, "print the results as JSON instead of tables")
	fs.StringVar(&o.out, "out", "", "also write the JSON results to this file")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of each timed section (not the fills): to this file, then FILE.2, FILE.3, …; pass them all to go tool pprof, which merges them")
	contenderList := fs.String("contenders", "ferry,raw", "comma-separated contenders: ferry, raw, and diagnostic replicas of Ferry's consume path (replica.go), such as replica+all-goroutine")
	scenarioList := fs.String("scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios: e2e, publish, consume")
	modeList := fs.String("modes", "interval,always", "comma-separated sync modes: interval (1s), always")
	merge := fs.Bool("merge", false, "print the tables of the -out JSON files named as arguments (runs split across processes, as diag.sh does)")
	roundBase := fs.Int("round-base", 0, "add this to the round numbers recorded (for -merge)")
	tag := fs.String("tag", "", "append @TAG to the contender names recorded (say, a GODEBUG setting; for -merge)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *merge {
		return mergeReports(fs.Args(), &o, stdout)
	}
	if o.n <= 0 || o.nAlways <= 0 || o.batch <= 0 || o.rounds <= 0 || o.tries <= 0 {
		return errors.New("-n, -n-always, -batch, -rounds and -tries must be positive")
	}
	o.progressOut = stderr
	for _, c := range strings.Split(*contenderList, ",") {
		if _, err := starterFor(c); err != nil {
			return fmt.Errorf("-contenders: %w", err)
		}
		o.contenders = append(o.contenders, c)
	}
	for _, s := range strings.Split(*scenarioList, ",") {
		if !slices.Contains(allScenarios, s) {
			return fmt.Errorf("-scenarios: unknown %q", s)
		}
		o.scenarios = append(o.scenarios, s)
	}
	for _, m := range strings.Split(*modeList, ",") {
		switch m {
		case "interval":
			o.modes = append(o.modes, syncInterval)
		case "always":
			o.modes = append(o.modes, syncAlways)
		default:
			return fmt.Errorf("-modes: unknown %q", m)
		}
	}
	if o.cpuprofile != "" {
		timedProfile = &profiler{path: o.cpuprofile}
		defer func() { timedProfile = nil }()
	}

	var results []result
	for round := range o.rounds {
		for _, mode := range o.modes {
			n := o.n
			if mode.Always {
				n = o.nAlways
			}
			for si, sc := range o.scenarios {
				// Rotate the order from one round and scenario to the next.
				order := slices.Clone(o.contenders)
				k := (round + si) % len(order)
				order = append(order[k:], order[:k]...)
				for _, c := range order {
					r, err := measure(ctx, &o, c, mode, sc, n)
					if err != nil {
						return fmt.Errorf("round %d, %s, %s, %s: %w", round+1, mode.Name, sc, c, err)
					}
					r.Round = *roundBase + round + 1
					if *tag != "" {
						r.Contender += "@" + *tag
					}
					fmt.Fprintf(stderr, "round %d  %-11s %-7s %-5s %9.0f msgs/s  %6.2f µs CPU/msg  foreign %.2f CPUs  redelivered %d  stall %.2fs  tries %d\n",
						r.Round, r.Mode, r.Scenario, r.Contender, r.Rate(), r.CPUPerMsg()*1e6, r.Foreign/r.Wall, r.Redelivered, r.StallSec, r.Tries)
					results = append(results, r)
				}
			}
		}
	}

	if *tag != "" {
		for i, c := range o.contenders {
			o.contenders[i] = c + "@" + *tag
		}
	}
	env := describeMachine()
	if o.out != "" {
		data, err := json.MarshalIndent(report{Env: env, Results: results}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.out, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report{Env: env, Results: results})
	}
	printTables(stdout, &o, env, results)
	if len(o.contenders) > 2 || !slices.Contains(o.contenders, "ferry") {
		printContenders(stdout, &o, results)
	}
	return nil
}

// result is one measurement.
type result struct {
	Mode      string `json:"mode"`
	Scenario  string `json:"scenario"`
	Contender string `json:"contender"`
	Round     int    `json:"round"`
	N         int    `json:"n"`
	outcome
	Tries        int     `json:"tries"`
	StalledTries int     `json:"stalled_tries"`
	IdleWaitSec  float64 `json:"idle_wait_sec"`
}

// Rate is events per second of wall time.
func (r result) Rate() float64 { return float64(r.N) / r.Wall }

// CPUPerMsg is this process's CPU seconds (contender and broker) per event.
func (r result) CPUPerMsg() float64 { return r.Self / float64(r.N) }

type report struct {
	Env     map[string]string `json:"env"`
	Results []result          `json:"results"`
}

// measure runs one measurement, again (up to -tries) when other processes
// used more than -max-foreign CPUs during it or the consumer stalled for
// more than a second, and keeps the best: unstalled first, then the
// quietest.
func measure(ctx context.Context, o *options, contender string, mode syncMode, sc string, n int) (result, error) {
	var best result
	stalls := 0
	worse := func(a, b result) bool { // a worse than b
		if (a.StallSec > maxStall) != (b.StallSec > maxStall) {
			return a.StallSec > maxStall
		}
		return a.Foreign/a.Wall > b.Foreign/b.Wall
	}
	for try := 1; try <= o.tries; try++ {
		waited, _ := waitIdle(ctx, o.idleWait, o.maxForeign)
		r, err := measureOnce(ctx, o, contender, mode, sc, n)
		if err != nil {
			return r, err
		}
		r.Tries, r.IdleWaitSec = try, waited.Seconds()
		if r.StallSec > maxStall {
			stalls++
		}
		if try == 1 || worse(best, r) {
			best = r
		}
		if best.Foreign/best.Wall <= o.maxForeign && best.StallSec <= maxStall {
			break
		}
	}
	best.StalledTries = stalls
	return best, nil
}

// maxStall is the longest pause in handling a measurement may have
// without being tried again (see watch).
const maxStall = 1.0

func measureOnce(ctx context.Context, o *options, contender string, mode syncMode, sc string, n int) (result, error) {
	r := result{Mode: mode.Name, Scenario: sc, Contender: contender, N: n}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	dir, err := os.MkdirTemp(o.dir, "ferry-bench-events-*")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	start, err := starterFor(contender)
	if err != nil {
		return r, err
	}
	r.outcome, err = runScenario(ctx, start, dir, mode, sc, n, o.batch, o.progressOut)
	return r, err
}

// outcome is what one measurement observed.
type outcome struct {
	usage
	// Redelivered counts deliveries beyond the first of each event.
	Redelivered int `json:"redelivered"`
	// StallSec is the longest time no event was handled while some were
	// still expected (sampled every 50ms).
	StallSec float64 `json:"stall_sec"`
}

// runScenario starts the contender in dir and measures sc with n events,
// then verifies the stream holds n events and (when consuming) that every
// delivery was acknowledged. A stall of more than 2s is reported on
// diag, with the consumer's state.
func runScenario(ctx context.Context, start starter, dir string, mode syncMode, sc string, n, batchSize int, diag io.Writer) (out outcome, err error) {
	s := newSink(sc != "consume")
	inst, err := start(ctx, dir, mode, sc != "publish", s)
	if err != nil {
		return out, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err = errors.Join(err, inst.close(sctx))
	}()
	events := newEvents(n)
	if sc == "consume" {
		// Fill the stream, untimed; the first deliveries wait at the gate.
		if err := inst.publish(ctx, events, batchSize); err != nil {
			return out, fmt.Errorf("fill: %w", err)
		}
	}
	runtime.GC()

	stopProfile := timedProfile.start()
	before := sampleCPU()
	var end cpuSample
	switch sc {
	case "publish":
		err = inst.publish(ctx, events, batchSize)
		end = sampleCPU()
	case "consume":
		done := s.expect(n)
		stopWatch := watch(ctx, s, inst, diag, &out.StallSec)
		s.open()
		end, err = wait(ctx, done, nil)
		stopWatch()
	case "e2e":
		done := s.expect(n)
		stopWatch := watch(ctx, s, inst, diag, &out.StallSec)
		published := make(chan error, 1)
		go func() { published <- inst.publish(ctx, events, batchSize) }()
		end, err = wait(ctx, done, published)
		stopWatch()
	}
	out.usage = between(before, end)
	if perr := stopProfile(); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return out, err
	}

	// Verify, untimed: every event stored once, every delivery acknowledged.
	deadline := time.Now().Add(15 * time.Second)
	for {
		redelivered, pending, msgs, err := inst.state(ctx)
		switch {
		case err != nil:
			return out, err
		case msgs != uint64(n):
			return out, fmt.Errorf("stream holds %d events, want %d", msgs, n)
		case pending == 0:
			out.Redelivered = redelivered
			return out, nil
		case time.Now().After(deadline):
			return out, fmt.Errorf("%d deliveries still unacknowledged 15s after the last was handled", pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// watch samples the sink's count every 50ms until stopped, keeping the
// longest stretch without progress in *stall; past 2s it reports the
// consumer's state on diag once.
func watch(ctx context.Context, s *sink, inst instance, diag io.Writer, stall *float64) (stop func()) {
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		b := s.cur.Load()
		last, since, reported := b.count.Load(), time.Now(), false
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case now := <-tick.C:
				c := b.count.Load()
				if c != last || c >= b.want {
					last, since = c, now
					continue
				}
				d := now.Sub(since)
				*stall = max(*stall, d.Seconds())
				if d > 2*time.Second && !reported && diag != nil {
					reported = true
					sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					fmt.Fprintf(diag, "stall: %d of %d events handled, none for %v; consumer: %s\n", c, b.want, d.Round(time.Millisecond),
						describeConsumer(sctx, inst.conn()))
					cancel()
				}
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
	}
}

// wait waits until done closes, and returns the CPU sample taken then;
// with published, it also waits for the publisher's result (a failure
// ends the wait early).
func wait(ctx context.Context, done <-chan struct{}, published <-chan error) (end cpuSample, err error) {
	for done != nil || published != nil {
		select {
		case <-done:
			end = sampleCPU()
			done = nil
		case err := <-published:
			if err != nil {
				return end, fmt.Errorf("publish: %w", err)
			}
			published = nil
		case <-ctx.Done():
			return end, fmt.Errorf("events not all handled: %w", ctx.Err())
		}
	}
	return end, nil
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

// mergeReports prints the tables of several -out files together: their
// modes, scenarios and contenders in the order they first appear.
func mergeReports(files []string, o *options, stdout io.Writer) error {
	if len(files) == 0 {
		return errors.New("-merge: name the JSON files")
	}
	var all report
	o.contenders, o.scenarios, o.modes, o.rounds = nil, nil, nil, 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var rep report
		if err := json.Unmarshal(data, &rep); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if all.Env == nil {
			all.Env = rep.Env
		}
		for _, r := range rep.Results {
			if !slices.Contains(o.contenders, r.Contender) {
				o.contenders = append(o.contenders, r.Contender)
			}
			if !slices.Contains(o.scenarios, r.Scenario) {
				o.scenarios = append(o.scenarios, r.Scenario)
			}
			if !slices.ContainsFunc(o.modes, func(m syncMode) bool { return m.Name == r.Mode }) {
				m := syncInterval
				if r.Mode == syncAlways.Name {
					m = syncAlways
				}
				o.modes = append(o.modes, m)
			}
			if m := r.Mode; m == syncAlways.Name {
				o.nAlways = r.N
			} else {
				o.n = r.N
			}
			o.rounds = max(o.rounds, r.Round)
			all.Results = append(all.Results, r)
		}
	}
	printTables(stdout, o, all.Env, all.Results)
	printContenders(stdout, o, all.Results)
	return nil
}
