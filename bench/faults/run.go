package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/internal/broker"
	"github.com/ferrygo/ferry/internal/reliability"
)

// The scenarios: which processes the faults kill.
const (
	scenarioRandom        = "random-faults"
	scenarioBrokerRestart = "broker-restart"
)

// Options are a run's settings; the flags set them.
type Options struct {
	// Scenario is random-faults (service processes and the broker's) or
	// broker-restart (the broker's process only); Name is the record's
	// scenario ID (default: Scenario).
	Scenario, Name string
	// Seed decides the plan; Ops and Kills its size.
	Seed       int64
	Ops, Kills int
	// Rate is how many operations the driver issues per second, Workers
	// how many at once.
	Rate    float64
	Workers int
	// Duration caps the whole run; Settle how long the checker waits for
	// acknowledged work to be recorded after the driver and the faults
	// are done.
	Duration, Settle time.Duration
	// Records is the directory to write the record to ("": none).
	Records string
	// DataDir holds the broker's store, the acks file and the processes'
	// logs ("": a temporary directory, removed after a clean run).
	DataDir string
	// Bin is the program the system's processes run (this one, with the
	// argument "serve"); Command reproduces the run, for the record.
	Bin, Command string
	// Logf reports progress (nil: silent).
	Logf func(format string, args ...any)
}

func defaultOptions() Options {
	return Options{Scenario: scenarioRandom, Ops: 2000, Kills: 12, Rate: 50, Workers: 16,
		Duration: 10 * time.Minute, Settle: 90 * time.Second}
}

func (o *Options) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.Scenario, "scenario", o.Scenario, "random-faults (service processes and the broker's) or broker-restart (the broker's process only)")
	fs.StringVar(&o.Name, "name", o.Name, "the record's scenario ID (default: the scenario)")
	fs.Int64Var(&o.Seed, "seed", o.Seed, "the seed of the plan of operations and faults (default: time-based, printed)")
	fs.IntVar(&o.Ops, "ops", o.Ops, "how many operations the driver issues")
	fs.IntVar(&o.Kills, "kills", o.Kills, "how many SIGKILLs the controller sends")
	fs.Float64Var(&o.Rate, "rate", o.Rate, "operations issued per second")
	fs.IntVar(&o.Workers, "workers", o.Workers, "operations in flight at most")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "the cap on the whole run")
	fs.DurationVar(&o.Settle, "settle", o.Settle, "how long the checker waits for acknowledged work to be recorded")
	fs.StringVar(&o.Records, "records", o.Records, "write the run's record to this directory (docs/reliability/records)")
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "an empty directory for the store, the acks and the logs (default: a temporary one)")
}

// command is the command line that replays the run's plan.
func (o *Options) command(prefix string) string {
	d := defaultOptions()
	parts := []string{prefix, "-scenario", o.Scenario, "-seed", fmt.Sprint(o.Seed), "-ops", fmt.Sprint(o.Ops), "-kills", fmt.Sprint(o.Kills)}
	if o.Rate != d.Rate {
		parts = append(parts, "-rate", fmt.Sprint(o.Rate))
	}
	if o.Workers != d.Workers {
		parts = append(parts, "-workers", fmt.Sprint(o.Workers))
	}
	return strings.Join(parts, " ")
}

func (o *Options) check() error {
	switch {
	case o.Scenario != scenarioRandom && o.Scenario != scenarioBrokerRestart:
		return fmt.Errorf("-scenario %q: want %s or %s", o.Scenario, scenarioRandom, scenarioBrokerRestart)
	case o.Ops < 1 || o.Kills < 0 || o.Rate <= 0 || o.Workers < 1:
		return errors.New("-ops, -rate and -workers must be positive, -kills not negative")
	case o.Bin == "":
		return errors.New("no program to run the system's processes with")
	}
	return nil
}

// Outcome is what a run did and found.
type Outcome struct {
	Options  Options
	Plan     plan
	Injected []injected
	Verdict  *verdict
	// Issued counts the operations the driver started, Retries its
	// failed attempts.
	Issued, Retries int64
	// RetriedByKind counts them per kind, in opKinds' order.
	RetriedByKind [4]int64
	// Settled is how long the checker waited; Wall the whole run.
	Settled, Wall time.Duration
	// StoredEvents counts the events the topic's stream holds.
	StoredEvents uint64
	// BeforeBrokerKill counts the operations acknowledged before the
	// broker's process was last killed (all of them found, unless lost).
	BeforeBrokerKill int
	// Resumed is the longest the driver waited for its next ack once a
	// restarted broker's process was ready (its connection's reconnect
	// backoff, the services' and the retries').
	Resumed time.Duration
	// Stops lists the processes that did not stop cleanly on SIGTERM.
	Stops  []string
	Record reliability.Record
	// Dir is the run's directory (kept when the run failed).
	Dir string
}

