package ferry_test

import (
	"context"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestWorkflowRunInOneTrace: a run's executions (before and after a
// durable sleep) and its steps are spans of the trace it was started in;
// the steps are counted in the metrics.
func TestWorkflowRunInOneTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	wf := ferry.Workflow[orderIn, orderOut]{Name: "traced-flow"}
	svc := ferry.MustNew("flows", "1.0.0", quiet)
	ferry.HandleWorkflow(svc, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		if _, err := ferry.Step(ctx, "one", func(context.Context) (int, error) { return 1, nil }); err != nil {
			return nil, err
		}
		if err := ferry.Sleep(ctx, time.Second); err != nil {
			return nil, err
		}
		_, err := ferry.Step(ctx, "two", func(context.Context) (int, error) { return 2, nil })
		return &orderOut{}, err
	})
	cfg := ferrytest.Config(t)
	startHost(t, []ferry.Option{ferry.WithConfig(cfg), ferry.WithTracerProvider(tp)}, svc)
	client := ferry.NewClient(svc.Client().Conn())

	ctx, root := tp.Tracer("test").Start(context.Background(), "caller")
	id, err := wf.Start(ctx, client, &orderIn{})
	root.End()
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := wf.Wait(context.Background(), client, id); err != nil || rec.State != ferry.JobSucceeded {
		t.Fatalf("record %+v, %v", rec, err)
	}
	var runs, steps []tracetest.SpanStub
	ferrytest.Eventually(t, func() bool {
		runs, steps = nil, nil
		for _, sp := range exp.GetSpans() {
			switch {
			case sp.Name == "run traced-flow":
				runs = append(runs, sp)
			case strings.HasPrefix(sp.Name, "step "):
				steps = append(steps, sp)
			}
		}
		return len(runs) == 2 && len(steps) == 2
	}, "two executions and two steps traced (%v)", names(exp.GetSpans()))
	for _, sp := range exp.GetSpans() {
		if sp.SpanContext.TraceID() != root.SpanContext().TraceID() {
			t.Errorf("span %s is in trace %s; want the caller's", sp.Name, sp.SpanContext.TraceID())
		}
	}
	for _, st := range steps {
		if st.SpanKind != trace.SpanKindInternal || st.Parent.SpanID() != runs[0].SpanContext.SpanID() && st.Parent.SpanID() != runs[1].SpanContext.SpanID() {
			t.Errorf("step span %s: kind %v, parent %s; want an internal span under an execution", st.Name, st.SpanKind, st.Parent.SpanID())
		}
	}
	mfs := scrape(t, ferrytest.URL(t, svc)+"/metrics")
	for _, want := range []struct {
		name   string
		labels map[string]string
	}{
		{"ferry_workflow_steps_total", map[string]string{"service": "flows", "workflow": "traced-flow", "step": "one", "result": "handled"}},
		{"ferry_workflow_step_duration_seconds", map[string]string{"service": "flows", "workflow": "traced-flow", "step": "two"}},
		{"ferry_jobs_finished_total", map[string]string{"service": "flows", "job": "traced-flow", "state": "succeeded"}},
		{"ferry_event_deliveries_total", map[string]string{"service": "flows", "topic": "traced-flow", "result": "suspended"}},
	} {
		if v, found := sample(mfs, want.name, want.labels); !found || v != 1 {
			t.Errorf("%s%v = %v (found %v); want 1", want.name, want.labels, v, found)
		}
	}
}
