package ferry_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
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
		return &orderOut{Total: v}, nil
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
	if err := ferry.Send(ctx, h.Client, id, "approve", 42); err != nil {
		t.Fatal(err)
	}
	rec := ferrytest.WaitRun(t, h, wf, id)
	if rec.State != ferry.JobSucceeded || rec.Result.Total != 42 {
		t.Fatalf("record %+v", rec)
	}
}
