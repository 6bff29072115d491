package ferry_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// finding: a cancel that lands on the record while an execution is
// failing with a retryable error (a panic, a step not recorded), before
// its notice cancelled the execution's context, ends the run "cancelled"
// without running its compensations. executeRun saw no cancel and
// returned the retry; handle's requeue (setRequeued) then finds
// CancelRequested and writes Cancelled directly — the job rule "cancelled
// after the run returned: it ends here", which for a workflow skips the
// saga. docs/workflows.md: "the run ends cancelled after its
// compensations". The notice is fire-and-forget (lost when the replica
// is disconnected; the record is "the durable word", read every 5 s):
// the test writes the cancel into the record as cancelJob does, without
// the notice, and the execution then panics.
func TestReview8CancelDuringFailingExecutionCompensates(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r8-cancel-retry"}
	var undos atomic.Int32
	inStep := make(chan struct{}, 1)
	fail := make(chan struct{})
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		if _, err := ferry.StepWithCompensation(ctx, "reserve", func(context.Context) (int, error) { return 1, nil },
			func(context.Context, int) error { undos.Add(1); return nil }); err != nil {
			return nil, err
		}
		select {
		case inStep <- struct{}{}:
			<-fail
			panic("the execution fails as the cancel lands")
		default:
		}
		_, err := ferry.Step(ctx, "after", func(context.Context) (int, error) { return 1, nil })
		return &orderOut{}, err
	}, ferry.JobBackoff(time.Second, time.Second))
	ctx := context.Background()
	id, err := wf.Start(ctx, h.Client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	<-inStep
	// Cancel's record write, its notice lost.
	js, err := jetstream.New(h.Client.Conn())
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "ferry-jobs")
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "r."+id)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["state"] != "running" {
		t.Fatalf("record %v", rec)
	}
	rec["cancel_requested"] = true
	data, _ := json.Marshal(rec)
	if _, err := kv.Update(ctx, "r."+id, data, e.Revision()); err != nil {
		t.Fatal(err)
	}
	close(fail)
	got := ferrytest.WaitRun(t, h, wf, id)
	if got.State != ferry.JobCancelled || undos.Load() != 1 {
		t.Fatalf("the run ended %s with its compensation run %d times; want cancelled after 1", got.State, undos.Load())
	}
}
