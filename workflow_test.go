package ferry_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
	"github.com/ferrygo/ferry/internal/naming"
)

type orderIn struct {
	Order string `json:"order"`
	Fail  string `json:"fail,omitempty"` // the step that fails permanently
}

type orderOut struct {
	Total int `json:"total"`
}

// effects counts each step's runs by run and step.
type effects struct {
	mu sync.Mutex
	n  map[string]int
}

func (e *effects) add(run, step string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.n == nil {
		e.n = map[string]int{}
	}
	e.n[run+"/"+step]++
	return e.n[run+"/"+step]
}

func (e *effects) get(run, step string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n[run+"/"+step]
}

var orderFlow = ferry.Workflow[orderIn, orderOut]{Name: "order-flow", Description: "Places an order."}

func TestWorkflowSteps(t *testing.T) {
	var fx effects
	h := ferrytest.RunWorkflow(t, orderFlow, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		step := func(name string, v int) func(context.Context) (int, error) {
			return func(context.Context) (int, error) {
				fx.add(ctx.RunID(), name)
				if in.Fail == name {
					return 0, ferry.Permanent(errors.New(name + " refused"))
				}
				return v, nil
			}
		}
		undo := func(name string) func(context.Context, int) error {
			return func(context.Context, int) error { fx.add(ctx.RunID(), "undo "+name); return nil }
		}
		a, err := ferry.StepWithCompensation(ctx, "reserve", step("reserve", 1), undo("reserve"))
		if err != nil {
			return nil, err
		}
		b, err := ferry.StepWithCompensation(ctx, "pay", step("pay", 2), undo("pay"))
		if err != nil {
			return nil, err
		}
		c, err := ferry.Step(ctx, "ship", step("ship", 4))
		if err != nil {
			return nil, err
		}
		return &orderOut{Total: a + b + c}, nil
	})
	ctx := context.Background()

	t.Run("succeeds", func(t *testing.T) {
		id, err := orderFlow.Start(ctx, h.Client, &orderIn{Order: "o1"})
		if err != nil {
			t.Fatal(err)
		}
		rec := ferrytest.WaitRun(t, h, orderFlow, id)
		if rec.State != ferry.JobSucceeded || rec.Result == nil || rec.Result.Total != 7 {
			t.Fatalf("record %+v", rec)
		}
		for _, s := range []string{"reserve", "pay", "ship"} {
			if n := fx.get(id, s); n != 1 {
				t.Errorf("step %s ran %d times", s, n)
			}
		}
	})
	t.Run("compensates", func(t *testing.T) {
		id, err := orderFlow.Start(ctx, h.Client, &orderIn{Order: "o2", Fail: "ship"})
		if err != nil {
			t.Fatal(err)
		}
		rec := ferrytest.WaitRun(t, h, orderFlow, id)
		if rec.State != ferry.JobFailed {
			t.Fatalf("record %+v", rec)
		}
		for _, s := range []string{"undo reserve", "undo pay"} {
			if n := fx.get(id, s); n != 1 {
				t.Errorf("%s ran %d times", s, n)
			}
		}
		fmt.Println(rec.LastError)
	})
}

func TestWorkflowSleepAndSignal(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "sleep-signal"}
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		if err := ferry.Sleep(ctx, 1500*time.Millisecond); err != nil {
			return nil, err
		}
		v, err := ferry.Receive[int](ctx, "approve", time.Minute)
		if err != nil {
			return nil, err
		}
		// The same signal sent twice with one key is received once.
		again, err := ferry.Receive[int](ctx, "approve", time.Second)
		if err != nil && !errors.Is(err, ferry.ErrReceiveTimeout) {
			return nil, err
		}
		return &orderOut{Total: v + again}, nil
	})
	ctx := context.Background()
	id, err := wf.Start(ctx, h.Client, &orderIn{Order: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool {
		rec, err := wf.Get(ctx, h.Client, id)
		return err == nil && rec.State == ferry.JobScheduled && rec.Waiting == "signal approve"
	}, "run waits for the signal")
	for range 2 { // a retried Send with a key stores one signal
		if err := ferry.Send(ctx, h.Client, id, "approve", 42, ferry.SendKey("approval-1")); err != nil {
			t.Fatal(err)
		}
	}
	rec := ferrytest.WaitRun(t, h, wf, id)
	if rec.State != ferry.JobSucceeded || rec.Result.Total != 42 {
		t.Fatalf("record %+v", rec)
	}
}

