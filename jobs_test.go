package ferry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
	"github.com/ferrygo/ferry/internal/telemetry"
)

// ReportRequest and RenderedReport are the test job's input and output.
type ReportRequest struct {
	Name  string `json:"name" minLength:"1"`
	Pages int    `json:"pages,omitempty" minimum:"0"`
}

type RenderedReport struct {
	URL string `json:"url"`
}

var reportJob = ferry.Job[ReportRequest, RenderedReport]{Name: "report", Description: "Renders a report."}

// fastJobs makes retries quick in tests.
var fastJobs = []ferry.JobOption{ferry.JobBackoff(10*time.Millisecond, 50*time.Millisecond), ferry.JobMaxAttempts(3)}

// waitJob waits for a job to reach a final state and returns its record.
func waitJob(t *testing.T, c *ferry.Client, id string) *ferry.JobRecord[RenderedReport] {
	t.Helper()
	var rec *ferry.JobRecord[RenderedReport]
	ferrytest.Eventually(t, func() bool {
		var err error
		rec, err = reportJob.Get(context.Background(), c, id)
		return err == nil && rec.State.Final()
	}, "job %s ends (%+v)", id, &rec)
	return rec
}

func TestJobOutcomes(t *testing.T) {
	var calls counter
	svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.HandleJob(svc, reportJob, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		n := calls.add(in.Name)
		p.Set(50, "half way")
		switch {
		case strings.HasPrefix(in.Name, "flaky") && n <= 1:
			return nil, errors.New("renderer busy")
		case strings.HasPrefix(in.Name, "broken"):
			return nil, errors.New("renderer on fire")
		case strings.HasPrefix(in.Name, "refused"):
			return nil, ferry.Permanent(errors.New("report refused"))
		case strings.HasPrefix(in.Name, "panics"):
			panic("renderer bug")
		}
		if ferry.JobFromContext(ctx) == "" {
			t.Error("no job ID in the handler's context")
		}
		return &RenderedReport{URL: "https://reports.example/" + in.Name}, nil
	}, fastJobs...)
	h := ferrytest.Start(t, svc)
	ctx := context.Background()

	tests := []struct {
		name     string
		state    ferry.JobState
		attempts int
		lastErr  string
	}{
		{"ok", ferry.JobSucceeded, 1, ""},
		{"flaky", ferry.JobSucceeded, 2, ""},
		// The record, which callers read, says what an endpoint would answer;
		// the dead letter keeps the error's text (checked below).
		{"broken", ferry.JobFailed, 3, "internal error"},
		{"refused", ferry.JobFailed, 1, "internal error"},
		{"panics", ferry.JobFailed, 3, "internal error"},
	}
	ids := map[string]string{}
	for _, tt := range tests {
		id, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: tt.name})
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 26 {
			t.Fatalf("job ID %q: want 26 characters", id)
		}
		ids[tt.name] = id
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := waitJob(t, h.Client, ids[tt.name])
			if rec.State != tt.state || rec.Attempts != tt.attempts || !strings.Contains(rec.LastError, tt.lastErr) {
				t.Errorf("record %+v: want state %s after %d attempts, error %q", rec, tt.state, tt.attempts, tt.lastErr)
			}
			if tt.state == ferry.JobSucceeded {
				if rec.Result == nil || rec.Result.URL != "https://reports.example/"+tt.name {
					t.Errorf("result %+v", rec.Result)
				}
				if rec.Progress == nil || rec.Progress.Percent != 100 {
					t.Errorf("progress %+v: want 100 once succeeded", rec.Progress)
				}
				if rec.FinishedAt.Before(rec.StartedAt) || rec.StartedAt.Before(rec.EnqueuedAt) {
					t.Errorf("timestamps out of order: %+v", rec)
				}
			}
		})
	}
	// Failed jobs are dead-lettered like events, with the job's name.
	dls := waitDeadLetters(t, h.Client, ferry.DeadLetterFilter{Topic: "report"}, 3)
	reasons := ""
	for _, dl := range dls {
		reasons += dl.Error + "\n"
	}
	for _, want := range []string{"renderer on fire", "report refused", "panic: renderer bug"} {
		if !strings.Contains(reasons, want) {
			t.Errorf("dead letters' errors %q lack %q", reasons, want)
		}
	}
}

