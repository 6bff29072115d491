package ferry_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// finding 1: a job on its last attempt (EnqueueMaxAttempts(1), or the
// worker's 10th) that is running when its replica shuts down is recorded
// "failed" by jobRunner.handle (d.Attempt >= MaxAttempts is checked before
// the shutdown), while the worker hands its message back instead of
// dead-lettering it. The next delivery finds a final record and acks the
// message without running it: an acknowledged job is lost — never run to
// the end, not in the dead-letter stream, so it cannot be replayed. A
// rolling deploy loses every single-attempt job in flight.
//
// finding 1b (internal/worker, seen through this test once 1 is fixed): the
// shutdown's hand-back (Nak and the free-delivery record) does not take
// effect; the message comes back after the ack wait counted as an attempt
// and, past MaxAttempts, is dead-lettered without running ("delivered 1
// times without an acknowledgement").
func TestReview5JobOnLastAttemptSurvivesShutdown(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.ShutdownGrace = 200 * time.Millisecond
	ctx := context.Background()

	start := func(handler ferry.JobHandler[ReportRequest, RenderedReport]) (*ferry.Host, *ferry.Client) {
		svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
		ferry.HandleJob(svc, reportJob, handler)
		h, err := ferry.NewHost(ferry.WithConfig(cfg), ferry.WithLogger(ferrytest.Logger(t)))
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Add(svc); err != nil {
			t.Fatal(err)
		}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := h.Start(sctx); err != nil {
			t.Fatal(err)
		}
		return h, ferry.NewClient(h.NATS())
	}

	// First process: the job starts, then the process shuts down under it.
	started := make(chan struct{}, 1)
	h1, c1 := start(func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	id, err := reportJob.Enqueue(ctx, c1, &ReportRequest{Name: "deploy"}, ferry.EnqueueMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	<-started
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_ = h1.Shutdown(sctx) // the grace period ends with the job running: handed back
	cancel()

	// Second process on the same store: the job must run, and succeed.
	h2, c2 := start(func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		return &RenderedReport{URL: "done"}, nil
	})
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h2.Shutdown(sctx)
	})
	// Up to past the ack wait (30s): a hand-back that did not reach the
	// broker is redelivered then.
	var rec *ferry.JobRecord[RenderedReport]
	for range 80 {
		if r, err := reportJob.Get(ctx, c2, id); err == nil && r.State.Final() {
			rec = r
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if rec == nil || rec.State != ferry.JobSucceeded {
		dls, _ := ferry.ListDeadLetters(ctx, c2, ferry.DeadLetterFilter{Topic: reportJob.Name}, 10)
		t.Errorf("job interrupted by a shutdown on its last attempt: record %+v, %d dead letter(s); want it run again and succeeded",
			rec, len(dls))
	}
}
