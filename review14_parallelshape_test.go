package ferry_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// finding: reordering a Parallel and a Step goes unnoticed, and completed
// steps run again. A Parallel's steps are recorded under the keys of its
// position with an index ("s.<run>.<pos>.<i>"), a Step's under the bare
// position ("s.<run>.<pos>"): a Step now called where a Parallel was
// recorded, or a Parallel where a Step was, finds no record under its own
// keys and runs live — a charge made once is made again — instead of
// failing the run with 409 workflow_changed, as docs/workflows.md promises
// for "inserting, removing, renaming or reordering steps".
func TestReview14ReorderedParallelFailsLoudly(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r14-parallel-shape"}
	var v2 atomic.Bool
	var charges, packs atomic.Int32
	charge := func(ctx ferry.WorkflowContext) error {
		_, err := ferry.Step(ctx, "charge", func(context.Context) (int, error) { return int(charges.Add(1)), nil })
		return err
	}
	pack := func(ctx ferry.WorkflowContext) error {
		_, err := ferry.Parallel(ctx, "pack", 2, func(context.Context, int) (int, error) { return int(packs.Add(1)), nil })
		return err
	}
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		first, second := pack, charge
		if v2.Load() { // the new deploy: charge first
			first, second = charge, pack
		}
		if err := first(ctx); err != nil {
			return nil, err
		}
		if err := second(ctx); err != nil {
			return nil, err
		}
		if _, err := ferry.Receive[bool](ctx, "ship", 0); err != nil {
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
		return err == nil && rec.Waiting == "signal ship"
	}, "the run waits")
	v2.Store(true)
	if err := ferry.Send(ctx, h.Client, id, "ship", true); err != nil {
		t.Fatal(err)
	}
	rec := ferrytest.WaitRun(t, h, wf, id)
	if charges.Load() != 1 || packs.Load() != 2 {
		t.Errorf("completed steps ran again: %d charges, %d packs", charges.Load(), packs.Load())
	}
	if rec.State != ferry.JobFailed || !strings.Contains(rec.LastError, "workflow changed") {
		t.Fatalf("the reordered run ended %s (%q); want failed, workflow_changed", rec.State, rec.LastError)
	}
}
