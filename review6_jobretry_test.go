package ferry_test

// finding 1: a dead letter of a job that had a long (rescheduled) retry
// keeps its Ferry-Job-Attempts header, so ReplayDeadLetter does not start
// its attempts afresh as docs/jobs.md promises: the replay starts at the
// attempt the job had died at, and a replayed job that fails once is
// dead-lettered again at once (or, past its attempts, without running).
// It matters because replay is the operator's way to rescue failed jobs.

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

func TestReplayOfRescheduledJobStartsAttemptsAfresh(t *testing.T) {
	ferry.SetLongRetry(t, 500*time.Millisecond)
	var replayed atomic.Bool
	var afterReplay atomic.Int32
	svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.HandleJob(svc, reportJob, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		if !replayed.Load() {
			return nil, errors.New("renderer down")
		}
		if afterReplay.Add(1) == 1 {
			return nil, errors.New("renderer still warming up")
		}
		return &RenderedReport{URL: "ok"}, nil
	}, ferry.JobBackoff(100*time.Second, 100*time.Second)) // 1 s under ferrytest's retry scale: a rescheduled retry
	h := ferrytest.Start(t, svc)
	ctx := context.Background()
	id, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "q3"}, ferry.EnqueueMaxAttempts(2))
	if err != nil {
		t.Fatal(err)
	}
	if rec := waitJob(t, h.Client, id); rec.State != ferry.JobFailed || rec.Attempts != 2 {
		t.Fatalf("record %+v: want failed after 2 attempts", rec)
	}
	dls := waitDeadLetters(t, h.Client, ferry.DeadLetterFilter{Topic: "report"}, 1)
	replayed.Store(true)
	if _, err := ferry.ReplayDeadLetter(ctx, h.Client, dls[0].Sequence); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool { return afterReplay.Load() > 0 }, "the replay runs")
	// Attempts afresh: 2 runs, the first fails and is retried, the second succeeds.
	if rec := waitJob(t, h.Client, id); rec.State != ferry.JobSucceeded || rec.Attempts != 2 {
		t.Errorf("replayed job %+v (last error %q): want succeeded on its second attempt of 2 (attempts start afresh)", rec.State, rec.LastError)
	}
}
