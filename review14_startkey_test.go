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

// finding: a Start with EnqueueKey retried after its run's message was
// stored but before its record was written — the publish's
// acknowledgement lost, or the caller's deadline passing between the two
// — starts a second run. The retry finds the key's run without a record
// and binds the key to a new run (enqueue's Rebind, meant for a run whose
// record expired), while the first run's message is in the stream and
// runs too: two runs, each charging, for one key. Start's and EnqueueKey's
// docs promise "a retried start returns the same run". A run started for
// later makes it certain (its record is written by the worker only at its
// time); an immediate one when no worker takes it before the retry.
func TestReview14RetriedStartAfterLostAckStartsOneRun(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r14-start-key"}
	var charges atomic.Int32
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		if _, err := ferry.Step(ctx, "charge", func(context.Context) (int, error) { return int(charges.Add(1)), nil }); err != nil {
			return nil, err
		}
		return &orderOut{Total: 1}, nil
	})
	lostAck := ferry.NewClient(h.Client.Conn(), ferry.ClientWithMiddleware(func(next ferry.ClientHandler) ferry.ClientHandler {
		return func(ctx context.Context, msg *ferry.OutgoingMessage) error {
			if err := next(ctx, msg); err != nil {
				return err
			}
			return errors.New("the publish's acknowledgement was lost")
		}
	}))
	ctx := context.Background()
	opts := []ferry.EnqueueOption{ferry.EnqueueKey("order-42", time.Hour), ferry.EnqueueDelay(2 * time.Second)}
	if _, err := wf.Start(ctx, lostAck, &orderIn{Order: "42"}, opts...); err == nil {
		t.Fatal("the first start did not fail")
	}
	id, err := wf.Start(ctx, h.Client, &orderIn{Order: "42"}, opts...) // the caller's retry
	if err != nil {
		t.Fatal(err)
	}
	if rec := ferrytest.WaitRun(t, h, wf, id); rec.State != ferry.JobSucceeded {
		t.Fatalf("record %+v", rec)
	}
	deadline := time.Now().Add(3 * time.Second) // the first message's time has passed: it ran, or it does not
	for time.Now().Before(deadline) && charges.Load() < 2 {
		time.Sleep(50 * time.Millisecond)
	}
	if n := charges.Load(); n != 1 {
		t.Fatalf("one key, retried once, charged %d times", n)
	}
}