func TestWorkflowCancel(t *testing.T) {
	var fx effects
	started := make(chan string, 4)
	wf := ferry.Workflow[orderIn, orderOut]{Name: "cancel-flow"}
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		if _, err := ferry.StepWithCompensation(ctx, "reserve", func(context.Context) (int, error) {
			fx.add(ctx.RunID(), "reserve")
			return 1, nil
		}, func(context.Context, int) error { fx.add(ctx.RunID(), "undo reserve"); return nil }); err != nil {
			return nil, err
		}
		switch in.Order {
		case "running":
			_, err := ferry.Step(ctx, "block", func(sctx context.Context) (int, error) {
				started <- ctx.RunID()
				<-sctx.Done()
				return 0, sctx.Err()
			})
			if err != nil {
				return nil, err
			}
		case "waiting":
			if _, err := ferry.Receive[int](ctx, "never", 0); err != nil {
				return nil, err
			}
		}
		_, err := ferry.Step(ctx, "after", func(context.Context) (int, error) { fx.add(ctx.RunID(), "after"); return 0, nil })
		return &orderOut{}, err
	})
	ctx := context.Background()
	for _, how := range []string{"running", "waiting"} {
		t.Run(how, func(t *testing.T) {
			id, err := wf.Start(ctx, h.Client, &orderIn{Order: how})
			if err != nil {
				t.Fatal(err)
			}
			if how == "running" {
				<-started
				ferrytest.Eventually(t, func() bool {
					rec, err := wf.Get(ctx, h.Client, id)
					return err == nil && rec.Progress != nil && rec.Progress.Message == "step block"
				}, "the record names the step that runs")
			} else {
				ferrytest.Eventually(t, func() bool {
					rec, err := wf.Get(ctx, h.Client, id)
					return err == nil && rec.Waiting == "signal never"
				}, "run waits")
			}
			if _, err := wf.Cancel(ctx, h.Client, id); err != nil {
				t.Fatal(err)
			}
			rec := ferrytest.WaitRun(t, h, wf, id)
			if rec.State != ferry.JobCancelled {
				t.Fatalf("record %+v", rec)
			}
			if fx.get(id, "undo reserve") != 1 || fx.get(id, "after") != 0 || fx.get(id, "reserve") != 1 {
				t.Fatalf("effects: reserve %d, undo %d, after %d", fx.get(id, "reserve"), fx.get(id, "undo reserve"), fx.get(id, "after"))
			}
		})
	}
}

