package ferry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// finding: the compensation of a cancelled run is not cancelled by a
// shutdown, although execution.compensate documents "Their context is not
// cancelled by the run's cancel, only by a shutdown". The shutdown cancels
// the execution's context, but its cause is already errJobCancelled (the
// cancel came first and a cause never changes), so the AfterFunc in
// compensate takes it for the cancel and leaves the undo's context alone.
// An undo that waits on its context (a call with the context as its
// deadline) holds the shutdown for its whole grace, and keeps running
// after Shutdown returned.
func TestReview8ShutdownReachesCancelledRunsCompensation(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r8-comp-shutdown"}
	inStep := make(chan struct{}, 1)
	inUndo := make(chan struct{}, 1)
	undoDone := make(chan error, 1)
	release := make(chan struct{})
	svc := ferry.MustNew("r8-comp", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.HandleWorkflow(svc, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		if _, err := ferry.StepWithCompensation(ctx, "reserve", func(context.Context) (int, error) { return 1, nil },
			func(uctx context.Context, _ int) error {
				inUndo <- struct{}{}
				select {
				case <-uctx.Done(): // a shutdown must end it
					undoDone <- uctx.Err()
					return uctx.Err()
				case <-release:
					undoDone <- errors.New("never cancelled")
					return nil
				}
			}); err != nil {
			return nil, err
		}
		_, err := ferry.Step(ctx, "block", func(sctx context.Context) (int, error) {
			inStep <- struct{}{}
			<-sctx.Done()
			return 0, sctx.Err()
		})
		return &orderOut{}, err
	})
	cfg := ferrytest.Config(t)
	cfg.ShutdownGrace = 3 * time.Second
	h, err := ferry.NewHost(ferry.WithConfig(cfg), ferry.WithLogger(ferrytest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Add(svc); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer close(release)
	c := ferry.NewClient(h.NATS())
	id, err := wf.Start(ctx, c, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	<-inStep
	if _, err := wf.Cancel(ctx, c, id); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inUndo:
	case <-time.After(5 * time.Second):
		t.Fatal("the compensation did not start")
	}
	began := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 6*time.Second)
	defer cancel()
	_ = h.Shutdown(sctx)
	took := time.Since(began)
	select {
	case err := <-undoDone:
		if err == nil || err.Error() == "never cancelled" {
			t.Fatalf("the undo's context was not cancelled by the shutdown (%v)", err)
		}
	case <-time.After(time.Second):
		t.Fatalf("the shutdown took %v and returned, but the undo's context was never cancelled: the compensation still runs", took.Round(time.Millisecond))
	}
}
