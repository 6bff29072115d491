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

// finding: Resume removes every recorded failure of the run
// (dropFailedSteps), not only the one that ended it. Failures the
// function handled — a receive that timed out, a step whose error took it
// down another path — are part of the path the run took: removed, they
// are done again, live. A timed-out Receive waits again for its whole
// timeout (or receives a signal sent since, taking the other branch); a
// handled step that now succeeds moves every later step one position, and
// the resumed run fails with 409 workflow_changed instead of going on.
// Docs: "Resume executes a failed run again after a fix: the steps that
// failed run again, the completed ones return their records".
func TestReview9ResumeKeepsHandledFailures(t *testing.T) {
	t.Run("receive timeout", func(t *testing.T) {
		wf := ferry.Workflow[orderIn, orderOut]{Name: "r9-resume-recv"}
		var timeout atomic.Int64
		timeout.Store(int64(time.Second))
		var charges atomic.Int32
		h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
			_, err := ferry.Receive[bool](ctx, "approval", time.Duration(timeout.Load()))
			switch {
			case errors.Is(err, ferry.ErrReceiveTimeout): // no approval: the default path
			case err != nil:
				return nil, err
			}
			if err := ferry.Sleep(ctx, time.Second); err != nil {
				return nil, err
			}
			if _, err := ferry.Step(ctx, "charge", func(context.Context) (int, error) {
				if charges.Add(1) == 1 {
					return 0, ferry.Permanent(errors.New("the payment service is misconfigured"))
				}
				return 1, nil
			}); err != nil {
				return nil, err
			}
			return &orderOut{Total: 1}, nil
		})
		ctx := context.Background()
		id, err := wf.Start(ctx, h.Client, &orderIn{})
		if err != nil {
			t.Fatal(err)
		}
		if rec := ferrytest.WaitRun(t, h, wf, id); rec.State != ferry.JobFailed {
			t.Fatalf("first run: %+v", rec)
		}
		timeout.Store(int64(time.Hour)) // what a real timeout looks like: the resumed run must not wait it again
		resume(t, h, wf, id)
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		rec, err := wf.Wait(wctx, h.Client, id)
		if err != nil || rec.State != ferry.JobSucceeded {
			last, _ := wf.Get(ctx, h.Client, id)
			t.Fatalf("the resumed run did not succeed (%v): state %s, waiting %q, last error %q, attempts %d — its receive, which had timed out, waits again", err, last.State, last.Waiting, last.LastError, last.Attempts)
		}
	})
	t.Run("handled step failure", func(t *testing.T) {
		wf := ferry.Workflow[orderIn, orderOut]{Name: "r9-resume-handled"}
		var checks, charges atomic.Int32
		h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
			_, err := ferry.Step(ctx, "fraud-check", func(context.Context) (bool, error) {
				if checks.Add(1) == 1 {
					return false, ferry.Permanent(errors.New("the fraud service refused"))
				}
				return true, nil
			})
			if err != nil { // no automatic check: a person reviews the order
				if _, err := ferry.Step(ctx, "manual-review", func(context.Context) (bool, error) { return true, nil }); err != nil {
					return nil, err
				}
			}
			if _, err := ferry.Step(ctx, "charge", func(context.Context) (int, error) {
				if charges.Add(1) == 1 {
					return 0, ferry.Permanent(errors.New("the payment service is misconfigured"))
				}
				return 1, nil
			}); err != nil {
				return nil, err
			}
			return &orderOut{Total: 1}, nil
		})
		ctx := context.Background()
		id, err := wf.Start(ctx, h.Client, &orderIn{})
		if err != nil {
			t.Fatal(err)
		}
		if rec := ferrytest.WaitRun(t, h, wf, id); rec.State != ferry.JobFailed {
			t.Fatalf("first run: %+v", rec)
		}
		resume(t, h, wf, id)
		rec := ferrytest.WaitRun(t, h, wf, id)
		if rec.State != ferry.JobSucceeded || checks.Load() != 1 {
			t.Fatalf("the resumed run ended %s (%q); fraud-check, whose failure the run had handled, ran %d times", rec.State, rec.LastError, checks.Load())
		}
	})
}

// resume resumes the failed run id and waits until its execution began
// (Wait would answer the failed record at once).
func resume(t *testing.T, h *ferrytest.Host, wf ferry.Workflow[orderIn, orderOut], id string) {
	t.Helper()
	ctx := context.Background()
	before, err := wf.Get(ctx, h.Client, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := wf.Resume(ctx, h.Client, id); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool {
		rec, err := wf.Get(ctx, h.Client, id)
		return err == nil && rec.StartedAt.After(before.StartedAt)
	}, "the resumed run began")
}
