package ferry_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// finding: bad arguments to the workflow functions are taken for
// failures of the broker or panics, which execute the run again, up to
// JobMaxAttempts (10 by default; 4 here), instead of failing it at once with the mistake named:
//   - Await with an ID that cannot be a run's ("", a caller's typo, an
//     ID from a signal): store.Get reads the key "r.<id>", the broker
//     refuses an invalid key, and that is a recordingError (retryRun);
//   - Parallel with n < 0: make([]T, n) panics, recovered by callWorkflow
//     as a panic (retryRun).
//
// Each execution replays the run's steps again; the record ends with a
// generic "internal error". An ID that is not valid is a 404 like a
// missing run (what Send does), and n < 0 a permanent error.
func TestReview8BadArgumentsFailOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func(ctx ferry.WorkflowContext) error
	}{
		{"await an invalid ID", func(ctx ferry.WorkflowContext) error {
			_, err := ferry.Await(ctx, ferry.Workflow[orderIn, orderOut]{Name: "r8-other"}, "not a run id!")
			return err
		}},
		{"parallel of -1", func(ctx ferry.WorkflowContext) error {
			_, err := ferry.Parallel(ctx, "part", -1, func(context.Context, int) (int, error) { return 0, nil })
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wf := ferry.Workflow[orderIn, orderOut]{Name: "r8-bad-args"}
			var executions atomic.Int32
			h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
				executions.Add(1)
				if err := tc.call(ctx); err != nil {
					return nil, err
				}
				return &orderOut{}, nil
			}, ferry.JobMaxAttempts(4), ferry.JobBackoff(10*time.Millisecond, 20*time.Millisecond))
			id, err := wf.Start(context.Background(), h.Client, &orderIn{})
			if err != nil {
				t.Fatal(err)
			}
			rec := ferrytest.WaitRun(t, h, wf, id)
			if n := executions.Load(); n != 1 || rec.State != ferry.JobFailed {
				t.Errorf("%d executions, record %s %q; want one execution, failed", n, rec.State, rec.LastError)
			}
		})
	}
}

// What held: Receive with a bad name fails with a permanent error, once.
func TestReview8ReceiveBadNameIsPermanent(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r8-bad-receive"}
	var executions atomic.Int32
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		executions.Add(1)
		_, err := ferry.Receive[int](ctx, "a.b", 0)
		if err == nil || !ferry.IsPermanent(err) {
			return nil, errors.Join(errors.New("want a permanent error"), err)
		}
		return nil, err
	})
	id, err := wf.Start(context.Background(), h.Client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	if rec := ferrytest.WaitRun(t, h, wf, id); rec.State != ferry.JobFailed || executions.Load() != 1 {
		t.Fatalf("record %+v after %d executions", rec, executions.Load())
	}
}
