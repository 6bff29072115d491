package ferry_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// The workflow worker child: the test binary, re-executed with
// FERRY_TEST_FLOW_WORKER_OUT set, runs a worker of crashFlow against the
// broker at FERRY_NATS_URL until SIGTERM or SIGKILL. Each step's function
// appends "start <run> <step>" to the file out when it begins, makes its
// effect — a message on the stream FLOWFX, de-duplicated by the step's
// idempotency key (StepKey), so stored once however often the step runs —
// appending "effect <run> <step>" when that message was stored, and "done
// <run> <step>" when it returns. The step named by FERRY_TEST_FLOW_HOLD never
// returns on its own: it waits for its context to end.

// CrashFlowInput is the test workflow's input: what it does (Mode) and
// how long its steps work, at most.
type CrashFlowInput struct {
	Mode    string `json:"mode"`
	SleepMS int    `json:"sleep_ms,omitempty"`
}

// CrashFlowOutput is the test workflow's output.
type CrashFlowOutput struct {
	Steps  int `json:"steps"`
	Signal int `json:"signal,omitempty"`
}

var crashFlow = ferry.Workflow[CrashFlowInput, CrashFlowOutput]{Name: "crashflow", Description: "Work for the crash tests."}

// effectsStream holds the test steps' effects: one message per effect,
// on subject flowfx.<run>.<step>.
const effectsStream = "FLOWFX"

// runFlowWorkerChild runs the workflow worker child; see above.
func runFlowWorkerChild(out string) int {
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer f.Close()
	var mu sync.Mutex
	note := func(what, run, step string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(f, "%s %s %s\n", what, run, step)
	}
	hold := os.Getenv("FERRY_TEST_FLOW_HOLD")
	cfg, err := ferry.LoadConfig(flag.NewFlagSet("flowworker", flag.ContinueOnError), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	nc, err := nats.Connect(cfg.NATSURL, nats.MaxReconnects(-1))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: effectsStream, Subjects: []string{"flowfx.>"}, Duplicates: 10 * time.Minute}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}

	fn := func(ctx ferry.WorkflowContext, in *CrashFlowInput) (*CrashFlowOutput, error) {
		run := ctx.RunID()
		effect := func(step string) func(context.Context) (int, error) {
			return func(sctx context.Context) (int, error) {
				note("start", run, step)
				if step == hold {
					<-sctx.Done()
					return 0, sctx.Err()
				}
				if in.SleepMS > 0 {
					select {
					case <-time.After(time.Duration(rand.IntN(in.SleepMS+1)) * time.Millisecond):
					case <-sctx.Done():
						return 0, sctx.Err()
					}
				}
				// The effect: a message on the effects stream, de-duplicated by
				// the step's idempotency key.
				ack, err := js.Publish(sctx, "flowfx."+run+"."+strings.ReplaceAll(step, " ", "-"), nil, jetstream.WithMsgID(ferry.StepKey(sctx)))
				if err != nil {
					return 0, err
				}
				if !ack.Duplicate {
					note("effect", run, step)
				}
				note("done", run, step)
				return 1, nil
			}
		}
		steps := func(names ...string) (int, error) {
			n := 0
			for _, name := range names {
				v, err := ferry.Step(ctx, name, effect(name))
				if err != nil {
					return 0, err
				}
				n += v
			}
			return n, nil
		}
		out := &CrashFlowOutput{}
		var err error
		switch in.Mode {
		case "three":
			out.Steps, err = steps("s1", "s2", "s3")
		case "sleep":
			if out.Steps, err = steps("s1"); err != nil {
				return nil, err
			}
			if err := ferry.Sleep(ctx, time.Duration(in.SleepMS)*time.Millisecond); err != nil {
				return nil, err
			}
			in.SleepMS = 0
			out.Steps, err = steps("s2")
			out.Steps++
		case "signal":
			if out.Signal, err = ferry.Receive[int](ctx, "go", 0); err != nil {
				return nil, err
			}
			out.Steps, err = steps("s1")
		case "saga":
			for _, name := range []string{"c1", "c2"} {
				undo := effect("undo " + name)
				if _, err := ferry.StepWithCompensation(ctx, name, effect(name), func(ctx context.Context, _ int) error {
					_, err := undo(ctx)
					return err
				}); err != nil {
					return nil, err
				}
			}
			_, err = ferry.Step(ctx, "s3", func(context.Context) (int, error) {
				note("start", run, "s3")
				return 0, ferry.Permanent(errors.New("payment declined"))
			})
		default:
			return nil, ferry.Permanent(fmt.Errorf("mode %q", in.Mode))
		}
		if err != nil {
			return nil, err
		}
		return out, nil
	}

	svc := ferry.MustNew("flowworker", "1.0.0", ferry.WithoutHTTP())
	ferry.HandleWorkflow(svc, crashFlow, fn, ferry.JobConcurrency(32), ferry.JobAckWait(crashJobAckWait),
		ferry.JobBackoff(10*time.Millisecond, 100*time.Millisecond))
	h, err := ferry.NewHost(ferry.WithConfig(cfg))
	if err == nil {
		err = h.Add(svc)
	}
	if err == nil {
		err = h.Start(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "workflow worker child:", err)
		return 2
	}
	fmt.Println("ready")
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := h.Shutdown(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "workflow worker child:", err)
		return 1
	}
	return 0
}

