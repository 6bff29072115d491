package ferry_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// finding: a step whose result is larger than the broker's maximum
// payload cannot be recorded, and that is treated as a transient
// recording error (retryRun): the run executes again, and the step's
// function — its effect: a charge, an email — runs again in every
// execution, up to JobMaxAttempts (10 by default, with backoff), before
// the run fails. docs/workflows.md lists such a result as "not
// guaranteed", but nothing says that its effect repeats; the size is
// known before the write, so it can fail the step for good (recorded as
// the step's error, which fits) after one run of its function.
func TestReview8OversizedStepResultRunsOnce(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r8-big-result"}
	var runs atomic.Int32
	var size int
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		_, err := ferry.Step(ctx, "fetch", func(context.Context) (string, error) {
			runs.Add(1) // the effect
			return strings.Repeat("x", size), nil
		})
		if err != nil {
			return nil, err
		}
		return &orderOut{}, nil
	}, ferry.JobMaxAttempts(4), ferry.JobBackoff(10*time.Millisecond, 20*time.Millisecond))
	size = int(h.Client.Conn().MaxPayload()) + 1
	id, err := wf.Start(context.Background(), h.Client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	rec := ferrytest.WaitRun(t, h, wf, id)
	if rec.State != ferry.JobFailed {
		t.Fatalf("record %+v", rec)
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("the step's function ran %d times for a result that can never be recorded (record %q after %d attempts)", n, rec.LastError, rec.Attempts)
	}
}
