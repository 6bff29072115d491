package ferry_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// finding: a child run that the worker fails without executing it again
// (its executions hung or their processes died past its attempts: the
// "delivered N times without an acknowledgement" dead letter) never wakes
// its parent. storeDeadLetter records the child failed through finish, but
// only endRun (deferred in handle, which did not run) wakes a parent, and
// a parent awaiting its own child sets no poll time (at is zero). The
// parent waits forever, holding a record that says "child ID", although
// the child's record says failed. Here the child's execution hangs past
// JobTimeout (a frozen process: its step ignores its context); in
// production the same follows a SIGKILL of the child's last attempt.
func TestReview8ParentWokenWhenChildDeadLettered(t *testing.T) {
	child := ferry.Workflow[orderIn, orderOut]{Name: "r8-hung-child"}
	parent := ferry.Workflow[orderIn, orderOut]{Name: "r8-parent"}
	release := make(chan struct{})
	svc := ferry.MustNew("r8-flows", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.HandleWorkflow(svc, child, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		_, err := ferry.Step(ctx, "hang", func(context.Context) (int, error) {
			<-release // a frozen process: the step does not return
			return 1, nil
		})
		return &orderOut{}, err
	}, ferry.JobMaxAttempts(1), ferry.JobTimeout(time.Second), ferry.JobAckWait(time.Second))
	ferry.HandleWorkflow(svc, parent, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		id, err := ferry.StartChild(ctx, child, in)
		if err != nil {
			return nil, err
		}
		out, err := ferry.Await(ctx, child, id)
		if err != nil {
			return nil, err
		}
		return out, nil
	})
	h := ferrytest.Start(t, svc)
	t.Cleanup(func() { close(release) }) // runs before the host's shutdown
	ctx := context.Background()

	id, err := parent.Start(ctx, h.Client, &orderIn{Order: "p"})
	if err != nil {
		t.Fatal(err)
	}
	var childID string
	ferrytest.Eventually(t, func() bool {
		rec, err := parent.Get(ctx, h.Client, id)
		if err != nil || rec.State != ferry.JobScheduled || len(rec.Waiting) < len("child ") {
			return false
		}
		childID = rec.Waiting[len("child "):]
		return true
	}, "the parent awaits its child")
	ferrytest.Eventually(t, func() bool {
		rec, err := child.Get(ctx, h.Client, childID)
		return err == nil && rec.State == ferry.JobFailed
	}, "the hung child is failed by the worker")

	// The child failed: its parent must be woken and fail with child_failed.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rec, err := parent.Wait(wctx, h.Client, id)
	if err != nil {
		last, _ := parent.Get(ctx, h.Client, id)
		t.Fatalf("the parent was never woken after its child failed: %v; parent record %+v", err, last)
	}
	if rec.State != ferry.JobFailed {
		t.Fatalf("parent record %+v", rec)
	}
}