// Run runs the system, the driver, the faults and the checker, writes the
// record when o.Records is set, and reports a run that lost or doubled
// work, or could not finish, as an error.
func Run(ctx context.Context, o Options) (*Outcome, error) {
	if o.Name == "" {
		o.Name = o.Scenario
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	begin := time.Now()
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	share := 1.0 / 3
	if o.Scenario == scenarioBrokerRestart {
		share = 1
	}
	out := &Outcome{Options: o, Plan: newPlan(o.Seed, o.Ops, o.Kills, share)}
	o.Logf("seed %d: %d operations, %d faults (%s)", o.Seed, o.Ops, o.Kills, o.Name)

	dir, temp := o.DataDir, o.DataDir == ""
	if temp {
		var err error
		if dir, err = os.MkdirTemp("", "ferry-faults-"); err != nil {
			return nil, err
		}
	}
	out.Dir = dir
	store, logs := filepath.Join(dir, "store"), filepath.Join(dir, "logs")
	for _, d := range []string{store, logs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	acks, err := openAckLog(filepath.Join(dir, "acks.jsonl"))
	if err != nil {
		return nil, fmt.Errorf("the acks file (is -data-dir empty?): %w", err)
	}
	defer acks.close()

	procs, order, err := startSystem(ctx, o, store, logs)
	defer func() {
		for _, name := range order {
			procs[name].close()
		}
	}()
	if err != nil {
		return out, err
	}
	o.Logf("system up: %s (logs in %s)", strings.Join(order, ", "), logs)

	client, nc, err := connect(store)
	if err != nil {
		return out, err
	}
	defer nc.Close()

	err = drive(ctx, o, out, procs, client, acks)
	if err == nil {
		err = out.settle(ctx, client, filepath.Join(dir, "acks.jsonl"))
	}
	for i := len(order) - 1; i >= 0; i-- {
		if serr := procs[order[i]].stop(30 * time.Second); serr != nil {
			out.Stops = append(out.Stops, serr.Error())
		}
	}
	out.Wall = time.Since(begin)
	if out.Verdict != nil {
		out.Record = out.record()
		if o.Records != "" {
			if werr := reliability.Write(o.Records, out.Record); werr != nil {
				err = errors.Join(err, werr)
			}
		}
	}
	if err == nil {
		err = out.failure()
	}
	if err == nil && temp {
		_ = os.RemoveAll(dir)
	}
	return out, err
}

// startSystem starts the broker's process, listening on a free loopback
// port it keeps across restarts, then each service's, joining it.
func startSystem(ctx context.Context, o Options, store, logs string) (map[string]*proc, []string, error) {
	listen, err := freeAddr()
	if err != nil {
		return nil, nil, err
	}
	procs := map[string]*proc{}
	order := append([]string{"broker"}, services...)
	var started []string
	for _, name := range order {
		var extra []string
		if name == "broker" {
			extra = []string{"-nats-listen", listen}
		}
		p, err := newProc(o.Bin, name, store, logs, extra...)
		if err != nil {
			return procs, started, err
		}
		procs[name] = p
		started = append(started, name)
		if err := p.start(ctx); err != nil {
			return procs, started, err
		}
	}
	return procs, started, nil
}

// connect joins the broker the data directory's holder published, as the
// ferry command does, reconnecting for ever.
func connect(store string) (*ferry.Client, *nats.Conn, error) {
	url, nkey, err := broker.Published(store)
	if err != nil {
		return nil, nil, fmt.Errorf("the broker's address: %w", err)
	}
	opts := []nats.Option{nats.Name("faults-driver"), nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}
	if nkey != "" {
		opt, err := nats.NkeyOptionFromSeed(nkey)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, opt)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to the broker: %w", err)
	}
	return ferry.NewClient(nc), nc, nil
}

// drive runs the driver and the controller together.
func drive(ctx context.Context, o Options, out *Outcome, procs map[string]*proc, client *ferry.Client, acks *ackLog) error {
	d := &driver{client: client, acks: acks, rate: o.Rate, workers: o.Workers}
	c := &controller{procs: procs, logf: o.Logf}
	driverDone := make(chan struct{})
	type result struct {
		injected []injected
		err      error
	}
	faults := make(chan result, 1)
	go func() {
		in, err := c.run(ctx, out.Plan.Faults, acks.n.Load, driverDone)
		faults <- result{in, err}
	}()
	derr := d.run(ctx, out.Plan.Ops)
	close(driverDone)
	r := <-faults
	out.Injected, out.Issued, out.Retries = r.injected, d.issued.Load(), d.retries.Load()
	for i := range opKinds {
		out.RetriedByKind[i] = d.retried[i].Load()
	}
	o.Logf("driver done: %d issued, %d acknowledged, %d failed attempts retried; %d faults injected", out.Issued, acks.n.Load(), out.Retries, len(out.Injected))
	return errors.Join(derr, r.err)
}

// settle reads the acks back from their file and waits for the store to
// show them.
func (out *Outcome) settle(ctx context.Context, client *ferry.Client, acksPath string) error {
	acks, err := readAcks(acksPath)
	if err != nil {
		return err
	}
	kv, err := Handled.Open(ctx, client)
	if err != nil {
		return err
	}
	state := func(ctx context.Context, id string) (string, error) {
		rec, err := ferry.GetJob(ctx, client, id)
		if err != nil {
			return "", err
		}
		return string(rec.State), nil
	}
	v, waited, err := settle(ctx, kv, state, acks, out.Options.Settle)
	out.Verdict, out.Settled = v, waited
	if err != nil {
		return err
	}
	// JetStream's de-duplication, seen apart from the subscription's own
	// (which would hide a second copy): the topic's stream holds one
	// event per acknowledged publish.
	js, err := jetstream.New(client.Conn())
	if err != nil {
		return err
	}
	name, err := js.StreamNameBySubject(ctx, Happened.Subject)
	if err != nil {
		return fmt.Errorf("the topic's stream: %w", err)
	}
	stream, err := js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("the topic's stream: %w", err)
	}
	out.StoredEvents = stream.CachedInfo().State.Msgs
	if published := uint64(v.ByKind[opPublish].Acknowledged); out.StoredEvents > published && v.Acknowledged == out.Options.Ops {
		extra := int(out.StoredEvents - published)
		v.Unabsorbed += extra
		v.Problems = append(v.Problems, fmt.Sprintf("the topic's stream holds %d events for %d publishes", out.StoredEvents, published))
	}
	out.BeforeBrokerKill = beforeBrokerKill(acks, out.Injected)
	out.Resumed = resumedAfter(acks, out.Injected)
	out.Options.Logf("checked %d acknowledged operations after %v: %d found, %d lost, %d extra runs, %d unabsorbed",
		v.Acknowledged, waited.Round(time.Millisecond), v.Found, v.Lost, v.ExtraRuns, v.Unabsorbed)
	return nil
}