// startFlowChild starts a workflow worker child on the broker at url,
// holding the step hold (if not ""), and waits until it is ready.
func startFlowChild(t *testing.T, url, dir, hold string) *testChild {
	t.Helper()
	return startTestChild(t, dir, "FERRY_TEST_FLOW_WORKER_OUT", "FERRY_NATS_URL="+url, "FERRY_LOG_LEVEL=error",
		"FERRY_SHUTDOWN_GRACE=5s", "FERRY_TEST_FLOW_HOLD="+hold)
}

// flowLog is what workflow worker children logged, in order: per "what
// run step", how many times.
type flowLog struct {
	lines []string
	count map[string]int
}

func (l flowLog) n(what, run, step string) int { return l.count[what+" "+run+" "+step] }

// readFlowLog reads the logs of the children given, in the order given.
func readFlowLog(t *testing.T, children ...*testChild) flowLog {
	t.Helper()
	l := flowLog{count: map[string]int{}}
	for _, c := range children {
		data, err := os.ReadFile(c.out)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Count(line, " ") < 2 {
				continue // empty, or cut by SIGKILL
			}
			l.lines = append(l.lines, line)
			l.count[line]++
		}
	}
	return l
}

// flowDriver is the test's side: a broker in a child process (killed and
// restarted in place by the tests that need it) and a client host.
type flowDriver struct {
	broker *brokerProcess
	host   *ferrytest.Host
	dir    string
}

func newFlowDriver(t *testing.T) *flowDriver {
	t.Helper()
	if testing.Short() {
		t.Skip("starts broker and worker child processes")
	}
	broker := newBrokerProcess(t)
	cfg := ferrytest.Config(t)
	cfg.NATSURL, cfg.NATSEmbed = broker.url(), false
	h := ferrytest.StartWith(t, cfg, ferry.MustNew("flowdriver", "1.0.0", ferry.WithoutHTTP(), quiet))
	return &flowDriver{broker: broker, host: h, dir: t.TempDir()}
}

func (d *flowDriver) start(t *testing.T, in CrashFlowInput) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := crashFlow.Start(ctx, d.host.Client, &in)
	if err != nil {
		t.Fatalf("start %s: %v", in.Mode, err)
	}
	return id
}

// wait waits, at most limit, until the run ended, and returns its record.
func (d *flowDriver) wait(t *testing.T, id string, limit time.Duration) *ferry.JobRecord[CrashFlowOutput] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		rec, err := crashFlow.Wait(ctx, d.host.Client, id)
		if err == nil {
			return rec
		}
		if ctx.Err() != nil {
			last, _ := crashFlow.Get(context.Background(), d.host.Client, id)
			t.Fatalf("run %s has not ended within %v: %v (last read: %+v)", id, limit, err, last)
		}
		time.Sleep(100 * time.Millisecond) // the watch broke (a broker restart): again
	}
}

// waitLog waits until a child logged line.
func waitLog(t *testing.T, c *testChild, line string) {
	t.Helper()
	waitFor(t, 30*time.Second, func() bool { return readFlowLog(t, c).count[line] > 0 }, "the worker logs %q", line)
}

