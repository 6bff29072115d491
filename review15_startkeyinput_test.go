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

// TestReview15RetriedStartRunsOneInput proves that a Start with
// EnqueueKey retried after a lost acknowledgement, with an input that
// differs from the first attempt's (a retry that rebuilds its request: a
// timestamp, a re-read form), runs one run on two inputs. The retry finds
// the key's run without a record and enqueues it again under its ID: its
// message is dropped as a duplicate — the run starts on the first input —
// but the record it writes holds the retry's input, which every execution
// after a wake decodes. A workflow must see one input for its whole run
// (its replay is deterministic only then); EnqueueKey promises that a
// second enqueue with the key stores nothing.
func TestReview15RetriedStartRunsOneInput(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r15-start-key-input"}
	var mu sync.Mutex
	var seen []string // the input of each execution
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		mu.Lock()
		seen = append(seen, in.Order)
		mu.Unlock()
		if err := ferry.Sleep(ctx, 500*time.Millisecond); err != nil {
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
	if _, err := wf.Start(ctx, lostAck, &orderIn{Order: "first"}, opts...); err == nil {
		t.Fatal("the first start did not fail")
	}
	id, err := wf.Start(ctx, h.Client, &orderIn{Order: "retry"}, opts...) // the caller's retry, its request rebuilt
	if err != nil {
		t.Fatal(err)
	}
	if rec := ferrytest.WaitRun(t, h, wf, id); rec.State != ferry.JobSucceeded {
		t.Fatalf("record %+v", rec)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, in := range seen[1:] {
		if in != seen[0] {
			t.Fatalf("one run executed on inputs %q", seen)
		}
	}
}
