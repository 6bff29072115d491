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

// finding: one signal whose value does not decode into Receive's T fails
// the run for good. Send takes any value and checks nothing against the
// receiver; Receive records the signal as received, then returns a
// Permanent error ("ferry: receive receive approve: ...": the step name
// doubled) that the function must return: the run compensates and ends
// failed, its record saying only "internal error". Anyone allowed to Send
// to a run (an HTTP endpoint that forwards a body, a client with an old
// contract) can end any waiting run, and the run's caller cannot tell
// why. A signal that is not a T should be set aside (logged, skipped:
// decoding is the same in every execution) — or rejected by Send, or at
// least fail the run with a 4xx that names the signal.
func TestReview8WronglyTypedSignalDoesNotEndRun(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r8-signal-type"}
	var undos atomic.Int32
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		if _, err := ferry.StepWithCompensation(ctx, "charge", func(context.Context) (int, error) { return 1, nil },
			func(context.Context, int) error { undos.Add(1); return nil }); err != nil {
			return nil, err
		}
		v, err := ferry.Receive[int](ctx, "approve", time.Minute)
		if err != nil {
			return nil, err
		}
		return &orderOut{Total: v}, nil
	})
	ctx := context.Background()
	id, err := wf.Start(ctx, h.Client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool {
		rec, err := wf.Get(ctx, h.Client, id)
		return err == nil && rec.Waiting == "signal approve"
	}, "the run waits for approve")
	if err := ferry.Send(ctx, h.Client, id, "approve", map[string]string{"approved": "yes"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	rec, err := wf.Get(ctx, h.Client, id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State.Final() {
		t.Fatalf("one wrongly typed signal ended the run %s (last error %q, compensations run: %d)", rec.State, rec.LastError, undos.Load())
	}
	if err := ferry.Send(ctx, h.Client, id, "approve", 7); err != nil {
		t.Fatal(err)
	}
	if rec := ferrytest.WaitRun(t, h, wf, id); rec.State != ferry.JobSucceeded || rec.Result.Total != 7 {
		t.Fatalf("record %+v", rec)
	}
}

// finding (wording): Send's 400 for a bad signal name reads "the signal
// name job name "x y" may contain only ...": naming.CheckJobName's text
// is appended as is.
func TestReview8SendBadNameMessage(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r8-signal-name"}
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		return &orderOut{}, nil
	})
	id, err := wf.Start(context.Background(), h.Client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	err = ferry.Send(context.Background(), h.Client, id, "x y", 1)
	if err == nil || strings.Contains(err.Error(), "job name") {
		t.Fatalf("Send with a bad signal name: %v", err)
	}
}
