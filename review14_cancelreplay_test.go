package ferry_test

import (
	"context"
	"sync"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// finding: a cancel reaches a workflow function's context before its
// recorded steps are replayed, against WorkflowContext's contract ("once
// the execution replayed its recorded steps"). executeRun's start makes
// the function's context with the execution's deadline — every job has
// one, JobTimeout's 30m by default — and cancels that deadline context
// when the execution's context ends (context.AfterFunc(ctx, c2)), which a
// cancel does at once. A function that looks at its context between
// steps, as Go code does, gives up in the replay: the compensable steps
// after that point are not registered, and their compensations never
// run although the run ends cancelled.
func TestReview14CancelReachesFunctionAfterReplay(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r14-cancel-replay"}
	var mu sync.Mutex
	var undone []string
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		for _, item := range []string{"a", "b", "c"} {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if _, err := ferry.StepWithCompensation(ctx, "reserve-"+item,
				func(context.Context) (string, error) { return item, nil },
				func(_ context.Context, item string) error {
					mu.Lock()
					undone = append(undone, item)
					mu.Unlock()
					return nil
				}); err != nil {
				return nil, err
			}
		}
		if _, err := ferry.Receive[bool](ctx, "approval", 0); err != nil {
			return nil, err
		}
		return &orderOut{Total: 3}, nil
	})
	ctx := context.Background()
	id, err := wf.Start(ctx, h.Client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool {
		rec, err := wf.Get(ctx, h.Client, id)
		return err == nil && rec.Waiting == "signal approval"
	}, "the run waits for its approval")
	if _, err := wf.Cancel(ctx, h.Client, id); err != nil {
		t.Fatal(err)
	}
	if rec := ferrytest.WaitRun(t, h, wf, id); rec.State != ferry.JobCancelled {
		t.Fatalf("record %+v", rec)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(undone) != 3 {
		t.Fatalf("the cancelled run compensated %v; want c, b, a", undone)
	}
}
