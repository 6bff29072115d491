package ferry_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// finding: a workflow run keeps the "waiting" of its last wait after it
// was woken. When it later fails in a way that is retried later (a panic,
// or a step that could not be recorded, with a retry delay that waits as
// a message schedule), its record is scheduled for the retry with the old
// wait still named: GET shows it waiting for "signal go" while it waits
// for its retry, and a second signal of that name — Send wakes a run
// scheduled for what it names — executes it at once, cutting its backoff
// short and not counting the attempt (a wake is not an attempt), so a run
// that panics while signals keep coming never reaches JobMaxAttempts.
func TestReview14RetryBackoffNotCutBySignal(t *testing.T) {
	ferry.SetLongRetry(t, time.Second)
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r14-stale-waiting"}
	var executions atomic.Int32
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		if _, err := ferry.Receive[int](ctx, "go", 0); err != nil {
			return nil, err
		}
		if executions.Add(1) == 1 {
			panic("a bug, fixed by the next deploy")
		}
		return &orderOut{Total: 1}, nil
	}, ferry.JobBackoff(20*time.Minute, time.Hour)) // 12s under ferrytest's retry scale
	ctx := context.Background()
	id, err := wf.Start(ctx, h.Client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool {
		rec, err := wf.Get(ctx, h.Client, id)
		return err == nil && rec.Waiting == "signal go"
	}, "the run waits for its signal")
	if err := ferry.Send(ctx, h.Client, id, "go", 1); err != nil {
		t.Fatal(err)
	}
	var rec *ferry.JobRecord[orderOut]
	ferrytest.Eventually(t, func() bool {
		rec, err = wf.Get(ctx, h.Client, id)
		return err == nil && executions.Load() == 1 && rec.State == ferry.JobScheduled
	}, "the run panicked and waits for its retry")
	if rec.Waiting == "signal go" {
		t.Errorf("a run scheduled for its retry reads waiting %q", rec.Waiting)
	}
	if err := ferry.Send(ctx, h.Client, id, "go", 2); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second) // well within the 12s backoff
	for time.Now().Before(deadline) && executions.Load() == 1 {
		time.Sleep(50 * time.Millisecond)
	}
	if executions.Load() != 1 {
		rec, _ = wf.Get(ctx, h.Client, id)
		t.Fatalf("a signal executed the run during its retry's backoff (record now %s, attempts %d)", rec.State, rec.Attempts)
	}
}