func TestWorkflowWaitsAndChildren(t *testing.T) {
	child := ferry.Workflow[orderIn, orderOut]{Name: "child-flow"}
	parent := ferry.Workflow[orderIn, orderOut]{Name: "parent-flow"}
	var fx effects
	svc := ferry.MustNew("flows", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.HandleWorkflow(svc, child, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		if in.Fail == "child" {
			return nil, ferry.NewError(422, "child refused")
		}
		if err := ferry.Sleep(ctx, time.Second); err != nil {
			return nil, err
		}
		return &orderOut{Total: len(in.Order)}, nil
	})
	ferry.HandleWorkflow(svc, parent, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		_, err := ferry.Receive[string](ctx, "nothing", time.Second)
		if !errors.Is(err, ferry.ErrReceiveTimeout) {
			return nil, fmt.Errorf("receive: %w", err)
		}
		parts, err := ferry.Parallel(ctx, "part", 3, func(_ context.Context, i int) (int, error) {
			fx.add(ctx.RunID(), fmt.Sprint("part", i))
			return i + 1, nil
		})
		if err != nil {
			return nil, err
		}
		var ids []string
		for _, name := range []string{"ab", "abcd"} {
			id, err := ferry.StartChild(ctx, child, &orderIn{Order: name, Fail: in.Fail})
			if err != nil {
				return nil, err
			}
			ids = append(ids, id)
		}
		total := parts[0] + parts[1] + parts[2]
		for _, id := range ids {
			out, err := ferry.Await(ctx, child, id)
			if err != nil {
				return nil, err
			}
			total += out.Total
		}
		return &orderOut{Total: total}, nil
	})
	h := ferrytest.Start(t, svc)
	ctx := context.Background()

	id, err := parent.Start(ctx, h.Client, &orderIn{Order: "p"})
	if err != nil {
		t.Fatal(err)
	}
	rec := ferrytest.WaitRun(t, h, parent, id)
	if rec.State != ferry.JobSucceeded || rec.Result.Total != 6+2+4 {
		t.Fatalf("record %+v", rec)
	}
	for i := range 3 {
		if n := fx.get(id, fmt.Sprint("part", i)); n != 1 {
			t.Errorf("part %d ran %d times", i, n)
		}
	}

	id, err = parent.Start(ctx, h.Client, &orderIn{Order: "q", Fail: "child"})
	if err != nil {
		t.Fatal(err)
	}
	rec = ferrytest.WaitRun(t, h, parent, id)
	if rec.State != ferry.JobFailed || rec.LastError == "" {
		t.Fatalf("record %+v", rec)
	}
	t.Log(rec.LastError)
}

func TestWorkflowRetriesResumeAndChanges(t *testing.T) {
	var fx effects
	var broken sync.Map // run → the step that fails while set
	wf := ferry.Workflow[orderIn, orderOut]{Name: "retry-flow"}
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		name := "flaky"
		if in.Order == "renamed" && fx.get(ctx.RunID(), "flaky") > 0 {
			name = "renamed" // the code changed under the run
		}
		v, err := ferry.Step(ctx, name, func(context.Context) (int, error) {
			n := fx.add(ctx.RunID(), "flaky")
			if n < 3 {
				return 0, errors.New("busy")
			}
			return n, nil
		}, ferry.StepBackoff(10*time.Millisecond, 20*time.Millisecond))
		if err != nil {
			return nil, err
		}
		if in.Order == "renamed" && fx.add(ctx.RunID(), "crash") == 1 {
			panic("crash after the step: the run executes again")
		}
		w, err := ferry.Step(ctx, "fixable", func(context.Context) (int, error) {
			fx.add(ctx.RunID(), "fixable")
			if _, bad := broken.Load(ctx.RunID()); bad {
				return 0, ferry.Permanent(errors.New("bug"))
			}
			return 10, nil
		})
		if err != nil {
			return nil, err
		}
		return &orderOut{Total: v + w}, nil
	}, ferry.JobBackoff(10*time.Millisecond, 20*time.Millisecond))
	ctx := context.Background()

	// A failed step retried in the execution, then a failed run resumed
	// after a fix: the completed step is not run again.
	id, err := wf.Start(ctx, h.Client, &orderIn{Order: "resume"}, ferry.EnqueueKey("k1", time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if again, err := wf.Start(ctx, h.Client, &orderIn{Order: "resume"}, ferry.EnqueueKey("k1", time.Minute)); err != nil || again != id {
		t.Fatalf("second start: %s, %v; want %s", again, err, id)
	}
	broken.Store(id, true)
	rec := ferrytest.WaitRun(t, h, wf, id)
	if rec.State != ferry.JobFailed {
		t.Fatalf("record %+v", rec)
	}
	steps, err := wf.Steps(ctx, h.Client, id)
	if err != nil || len(steps) != 2 || steps[1].Error == "" {
		t.Fatalf("steps %+v, %v", steps, err)
	}
	broken.Delete(id)
	if err := wf.Resume(ctx, h.Client, id); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool {
		rec, err := wf.Get(ctx, h.Client, id)
		return err == nil && rec.State == ferry.JobSucceeded
	}, "the resumed run succeeds")
	rec, _ = wf.Get(ctx, h.Client, id)
	if rec.Result.Total != 13 || fx.get(id, "flaky") != 3 || fx.get(id, "fixable") != 2 {
		t.Fatalf("record %+v, flaky ran %d, fixable %d", rec, fx.get(id, "flaky"), fx.get(id, "fixable"))
	}
	if err := wf.Resume(ctx, h.Client, id); !isStatus(err, 409) {
		t.Fatalf("resume of a succeeded run: %v", err)
	}

	// Code that renames a recorded step fails the run loudly.
	id, err = wf.Start(ctx, h.Client, &orderIn{Order: "renamed"})
	if err != nil {
		t.Fatal(err)
	}
	rec = ferrytest.WaitRun(t, h, wf, id)
	if rec.State != ferry.JobFailed || !strings.Contains(rec.LastError, "changed") {
		t.Fatalf("record %+v", rec)
	}
}

