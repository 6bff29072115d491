package ferry_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// finding: Send moves the run's record on (Queued, its wake number + 1)
// and then publishes the wake that carries the new number, both under the
// caller's context. A deadline that ends between the two — or during the
// record's write, whose reply is then lost although the write was made —
// leaves a record that says "queued" and no message that will ever execute
// it: the run waited for a signal, so no schedule is pending either, and
// the stale-wake republish needs a stale message. Send answers an error
// and its doc says to send again with SendKey; that retry finds the record
// Queued, which wakeRun leaves alone, and answers nil. The run is stuck
// for good, its signal acknowledged. The deadlines are swept across one
// Send's duration until one falls in the window.
func TestReview9SendRetryWakesRunAfterCutSend(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r9-send-cut"}
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		for range 1000 {
			if _, err := ferry.Receive[int](ctx, "go", 0); err != nil {
				return nil, err
			}
		}
		return &orderOut{}, nil
	})
	ctx := context.Background()
	id, err := wf.Start(ctx, h.Client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	waitsAt := func(k int) bool {
		rec, err := wf.Get(ctx, h.Client, id)
		return err == nil && rec.State == ferry.JobScheduled && rec.Waiting == "signal go" && rec.Steps == k
	}
	ferrytest.Eventually(t, func() bool { return waitsAt(0) }, "the run waits")

	// One Send's duration, to sweep the deadlines over.
	start := time.Now()
	if err := ferry.Send(ctx, h.Client, id, "go", 0, ferry.SendKey("k0")); err != nil {
		t.Fatal(err)
	}
	full := time.Since(start)
	ferrytest.Eventually(t, func() bool { return waitsAt(1) }, "the run received signal 1")

	received, cut := 1, 0
	deadline := time.Now().Add(20 * time.Second)
	for trial := 1; time.Now().Before(deadline) && cut < 30 && received < 900; trial++ {
		key := fmt.Sprint("k", trial)
		d := time.Duration(int64(full) * int64(trial%40) / 40)
		sctx, cancel := context.WithTimeout(ctx, d)
		err := ferry.Send(sctx, h.Client, id, "go", trial, ferry.SendKey(key))
		cancel()
		if err != nil {
			// The documented recovery: send again with the same key.
			cut++
			if err := ferry.Send(ctx, h.Client, id, "go", trial, ferry.SendKey(key)); err != nil {
				t.Fatalf("the retried Send: %v", err)
			}
		}
		received++
		wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
		for !waitsAt(received) && wctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		wcancel()
		if !waitsAt(received) {
			rec, _ := wf.Get(ctx, h.Client, id)
			t.Fatalf("trial %d (deadline %v of a %v Send, first Send cut: %v): the signal was acknowledged by the retried Send, "+
				"but the run never received it: record state %s, waiting %q, steps %d (expected %d)",
				trial, d, full, err != nil, rec.State, rec.Waiting, rec.Steps, received)
		}
	}
	t.Logf("%d signals received, %d Sends cut by their deadline and retried", received, cut)
}