func TestWorkflowKilledAfterStepTwo(t *testing.T) {
	d := newFlowDriver(t)
	a := startFlowChild(t, d.broker.url(), d.dir, "s3")
	id := d.start(t, CrashFlowInput{Mode: "three"})
	waitLog(t, a, "start "+id+" s3")
	steps, err := crashFlow.Steps(context.Background(), d.host.Client, id)
	if err != nil || len(steps) != 2 {
		t.Fatalf("steps recorded before the kill: %+v, %v", steps, err)
	}
	a.kill()
	b := startFlowChild(t, d.broker.url(), d.dir, "")
	rec := d.wait(t, id, 60*time.Second)
	if rec.State != ferry.JobSucceeded || rec.Result.Steps != 3 {
		t.Fatalf("record %+v", rec)
	}
	log := readFlowLog(t, a, b)
	stored := storedEffects(t, d)
	for _, step := range []string{"s1", "s2", "s3"} {
		if n, e := log.n("done", id, step), stored["flowfx."+id+"."+step]; n != 1 || e != 1 {
			t.Errorf("step %s: done %d times, effect stored %d times; want once each", step, n, e)
		}
	}
	if n := log.n("start", id, "s3"); n != 2 {
		t.Errorf("step 3 started %d times; want 2 (the killed run and the resumed one)", n)
	}
}

func TestWorkflowSleepSurvivesEveryProcess(t *testing.T) {
	d := newFlowDriver(t)
	a := startFlowChild(t, d.broker.url(), d.dir, "")
	const sleep = 3 * time.Second
	id := d.start(t, CrashFlowInput{Mode: "sleep", SleepMS: int(sleep / time.Millisecond)})
	waitLog(t, a, "done "+id+" s1")
	ferrytest.Eventually(t, func() bool {
		rec, err := crashFlow.Get(context.Background(), d.host.Client, id)
		return err == nil && rec.State == ferry.JobScheduled && rec.Waiting == "sleep"
	}, "the run sleeps")
	wake := time.Now().Add(sleep)
	a.kill()
	d.broker.kill()
	time.Sleep(time.Until(wake) + time.Second) // every process is down past the wake time
	d.broker.start()
	b := startFlowChild(t, d.broker.url(), d.dir, "")
	rec := d.wait(t, id, 60*time.Second)
	if rec.State != ferry.JobSucceeded || rec.Result.Steps != 2 {
		t.Fatalf("record %+v", rec)
	}
	log := readFlowLog(t, a, b)
	for _, step := range []string{"s1", "s2"} {
		if n := log.n("done", id, step); n != 1 {
			t.Errorf("step %s done %d times; want once", step, n)
		}
	}
}

func TestWorkflowSignalWithoutWorker(t *testing.T) {
	d := newFlowDriver(t)
	ctx := context.Background()
	// One run waits for its signal when its worker is killed; another was
	// never picked up by a worker when its signal is sent.
	a := startFlowChild(t, d.broker.url(), d.dir, "")
	waiting := d.start(t, CrashFlowInput{Mode: "signal"})
	ferrytest.Eventually(t, func() bool {
		rec, err := crashFlow.Get(ctx, d.host.Client, waiting)
		return err == nil && rec.Waiting == "signal go"
	}, "the run waits for its signal")
	a.kill()
	fresh := d.start(t, CrashFlowInput{Mode: "signal"})
	for i, id := range []string{waiting, fresh} {
		if err := ferry.Send(ctx, d.host.Client, id, "go", 7+i); err != nil {
			t.Fatal(err)
		}
	}
	b := startFlowChild(t, d.broker.url(), d.dir, "")
	for i, id := range []string{waiting, fresh} {
		rec := d.wait(t, id, 60*time.Second)
		if rec.State != ferry.JobSucceeded || rec.Result.Signal != 7+i {
			t.Fatalf("run %d: record %+v", i, rec)
		}
		if n := readFlowLog(t, a, b).n("done", id, "s1"); n != 1 {
			t.Errorf("run %d: step done %d times", i, n)
		}
	}
}

