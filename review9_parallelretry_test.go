package ferry_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// finding: a run's record keeps one step's retry count (StepAttempts, at
// WaitStep, for "retry NAME"): when two steps of one Parallel fail and
// both wait for a retry of more than 2 s, the suspension records only the
// first, and the other's attempts are forgotten — the next execution runs
// it from attempt 1 again. Each execution that retries one of them resets
// the others, so a step of a fan-out runs more often than its
// StepMaxAttempts (with n failing steps, up to about n times more), and
// the run takes as many more backoffs to fail. Here step [1] fails a
// little after step [0] each time, with StepMaxAttempts(2).
func TestReview9ParallelRetriesKeepEachStepsAttempts(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r9-par-retry"}
	var mu sync.Mutex
	calls := map[int]int{}
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		_, err := ferry.Parallel(ctx, "call", 2, func(ctx context.Context, i int) (int, error) {
			mu.Lock()
			calls[i]++
			mu.Unlock()
			if i == 1 {
				time.Sleep(300 * time.Millisecond) // fails second
			}
			return 0, errors.New("down")
		}, ferry.StepMaxAttempts(2), ferry.StepBackoff(3*time.Second, 3*time.Second))
		if err != nil {
			return nil, err
		}
		return &orderOut{}, nil
	})
	ctx := context.Background()
	id, err := wf.Start(ctx, h.Client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	rec, err := wf.Wait(wctx, h.Client, id)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if rec.State != ferry.JobFailed || calls[0] > 2 || calls[1] > 2 {
		t.Fatalf("with StepMaxAttempts(2), step call[0] ran %d times and call[1] %d times; the run ended %s", calls[0], calls[1], rec.State)
	}
}