// waitDeadLetters waits until filter selects n dead letters and returns
// them: a failed job's record says failed as its run ends, and its dead
// letter is stored just after.
func waitDeadLetters(t *testing.T, c *ferry.Client, filter ferry.DeadLetterFilter, n int) []ferry.DeadLetter {
	t.Helper()
	var dls []ferry.DeadLetter
	ferrytest.Eventually(t, func() bool {
		var err error
		dls, err = ferry.ListDeadLetters(context.Background(), c, filter, 100)
		return err == nil && len(dls) == n
	}, "%d dead letters (%d: %+v)", n, len(dls), &dls)
	return dls
}

func TestEnqueueRefusesBadInput(t *testing.T) {
	svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.HandleJob(svc, reportJob, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		return &RenderedReport{}, nil
	})
	h := ferrytest.Start(t, svc)
	ctx := context.Background()
	tests := []struct {
		name   string
		in     *ReportRequest
		opts   []ferry.EnqueueOption
		status int
	}{
		{"schema", &ReportRequest{Name: ""}, nil, http.StatusUnprocessableEntity},
		{"negative attempts", &ReportRequest{Name: "x"}, []ferry.EnqueueOption{ferry.EnqueueMaxAttempts(-1)}, 0},
		{"key without window", &ReportRequest{Name: "x"}, []ferry.EnqueueOption{ferry.EnqueueKey("k", 0)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := reportJob.Enqueue(ctx, h.Client, tt.in, tt.opts...)
			if err == nil {
				t.Fatal("enqueued")
			}
			var fe *ferry.Error
			if tt.status != 0 && (!errors.As(err, &fe) || fe.Status != tt.status) {
				t.Errorf("error %v: want status %d", err, tt.status)
			}
		})
	}
	if _, err := reportJob.Get(ctx, h.Client, "not-a-job"); !isStatus(err, http.StatusNotFound) {
		t.Errorf("Get of a bad ID: %v; want 404", err)
	}
	if _, err := reportJob.Get(ctx, h.Client, "aaaaaaaaaaaaaaaaaaaaaaaaaa"); !isStatus(err, http.StatusNotFound) {
		t.Errorf("Get of an unknown ID: %v; want 404", err)
	}
}

func isStatus(err error, status int) bool {
	var fe *ferry.Error
	return errors.As(err, &fe) && fe.Status == status
}

func TestEnqueueKeyReturnsTheSameJob(t *testing.T) {
	var calls counter
	svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.HandleJob(svc, reportJob, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		calls.add(in.Name)
		return &RenderedReport{}, nil
	})
	h := ferrytest.Start(t, svc)
	ctx := context.Background()
	first, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "once"}, ferry.EnqueueKey("order-42", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		again, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "once"}, ferry.EnqueueKey("order-42", time.Hour))
		if err != nil || again != first {
			t.Fatalf("retried enqueue: %q, %v; want %q", again, err, first)
		}
	}
	waitJob(t, h.Client, first)
	other, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "other"}, ferry.EnqueueKey("order-43", time.Hour))
	if err != nil || other == first {
		t.Fatalf("another key: %q, %v", other, err)
	}
	waitJob(t, h.Client, other)
	if calls.get("once") != 1 {
		t.Errorf("the keyed job ran %d times; want 1", calls.get("once"))
	}
}

func TestScheduledJobWaitsForItsTime(t *testing.T) {
	var mu sync.Mutex
	var ranAt time.Time
	svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.HandleJob(svc, reportJob, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		mu.Lock()
		ranAt = time.Now()
		mu.Unlock()
		return &RenderedReport{}, nil
	})
	h := ferrytest.Start(t, svc)
	ctx := context.Background()
	at := time.Now().Add(2 * time.Second)
	id, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "later"}, ferry.EnqueueAt(at))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := reportJob.Get(ctx, h.Client, id)
	if err != nil || rec.State != ferry.JobScheduled || rec.RunAt.Before(at) {
		t.Fatalf("record %+v, %v: want scheduled at or after %v", rec, err, at)
	}
	// A second scheduled job, cancelled before its time, never runs.
	cancelled, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "never"}, ferry.EnqueueDelay(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := reportJob.Cancel(ctx, h.Client, cancelled); err != nil || rec.State != ferry.JobCancelled {
		t.Fatalf("cancel: %+v, %v", rec, err)
	}
	done := waitJob(t, h.Client, id)
	mu.Lock()
	defer mu.Unlock()
	if done.State != ferry.JobSucceeded || ranAt.Before(at.Truncate(time.Second)) {
		t.Errorf("ran at %v, record %+v; want after %v", ranAt, done, at)
	}
	if rec, _ := reportJob.Get(ctx, h.Client, cancelled); rec.State != ferry.JobCancelled || rec.Attempts != 0 {
		t.Errorf("cancelled job %+v", rec)
	}
}

