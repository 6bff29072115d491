package ferry_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// finding: a run's wait schedule outlives the run. A Receive with a
// timeout (or an Await of another run, or a step retry) arranges a message
// schedule at its time; when the signal comes first the run goes on and
// ends, and nothing removes the schedule. It fires later: while the run's
// record is kept it is dropped (the record is final), but once the record
// is gone (JobRetention, default 7 days, at least 1m — a receive timeout
// of 30 days outlives it) beginRun finds no record and makes one from
// the message, runFromMessage, as for a start whose record was not
// written: a wake carries no input, so a phantom run appears, "failed"
// with a malformed input, in the listing, the metrics and the dead-letter
// stream, under the ID of a run that succeeded. The record's removal is
// simulated by purging its key (what its TTL does).
func TestReview8StaleWakeAfterRecordExpiry(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r8-stale-wake"}
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		if _, err := ferry.Receive[int](ctx, "go", 2*time.Second); err != nil {
			return nil, err
		}
		return &orderOut{Total: 1}, nil
	})
	ctx := context.Background()
	id, err := wf.Start(ctx, h.Client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool {
		rec, err := wf.Get(ctx, h.Client, id)
		return err == nil && rec.Waiting == "signal go"
	}, "the run waits")
	if err := ferry.Send(ctx, h.Client, id, "go", 1); err != nil {
		t.Fatal(err)
	}
	if rec := ferrytest.WaitRun(t, h, wf, id); rec.State != ferry.JobSucceeded {
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
	time.Sleep(3 * time.Second) // past the receive's timeout: its schedule fires
	if rec, err := wf.Get(ctx, h.Client, id); err == nil {
		t.Fatalf("a run that succeeded and was removed came back as %s (last error %q, attempts %d): its receive-timeout schedule fired after its end",
			rec.State, rec.LastError, rec.Attempts)
	}
}
