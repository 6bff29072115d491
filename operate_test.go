package ferry_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestListServicesAndTopics: discovery lists every instance with its
// endpoints and their recent figures; the topics list their consumers
// with the lag a stopped handler leaves.
func TestListServicesAndTopics(t *testing.T) {
	release := make(chan struct{})
	svc := ferry.MustNew("inner", "1.0.0", ferry.WithNATS(), ferry.WithoutHTTP(), quiet)
	ferry.Handle(svc, internalEndpoint, func(ctx context.Context, in *internalIn) (*internalIn, error) { return in, nil })
	ferry.Subscribe(svc, placed, "slow", func(ctx context.Context, _ *OrderPlaced) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, ferry.SubscribeConcurrency(1))
	h := ferrytest.Start(t, svc)
	t.Cleanup(func() { close(release) }) // before the host's shutdown
	ctx := context.Background()
	for range 3 {
		if _, err := internalEndpoint.Call(ctx, h.Client, &internalIn{SKU: "mug"}); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		publish(t, h, OrderPlaced{OrderID: "o", Quantity: 1})
	}

	list, err := ferry.ListServices(ctx, h.Client)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListServices = %+v, %v; want one instance", list, err)
	}
	inst := list[0]
	if inst.Name != "inner" || inst.Version != "1.0.0" || inst.ID == "" || inst.Started.IsZero() || len(inst.Endpoints) != 1 {
		t.Fatalf("instance = %+v", inst)
	}
	ep := inst.Endpoints[0]
	if ep.Name != "set-price" || ep.Requests != 3 || ep.Recent == nil || ep.Recent.NATS.Requests != 3 || ep.Recent.NATS.P99 <= 0 || ep.Recent.NATS.Rate <= 0 {
		t.Fatalf("endpoint = %+v (recent %+v)", ep, ep.Recent)
	}

	var topic ferry.TopicStats
	ferrytest.Eventually(t, func() bool {
		topics, err := ferry.ListTopics(ctx, h.Client)
		if err != nil {
			t.Fatal(err)
		}
		for _, tp := range topics {
			if tp.Name == placed.Name {
				topic = tp
			}
		}
		return len(topic.Consumers) == 1 && topic.Consumers[0].AckPending == 1 && topic.Consumers[0].Pending == 3
	}, "one event in the handler, three waiting")
	if topic.Subject != placed.Subject || topic.Messages != 4 || topic.Consumers[0].Service != "inner" || topic.Consumers[0].Consumer != "slow" {
		t.Errorf("topic = %+v", topic)
	}
	if got, err := ferry.GetTopic(ctx, h.Client, placed.Name); err != nil || got.Subject != placed.Subject {
		t.Errorf("GetTopic = %+v, %v", got, err)
	}
	var fe *ferry.Error
	for _, name := range []string{"nothing", "bad name!"} {
		if _, err := ferry.GetTopic(ctx, h.Client, name); !errors.As(err, &fe) || fe.Status != http.StatusNotFound {
			t.Errorf("GetTopic(%q) = %v, want a 404", name, err)
		}
	}
}

// TestCallRaw: an endpoint called by its names with a JSON body answers
// its JSON; its problem comes back as a *CallError; bad names are
// refused before anything is sent.
func TestCallRaw(t *testing.T) {
	svc := ferry.MustNew("inner", "1.0.0", ferry.WithNATS(), ferry.WithoutHTTP(), quiet)
	ferry.Handle(svc, internalEndpoint, func(ctx context.Context, in *internalIn) (*internalIn, error) { return in, nil })
	h := ferrytest.Start(t, svc)
	ctx := context.Background()
	reply, err := ferry.CallRaw(ctx, h.Client, ferry.RawCall{Service: "inner", Endpoint: "set-price", Body: []byte(`{"sku":"mug"}`)})
	if err != nil || reply.Status != http.StatusOK {
		t.Fatalf("CallRaw = %+v, %v", reply, err)
	}
	var out internalIn
	if err := json.Unmarshal(reply.Body, &out); err != nil || out.SKU != "mug" {
		t.Errorf("body %s: %v", reply.Body, err)
	}
	var ce *ferry.CallError
	if _, err := ferry.CallRaw(ctx, h.Client, ferry.RawCall{Service: "inner", Endpoint: "set-price", Body: []byte(`{"sku":`)}); !errors.As(err, &ce) || ce.Status != http.StatusBadRequest {
		t.Errorf("malformed body: %v, want the callee's 400", err)
	}
	if _, err := ferry.CallRaw(ctx, h.Client, ferry.RawCall{Service: "nobody", Endpoint: "x"}); !errors.Is(err, ferry.ErrNoResponders) {
		t.Errorf("nobody serves it: %v", err)
	}
	var fe *ferry.Error
	if _, err := ferry.CallRaw(ctx, h.Client, ferry.RawCall{Service: "in ner", Endpoint: "x"}); !errors.As(err, &fe) || fe.Status != http.StatusBadRequest {
		t.Errorf("a bad service name: %v, want a 400", err)
	}
}

