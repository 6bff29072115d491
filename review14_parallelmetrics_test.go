package ferry_test

import (
	"context"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// finding: a Parallel of n steps makes n label values of the step
// metrics. Each of its steps is observed under its own name, "NAME[i]"
// (the name its record and span carry), so ferry_workflow_steps_total and
// ferry_workflow_step_duration_seconds get a series set per index: a
// fan-out of MaxParallel (10,000) steps adds some 160,000 series to every
// scrape, kept for the process's life, and each new label set copies the
// observer's whole series map (cowMap.add). A metric label must not carry
// an index.
func TestReview14ParallelStepMetricsAreBounded(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r14-fanout-metrics"}
	svc := ferry.MustNew("fanout", "1.0.0", quiet)
	ferry.HandleWorkflow(svc, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		if _, err := ferry.Parallel(ctx, "pack", 200, func(context.Context, int) (int, error) { return 1, nil }); err != nil {
			return nil, err
		}
		return &orderOut{}, nil
	})
	startHost(t, []ferry.Option{ferry.WithConfig(ferrytest.Config(t))}, svc)
	client := ferry.NewClient(svc.Client().Conn())
	id, err := wf.Start(context.Background(), client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := wf.Wait(context.Background(), client, id); err != nil || rec.State != ferry.JobSucceeded {
		t.Fatalf("record %+v, %v", rec, err)
	}
	mfs := scrape(t, ferrytest.URL(t, svc)+"/metrics")
	steps := map[string]bool{}
	if mf := mfs["ferry_workflow_steps_total"]; mf != nil {
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == "step" {
					steps[l.GetValue()] = true
				}
			}
		}
	}
	if len(steps) == 0 || len(steps) > 1 {
		t.Fatalf("a fan-out of 200 steps is %d label values of ferry_workflow_steps_total; want 1", len(steps))
	}
}