func TestWorkflowSagaKilledDuringCompensation(t *testing.T) {
	d := newFlowDriver(t)
	a := startFlowChild(t, d.broker.url(), d.dir, "undo c1")
	id := d.start(t, CrashFlowInput{Mode: "saga"})
	waitLog(t, a, "start "+id+" undo c1")
	a.kill()
	b := startFlowChild(t, d.broker.url(), d.dir, "")
	rec := d.wait(t, id, 60*time.Second)
	if rec.State != ferry.JobFailed || !strings.Contains(rec.LastError, "payment declined") && rec.LastError == "" {
		t.Fatalf("record %+v", rec)
	}
	log := readFlowLog(t, a, b)
	for _, step := range []string{"c1", "c2", "undo c2", "undo c1"} {
		if n := log.n("done", id, step); n != 1 {
			t.Errorf("%s done %d times; want once", step, n)
		}
	}
	var order []string
	for _, line := range log.lines {
		if strings.HasPrefix(line, "done "+id+" undo") {
			order = append(order, strings.TrimPrefix(line, "done "+id+" "))
		}
	}
	if strings.Join(order, ",") != "undo c2,undo c1" {
		t.Errorf("compensations ran in the order %v; want undo c2, then undo c1", order)
	}
}

// storedEffects counts the messages of the effects stream by subject.
func storedEffects(t *testing.T, d *flowDriver) map[string]uint64 {
	t.Helper()
	nc, err := nats.Connect(d.broker.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, effectsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("flowfx.>"))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects
}

// effectsMade counts the effects the children logged.
func effectsMade(t *testing.T, children ...*testChild) int {
	n := 0
	for _, c := range children {
		data, err := os.ReadFile(c.out)
		if err != nil {
			t.Fatal(err)
		}
		n += strings.Count(string(data), "effect ")
	}
	return n
}

// TestWorkflowRunsUnderKills starts 500 runs (5,000 with
// FERRY_LONG_TESTS=1) of three steps on two worker processes and kills one
// of them with SIGKILL while runs are in flight, three times (starting a new one
// each time): every run succeeds, and each step's effect is made exactly
// once — a step that ran twice (killed after its effect, before its
// record) made it once, by its idempotency key.
func TestWorkflowRunsUnderKills(t *testing.T) {
	n := 500
	if os.Getenv("FERRY_LONG_TESTS") == "1" {
		n = 5000
	}
	d := newFlowDriver(t)
	children := []*testChild{startFlowChild(t, d.broker.url(), d.dir, ""), startFlowChild(t, d.broker.url(), d.dir, "")}
	all := append([]*testChild(nil), children...)
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			id, err := crashFlow.Start(ctx, d.host.Client, &CrashFlowInput{Mode: "three", SleepMS: 200})
			if err != nil {
				t.Errorf("start run %d: %v", i, err)
			}
			ids[i] = id
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for k := range 3 {
		// Kill when about a quarter, a half, three quarters of the steps
		// made their effect: runs are in flight.
		target := 3 * n * (k + 1) / 4
		waitFor(t, 2*time.Minute, func() bool { return effectsMade(t, all...) >= target }, "%d effects are made", target)
		victim := rand.IntN(len(children))
		children[victim].kill()
		children[victim] = startFlowChild(t, d.broker.url(), d.dir, "")
		all = append(all, children[victim])
		t.Logf("kill %d: worker %d, after %d effects", k+1, victim, target)
	}
	<-done
	for _, id := range ids {
		rec := d.wait(t, id, 2*time.Minute)
		if rec.State != ferry.JobSucceeded || rec.Result.Steps != 3 {
			t.Fatalf("run %s: %+v", id, rec)
		}
	}
	stored := storedEffects(t, d)
	log := readFlowLog(t, all...)
	again, twice := 0, 0
	for _, id := range ids {
		for _, step := range []string{"s1", "s2", "s3"} {
			if e := stored["flowfx."+id+"."+step]; e != 1 {
				t.Errorf("run %s step %s: effect stored %d times; want once", id, step, e)
			}
			if log.n("start", id, step) > 1 {
				again++
			}
			if log.n("done", id, step) > 1 {
				twice++
			}
		}
	}
	t.Logf("%d runs: %d steps started again after a kill, %d ran to their end twice (killed before their record); every effect stored once",
		n, again, twice)
}
