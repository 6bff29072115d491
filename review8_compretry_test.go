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

// finding: the compensations of a cancelled run are retried without
// backoff once their delay passes 2 s. A failed undo whose next delay is
// long suspends the run ("retry compensate NAME"), but suspendRun sees
// CancelRequested, still set on the record, and queues the run at once
// instead of scheduling it at the retry's time; the next execution runs
// the undo again immediately. The StepWithCompensation doc says "its
// errors are retried like a step's": a refund API that is down gets its
// remaining attempts within milliseconds, and the compensation is
// recorded failed for good.
func TestReview8CancelledRunsCompensationKeepsBackoff(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r8-comp-backoff"}
	var mu sync.Mutex
	var attempts []time.Time
	inStep := make(chan struct{}, 1)
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		if _, err := ferry.StepWithCompensation(ctx, "charge", func(context.Context) (int, error) { return 1, nil },
			func(context.Context, int) error {
				mu.Lock()
				attempts = append(attempts, time.Now())
				mu.Unlock()
				return errors.New("refund API down")
			}); err != nil {
			return nil, err
		}
		_, err := ferry.Step(ctx, "block", func(sctx context.Context) (int, error) {
			select {
			case inStep <- struct{}{}:
			default:
			}
			<-sctx.Done()
			return 0, sctx.Err()
		})
		return &orderOut{}, err
	})
	ctx := context.Background()
	id, err := wf.Start(ctx, h.Client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	<-inStep
	if _, err := wf.Cancel(ctx, h.Client, id); err != nil {
		t.Fatal(err)
	}
	// Attempts 1 and 2 wait in the execution (about 1 s, then 2 s); the
	// third's delay (about 4 s) must be waited too.
	ferrytest.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(attempts) >= 3
	}, "three attempts of the undo")
	time.Sleep(1500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(attempts) > 3 {
		var gaps []time.Duration
		for i := 1; i < len(attempts); i++ {
			gaps = append(gaps, attempts[i].Sub(attempts[i-1]).Round(time.Millisecond))
		}
		t.Fatalf("the undo ran %d times; the gaps between its attempts: %v (the default backoff: about 1s, 2s, 4s, 8s)", len(attempts), gaps)
	}
}