// TestWorkflowWritesPerRun counts what a three-step run writes: the
// figure docs/workflows.md states (one write per step, a few per run).
func TestWorkflowWritesPerRun(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "three-steps"}
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		total := 0
		for _, name := range []string{"one", "two", "three"} {
			v, err := ferry.Step(ctx, name, func(context.Context) (int, error) { return 1, nil })
			if err != nil {
				return nil, err
			}
			total += v
		}
		return &orderOut{Total: total}, nil
	})
	ctx := context.Background()
	js, err := jetstream.New(h.Client.Conn())
	if err != nil {
		t.Fatal(err)
	}
	// The first run creates the streams and the bucket.
	id, err := wf.Start(ctx, h.Client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	ferrytest.WaitRun(t, h, wf, id)
	lastSeq := func(stream string) uint64 {
		var seq uint64
		// Index writes are acknowledged in the background: wait until the
		// stream stops moving.
		ferrytest.Eventually(t, func() bool {
			s, err := js.Stream(ctx, stream)
			if err != nil {
				return false
			}
			before := seq
			seq = s.CachedInfo().State.LastSeq
			time.Sleep(50 * time.Millisecond)
			return seq == before
		}, "stream %s settles", stream)
		return seq
	}
	kv0, steps0, run0 := lastSeq("KV_ferry-jobs"), lastSeq("KV_ferry-steps"), lastSeq("ferryjob-three-steps")
	const n = 20
	for range n {
		id, err := wf.Start(ctx, h.Client, &orderIn{})
		if err != nil {
			t.Fatal(err)
		}
		if rec := ferrytest.WaitRun(t, h, wf, id); rec.State != ferry.JobSucceeded || rec.Steps != 3 {
			t.Fatalf("record %+v", rec)
		}
	}
	kv, steps := float64(lastSeq("KV_ferry-jobs")-kv0)/n, float64(lastSeq("KV_ferry-steps")-steps0)/n
	runs := float64(lastSeq("ferryjob-three-steps")-run0) / n
	t.Logf("a three-step run writes %.1f step records, %.1f records of the run (its record 3 times, its listing index) and %.1f messages",
		steps, kv, runs)
	if steps != 3 || kv > 6 || runs != 1 {
		t.Errorf("%.1f step writes, %.1f record writes and %.1f messages per run; want 3, at most 6, and 1", steps, kv, runs)
	}
}