func TestCancelRunningJob(t *testing.T) {
	started := make(chan string, 1)
	sawCancel := make(chan struct{}, 1)
	svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.HandleJob(svc, reportJob, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		started <- ferry.JobFromContext(ctx)
		<-ctx.Done()
		sawCancel <- struct{}{}
		return nil, ctx.Err()
	})
	h := ferrytest.Start(t, svc)
	ctx := context.Background()
	id, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "long"})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	rec, err := reportJob.Cancel(ctx, h.Client, id)
	if err != nil || !rec.CancelRequested {
		t.Fatalf("cancel: %+v, %v", rec, err)
	}
	<-sawCancel
	if rec := waitJob(t, h.Client, id); rec.State != ferry.JobCancelled {
		t.Errorf("record %+v: want cancelled", rec)
	}
}

func TestJobPrioritiesDoNotWaitForEachOther(t *testing.T) {
	release := make(chan struct{})
	ran := make(chan string, 16)
	svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.HandleJob(svc, reportJob, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		ran <- in.Name
		if strings.HasPrefix(in.Name, "blocking") {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return &RenderedReport{}, nil
	}, ferry.JobConcurrency(1)) // one slot per priority
	h := ferrytest.Start(t, svc)
	t.Cleanup(func() { close(release) })
	ctx := context.Background()
	tests := []struct {
		blocked ferry.JobPriority // a backlog of blocking jobs at this priority
		other   ferry.JobPriority // still runs
	}{
		{ferry.PriorityNormal, ferry.PriorityHigh},
		{ferry.PriorityHigh, ferry.PriorityLow},
	}
	for _, tt := range tests {
		t.Run(string(tt.blocked)+" backlog", func(t *testing.T) {
			for i := range 3 {
				name := fmt.Sprintf("blocking-%s-%d", tt.blocked, i)
				if _, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: name}, ferry.EnqueuePriority(tt.blocked)); err != nil {
					t.Fatal(err)
				}
			}
			<-ran // the lane's one slot is taken; two wait behind it
			id, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "urgent-" + string(tt.other)}, ferry.EnqueuePriority(tt.other))
			if err != nil {
				t.Fatal(err)
			}
			if rec := waitJob(t, h.Client, id); rec.State != ferry.JobSucceeded || rec.Priority != tt.other {
				t.Errorf("record %+v: want succeeded at %s priority while the %s lane is blocked", rec, tt.other, tt.blocked)
			}
			<-ran
		})
	}
	if _, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "x"}, ferry.EnqueuePriority("urgent")); err == nil {
		t.Error("an unknown priority was enqueued")
	}
}

func TestJobTraceFromEnqueueThroughRetries(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	var calls counter
	svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.HandleJob(svc, reportJob, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		if calls.add(in.Name) == 1 {
			return nil, errors.New("renderer busy")
		}
		return &RenderedReport{}, nil
	}, fastJobs...)
	cfg := ferrytest.Config(t)
	startHost(t, []ferry.Option{ferry.WithConfig(cfg), ferry.WithTracerProvider(tp)}, svc)
	client := ferry.NewClient(svc.Client().Conn())

	ctx, root := tp.Tracer("test").Start(context.Background(), "caller")
	id, err := reportJob.Enqueue(ctx, client, &ReportRequest{Name: "traced"})
	root.End()
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, client, id)
	ferrytest.Eventually(t, func() bool { return len(exp.GetSpans()) >= 4 }, "four spans (%v)", names(exp.GetSpans()))
	var producer tracetest.SpanStub
	var runs []tracetest.SpanStub
	for _, sp := range exp.GetSpans() {
		switch {
		case sp.SpanKind == trace.SpanKindProducer:
			producer = sp
		case sp.Name == "run report":
			runs = append(runs, sp)
		}
		if sp.SpanContext.TraceID() != root.SpanContext().TraceID() {
			t.Errorf("span %s is in trace %s; want the caller's %s", sp.Name, sp.SpanContext.TraceID(), root.SpanContext().TraceID())
		}
	}
	if producer.Parent.SpanID() != root.SpanContext().SpanID() || len(runs) != 2 {
		t.Fatalf("spans %v: want the enqueue's producer span under the caller, and two runs", names(exp.GetSpans()))
	}
	for _, run := range runs {
		if run.Parent.SpanID() != producer.SpanContext.SpanID() || run.SpanKind != trace.SpanKindConsumer {
			t.Errorf("run span %+v: want a consumer span under the enqueue", run.Parent)
		}
	}
}

