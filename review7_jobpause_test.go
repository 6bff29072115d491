package ferry_test

// Pause holds every priority lane (worker-high and worker-low as well as
// worker), across a restart of the worker: no finding, kept as a guard.

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

func TestReview7PauseHoldsEveryLaneAcrossRestart(t *testing.T) {
	cfg := ferrytest.Config(t)
	var ran atomic.Int64
	worker := func() *ferry.Service {
		svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
		ferry.HandleJob(svc, reportJob, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
			ran.Add(1)
			return &RenderedReport{URL: in.Name}, nil
		}, fastJobs...)
		return svc
	}
	ctx := context.Background()
	h := ferrytest.StartWith(t, cfg, worker())
	if err := ferry.PauseJobs(ctx, h.Client, reportJob.Name, time.Time{}); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	h = ferrytest.StartWith(t, cfg, worker())
	var ids []string
	for _, p := range []ferry.JobPriority{ferry.PriorityHigh, ferry.PriorityNormal, ferry.PriorityLow} {
		id, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: string(p)}, ferry.EnqueuePriority(p))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	var info *ferry.JobKindInfo
	var err error
	ferrytest.Eventually(t, func() bool {
		info, err = ferry.GetJobKind(ctx, h.Client, reportJob.Name)
		return err == nil && info.Queued == 3
	}, "every lane holds its job (%+v)", &info)
	if !info.Paused || ran.Load() != 0 {
		t.Fatalf("paused kind: %+v, %d runs", info, ran.Load())
	}
	recs, _, err := ferry.ListJobs(ctx, h.Client, ferry.JobFilter{Job: reportJob.Name, State: ferry.JobQueued}, 10)
	if err != nil || len(recs) != 3 {
		t.Fatalf("queued listing of the paused kind: %d records, %v", len(recs), err)
	}
	if err := ferry.ResumeJobs(ctx, h.Client, reportJob.Name); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		waitJob(t, h.Client, id)
	}
}