// TestWorkflowDuplicateWakeIsDropped publishes a second wake of the
// suspension a run is executing (what a schedule that fired plus a
// re-publish after a restart make): the run executes once.
func TestWorkflowDuplicateWakeIsDropped(t *testing.T) {
	var fx effects
	inStep := make(chan struct{}, 4)
	release := make(chan struct{})
	wf := ferry.Workflow[orderIn, orderOut]{Name: "dup-wake"}
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		if err := ferry.Sleep(ctx, time.Second); err != nil {
			return nil, err
		}
		_, err := ferry.Step(ctx, "after-sleep", func(context.Context) (int, error) {
			fx.add(ctx.RunID(), "after-sleep")
			inStep <- struct{}{}
			<-release
			return 1, nil
		})
		return &orderOut{}, err
	})
	ctx := context.Background()
	id, err := wf.Start(ctx, h.Client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	<-inStep
	msg := nats.NewMsg(naming.JobRunSubject(wf.Name))
	msg.Header.Set(naming.HeaderJobID, id)
	msg.Header.Set(naming.HeaderWorkflowWake, "1")
	js, _ := jetstream.New(h.Client.Conn())
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inStep:
		t.Fatal("a duplicate wake started a second execution")
	case <-time.After(500 * time.Millisecond):
	}
	close(release)
	if rec := ferrytest.WaitRun(t, h, wf, id); rec.State != ferry.JobSucceeded || fx.get(id, "after-sleep") != 1 {
		t.Fatalf("record %+v, step ran %d times", rec, fx.get(id, "after-sleep"))
	}
}

// TestWorkflowCancelCompensationCutByShutdown: a cancelled run whose
// compensation is cut by its replica's shutdown is not ended cancelled
// with the compensation undone: the next host finishes it, once.
func TestWorkflowCancelCompensationCutByShutdown(t *testing.T) {
	var fx effects
	var hold sync.Map // "block" while the first host runs
	hold.Store("block", true)
	inUndo := make(chan struct{}, 4)
	inStep := make(chan struct{}, 4)
	wf := ferry.Workflow[orderIn, orderOut]{Name: "cut-saga"}
	fn := func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		if _, err := ferry.StepWithCompensation(ctx, "reserve", func(context.Context) (int, error) { return 1, nil },
			func(uctx context.Context, _ int) error {
				if _, blocked := hold.Load("block"); blocked {
					select {
					case inUndo <- struct{}{}:
					default:
					}
					<-uctx.Done()
					return uctx.Err()
				}
				fx.add(ctx.RunID(), "undo")
				return nil
			}); err != nil {
			return nil, err
		}
		_, err := ferry.Step(ctx, "wait", func(sctx context.Context) (int, error) {
			inStep <- struct{}{}
			<-sctx.Done()
			return 0, sctx.Err()
		})
		return &orderOut{}, err
	}
	cfg := ferrytest.Config(t)
	cfg.ShutdownGrace = time.Second
	start := func() *ferry.Host {
		svc := ferry.MustNew("saga", "1.0.0", ferry.WithoutHTTP(), quiet)
		ferry.HandleWorkflow(svc, wf, fn, ferry.JobAckWait(2*time.Second))
		h, err := ferry.NewHost(ferry.WithConfig(cfg), quiet)
		if err == nil {
			err = h.Add(svc)
		}
		if err == nil {
			err = h.Start(context.Background())
		}
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	ctx := context.Background()
	h1 := start()
	client := h1.Services()[0].Client()
	id, err := wf.Start(ctx, client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	<-inStep
	if _, err := wf.Cancel(ctx, client, id); err != nil {
		t.Fatal(err)
	}
	<-inUndo
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_ = h1.Shutdown(sctx) // cuts the compensation
	hold.Delete("block")
	h2 := start()
	defer h2.Shutdown(ctx)
	rec, err := wf.Wait(ctx, h2.Services()[0].Client(), id)
	if err != nil || rec.State != ferry.JobCancelled || fx.get(id, "undo") != 1 {
		t.Fatalf("record %+v, %v; undo ran %d times", rec, err, fx.get(id, "undo"))
	}
}