// TestRetryJob: a failed job runs again from its dead letter, once; a
// failed workflow run resumes; what did not fail, or lost its dead
// letter, is a 409.
func TestRetryJob(t *testing.T) {
	var fixed atomic.Bool
	var runs atomic.Int64
	job := ferry.Job[ReportRequest, RenderedReport]{Name: "retry-report"}
	wf := ferry.Workflow[orderIn, orderOut]{Name: "retry-run"}
	svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.HandleJob(svc, job, func(ctx context.Context, in *ReportRequest, _ *ferry.Progress) (*RenderedReport, error) {
		runs.Add(1)
		if !fixed.Load() {
			return nil, ferry.Permanent(errors.New("broken"))
		}
		return &RenderedReport{URL: "/r/" + in.Name}, nil
	})
	ferry.HandleWorkflow(svc, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		n, err := ferry.Step(ctx, "only", func(context.Context) (int, error) {
			if !fixed.Load() {
				return 0, ferry.Permanent(errors.New("broken"))
			}
			return 7, nil
		})
		if err != nil {
			return nil, err
		}
		return &orderOut{Total: n}, nil
	})
	h := ferrytest.Start(t, svc)
	ctx := context.Background()
	wait := func(id string, state ferry.JobState) *ferry.JobRecord[json.RawMessage] {
		t.Helper()
		var rec *ferry.JobRecord[json.RawMessage]
		ferrytest.Eventually(t, func() bool {
			var err error
			rec, err = ferry.GetJob(ctx, h.Client, id)
			return err == nil && rec.State == state
		}, "job %s %s", id, state)
		return rec
	}
	id, err := job.Enqueue(ctx, h.Client, &ReportRequest{Name: "q3"})
	if err != nil {
		t.Fatal(err)
	}
	runID, err := wf.Start(ctx, h.Client, &orderIn{Order: "o1"})
	if err != nil {
		t.Fatal(err)
	}
	wait(id, ferry.JobFailed)
	if rec := wait(runID, ferry.JobFailed); !rec.Workflow {
		t.Errorf("a run's record does not say it is a workflow run: %+v", rec)
	}
	steps, err := ferry.GetRunSteps(ctx, h.Client, runID)
	if err != nil || len(steps) != 1 || steps[0].Name != "only" || steps[0].Error == "" {
		t.Errorf("GetRunSteps = %+v, %v", steps, err)
	}
	var fe *ferry.Error
	if _, err := ferry.GetRunSteps(ctx, h.Client, id); !errors.As(err, &fe) || fe.Status != http.StatusNotFound {
		t.Errorf("GetRunSteps of a job: %v, want a 404", err)
	}

	fixed.Store(true)
	before := runs.Load()
	if rec, err := ferry.RetryJob(ctx, h.Client, id); err != nil || rec.State != ferry.JobFailed {
		t.Fatalf("RetryJob = %+v, %v", rec, err)
	}
	if rec := wait(id, ferry.JobSucceeded); rec.Result == nil || string(*rec.Result) != `{"url":"/r/q3"}` {
		t.Errorf("result %+v", rec.Result)
	}
	if _, err := ferry.RetryJob(ctx, h.Client, runID); err != nil {
		t.Fatal(err)
	}
	wait(runID, ferry.JobSucceeded)
	if runs.Load() != before+1 {
		t.Errorf("the retried job ran %d times, want once", runs.Load()-before)
	}
	if _, err := ferry.RetryJob(ctx, h.Client, id); !errors.As(err, &fe) || fe.Status != http.StatusConflict {
		t.Errorf("RetryJob of a succeeded job: %v, want a 409", err)
	}

	// A failed job whose dead letter was purged cannot be retried.
	fixed.Store(false)
	id2, err := job.Enqueue(ctx, h.Client, &ReportRequest{Name: "q4"})
	if err != nil {
		t.Fatal(err)
	}
	wait(id2, ferry.JobFailed)
	ferrytest.Eventually(t, func() bool {
		dls, _ := ferry.ListDeadLetters(ctx, h.Client, ferry.DeadLetterFilter{Topic: job.Name}, 10)
		return len(dls) == 1
	}, "the job's dead letter")
	if _, err := ferry.PurgeDeadLetters(ctx, h.Client, ferry.DeadLetterFilter{Topic: job.Name}); err != nil {
		t.Fatal(err)
	}
	if _, err := ferry.RetryJob(ctx, h.Client, id2); !errors.As(err, &fe) || fe.Status != http.StatusConflict || fe.Code != "not_retryable" {
		t.Errorf("RetryJob without its dead letter: %v, want a 409 not_retryable", err)
	}
	if _, err := ferry.RetryJob(ctx, h.Client, "nope"); !errors.As(err, &fe) || fe.Status != http.StatusNotFound {
		t.Errorf("RetryJob of nothing: %v, want a 404", err)
	}
}