func TestEnqueuePassesThroughClientMiddleware(t *testing.T) {
	svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
	var seen []string
	var mu sync.Mutex
	ferry.HandleJob(svc, reportJob, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		mu.Lock()
		seen = append(seen, "handler saw "+ferry.RequestFromContext(ctx).Header("X-Tenant"))
		mu.Unlock()
		return &RenderedReport{}, nil
	})
	h := ferrytest.Start(t, svc)
	client := ferry.NewClient(h.NATS(), ferry.ClientWithMiddleware(func(next ferry.ClientHandler) ferry.ClientHandler {
		return func(ctx context.Context, m *ferry.OutgoingMessage) error {
			mu.Lock()
			seen = append(seen, string(m.Kind)+" "+m.Topic)
			mu.Unlock()
			m.Header.Set("X-Tenant", "acme")
			return next(ctx, m)
		}
	}))
	id, err := reportJob.Enqueue(context.Background(), client, &ReportRequest{Name: "mw"})
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, client, id)
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, ", ") != "job report, handler saw acme" {
		t.Errorf("seen %q", seen)
	}
}

func TestJobsInDiscovery(t *testing.T) {
	svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.HandleJob(svc, reportJob, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		return &RenderedReport{}, nil
	})
	h := ferrytest.Start(t, svc)
	msg, err := h.NATS().Request("$SRV.INFO.reports", nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Metadata map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal(msg.Data, &info); err != nil || info.Metadata["jobs"] != "report" {
		t.Errorf("INFO metadata %v, %v: want jobs=report", info.Metadata, err)
	}
}

func TestLongRetryWaitsAsASchedule(t *testing.T) {
	ferry.SetLongRetry(t, 500*time.Millisecond)
	var calls counter
	rec := &outcomes{}
	svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet, ferry.ObserveWith(rec))
	ferry.HandleJob(svc, reportJob, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		if calls.add(in.Name) == 1 {
			return nil, errors.New("renderer busy")
		}
		return &RenderedReport{}, nil
	}, ferry.JobBackoff(100*time.Second, 100*time.Second)) // 1 s under ferrytest's retry scale
	h := ferrytest.Start(t, svc)
	ctx := context.Background()
	id, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "later"}, ferry.EnqueueMaxAttempts(2))
	if err != nil {
		t.Fatal(err)
	}
	waiting := ferrytest.WaitJobState(t, h, reportJob, id, ferry.JobScheduled)
	if waiting.Attempts != 1 || waiting.RunAt.IsZero() || waiting.LastError == "" {
		t.Errorf("waiting record %+v: want scheduled after one attempt, with its error", waiting)
	}
	js, _ := jetstream.New(h.NATS())
	cons, err := js.Consumer(ctx, "ferryjob-report", "worker")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := cons.Info(ctx); err != nil || info.NumAckPending != 0 {
		t.Errorf("consumer %+v, %v: a job waiting for its retry holds an ack-pending slot", info, err)
	}
	// Its second run is its last (EnqueueMaxAttempts(2)): the attempts carried
	// over from the first message count.
	if done := waitJob(t, h.Client, id); done.State != ferry.JobSucceeded || done.Attempts != 2 || done.MaxAttempts != 2 {
		t.Errorf("record %+v: want succeeded on attempt 2 of 2", done)
	}
	// Observers see the rescheduled run as retried, not handled.
	var results []string
	ferrytest.Eventually(t, func() bool {
		results = nil
		for _, o := range rec.find(func(o telemetry.Outcome) bool { return o.Kind == telemetry.KindJob }) {
			results = append(results, o.Result)
		}
		return len(results) == 2
	}, "two job runs observed (%v)", &results)
	if results[0] != telemetry.Retried || results[1] != telemetry.Handled {
		t.Errorf("observed %v; want retried, then handled", results)
	}
}
