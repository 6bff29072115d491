package ferry_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// finding: a workflow run started for later (EnqueueDelay, EnqueueAt) and
// cancelled before its time keeps its start schedule. Cancel wakes the run
// to compensate (it becomes queued, not cancelled), so the purge of the
// schedule that a cancelled job gets is skipped. The schedule fires at the
// start time: while the cancelled record is kept it is dropped, but once
// the record is gone (JobRetention) beginRun finds no record, makes one
// from the start message (it carries the input) and executes the run —
// the cancelled run's steps, payment included, run. The record's removal
// is simulated by purging its key (what its TTL does).
func TestReview14CancelledScheduledRunDoesNotStartLater(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r14-sched-cancel"}
	var charges atomic.Int32
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		if _, err := ferry.Step(ctx, "charge", func(context.Context) (int, error) { return int(charges.Add(1)), nil }); err != nil {
			return nil, err
		}
		return &orderOut{Total: 1}, nil
	})
	ctx := context.Background()
	id, err := wf.Start(ctx, h.Client, &orderIn{Order: "later"}, ferry.EnqueueDelay(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wf.Cancel(ctx, h.Client, id); err != nil {
		t.Fatal(err)
	}
	if rec := ferrytest.WaitRun(t, h, wf, id); rec.State != ferry.JobCancelled {
		t.Fatalf("record %+v", rec)
	}
	js, err := jetstream.New(h.Client.Conn())
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "ferry-jobs")
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, "r."+id); err != nil { // the record's retention passed
		t.Fatal(err)
	}
	deadline := time.Now().Add(6 * time.Second) // past the start time: its schedule fires
	for time.Now().Before(deadline) && charges.Load() == 0 {
		time.Sleep(100 * time.Millisecond)
	}
	if n := charges.Load(); n != 0 {
		rec, _ := wf.Get(ctx, h.Client, id)
		t.Fatalf("a run cancelled before its start time ran its step %d time(s) at that time (record now %v)", n, rec)
	}
}
