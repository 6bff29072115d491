package ferry_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// finding: Send checks that the run has not ended, then stores the
// signal: a run that ends between the two (its end purges its signals,
// store.Forget) leaves Send answering nil — "stored before Send returns",
// "the run receives it" — for a signal no execution will ever read, and
// the signal's key stays in the ferry-jobs bucket for good (no TTL, and
// the one purge already happened). Acknowledged and lost, and a leak
// that grows the bucket towards its MaxBytes. The race is provoked by
// sending in a loop while runs end; the leftover keys are counted.
func TestReview8SendToEndingRunIsNotLost(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r8-send-end"}
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		if _, err := ferry.Receive[int](ctx, "go", 0); err != nil {
			return nil, err
		}
		return &orderOut{}, nil
	})
	ctx := context.Background()
	js, err := jetstream.New(h.Client.Conn())
	if err != nil {
		t.Fatal(err)
	}
	const runs = 15
	var accepted atomic.Int32 // Sends of "extra" that returned nil
	var leftover []string
	for r := range runs {
		id, err := wf.Start(ctx, h.Client, &orderIn{Order: fmt.Sprint(r)})
		if err != nil {
			t.Fatal(err)
		}
		ferrytest.Eventually(t, func() bool {
			rec, err := wf.Get(ctx, h.Client, id)
			return err == nil && rec.Waiting == "signal go"
		}, "run waits")
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					err := ferry.Send(ctx, h.Client, id, "extra", 1)
					var fe *ferry.Error
					if errors.As(err, &fe) && fe.Status == 409 {
						return
					}
					if err == nil {
						accepted.Add(1)
					}
				}
			})
		}
		if err := ferry.Send(ctx, h.Client, id, "go", 1); err != nil {
			t.Fatal(err)
		}
		ferrytest.WaitRun(t, h, wf, id)
		time.AfterFunc(2*time.Second, func() { close(stop) })
		wg.Wait()
		kv, err := js.KeyValue(ctx, "ferry-jobs")
		if err != nil {
			t.Fatal(err)
		}
		lister, err := kv.ListKeysFiltered(ctx, "g."+id+".>")
		if err != nil {
			t.Fatal(err)
		}
		for k := range lister.Keys() {
			leftover = append(leftover, k)
		}
		_ = lister.Stop()
	}
	if len(leftover) > 0 {
		t.Fatalf("%d signals acknowledged (Send returned nil) to runs that had ended, never received and never removed: %v", len(leftover), leftover[:min(3, len(leftover))])
	}
	t.Logf("%d signals accepted while the runs ended, none left behind", accepted.Load())
}