// failure is what makes a finished run fail: work lost or doubled, or
// operations never acknowledged.
func (out *Outcome) failure() error {
	v := out.Verdict
	var errs []error
	if v.Lost > 0 {
		errs = append(errs, fmt.Errorf("%d acknowledged operations lost, such as %s", v.Lost, strings.Join(v.Missing, ", ")))
	}
	if v.Unabsorbed > 0 {
		errs = append(errs, fmt.Errorf("%d retried operations done twice, such as %s", v.Unabsorbed, strings.Join(v.Problems, "; ")))
	}
	if v.Acknowledged < out.Options.Ops {
		errs = append(errs, fmt.Errorf("only %d of %d operations acknowledged within -duration %v", v.Acknowledged, out.Options.Ops, out.Options.Duration))
	}
	if len(out.Injected) < len(out.Plan.Faults) {
		errs = append(errs, fmt.Errorf("only %d of %d faults injected", len(out.Injected), len(out.Plan.Faults)))
	}
	if len(errs) > 0 {
		errs = append(errs, fmt.Errorf("the run's store, acks and logs are kept in %s", out.Dir))
	}
	return errors.Join(errs...)
}

// beforeBrokerKill counts the acks older than the last kill of the
// broker's process.
func beforeBrokerKill(acks []ack, injected []injected) int {
	var last time.Time
	for _, f := range injected {
		if f.Target == "broker" {
			last = f.Killed
		}
	}
	n := 0
	for _, a := range acks {
		if a.At.Before(last) {
			n++
		}
	}
	return n
}

// resumedAfter is the longest time from a broker's restart to the next
// ack, over the faults of the broker's process made under load.
func resumedAfter(acks []ack, injected []injected) time.Duration {
	var longest time.Duration
	for _, f := range injected {
		if f.Target != "broker" || !f.UnderLoad {
			continue
		}
		var next time.Time
		for _, a := range acks {
			if a.At.After(f.Restarted) && (next.IsZero() || a.At.Before(next)) {
				next = a.At
			}
		}
		if !next.IsZero() {
			longest = max(longest, next.Sub(f.Restarted))
		}
	}
	return longest
}

// killsByTarget counts the injected faults per process, in the system's
// order.
func (out *Outcome) killsByTarget() string {
	n := map[string]int{}
	for _, f := range out.Injected {
		n[f.Target]++
	}
	var parts []string
	for _, name := range append([]string{"broker"}, services...) {
		if n[name] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", name, n[name]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// slowestReady is the longest a restarted process took to be ready.
func (out *Outcome) slowestReady() time.Duration {
	var longest time.Duration
	for _, f := range out.Injected {
		longest = max(longest, f.Ready)
	}
	return longest
}

// underLoad counts the faults injected while the driver was issuing.
func (out *Outcome) underLoad() int {
	return len(slices.DeleteFunc(slices.Clone(out.Injected), func(f injected) bool { return !f.UnderLoad }))
}
