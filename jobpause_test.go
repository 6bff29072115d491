package ferry_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// A paused job kind runs nothing while enqueues still store its jobs;
// resumed, it runs them.
func TestPauseJobs(t *testing.T) {
	var calls counter
	svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.HandleJob(svc, reportJob, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		calls.add("all")
		return &RenderedReport{URL: in.Name}, nil
	}, fastJobs...)
	h := ferrytest.Start(t, svc)
	ctx := context.Background()

	first, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "before"})
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, h.Client, first)

	if err := ferry.PauseJobs(ctx, h.Client, reportJob.Name, time.Time{}); err != nil {
		t.Fatal(err)
	}
	info, err := ferry.GetJobKind(ctx, h.Client, reportJob.Name)
	if err != nil || !info.Paused || info.PausedUntil.Before(time.Now().AddDate(1, 0, 0)) {
		t.Fatalf("paused kind: %+v, %v", info, err)
	}
	var ids []string
	for _, name := range []string{"a", "b", "c"} {
		id, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// The consumer has the three and delivers none of them.
	ferrytest.Eventually(t, func() bool {
		info, err = ferry.GetJobKind(ctx, h.Client, reportJob.Name)
		return err == nil && info.Queued == 3 && info.Running == 0 && !info.OldestQueued.IsZero()
	}, "the paused kind holds three queued jobs (%+v)", &info)
	if n := calls.get("all"); n != 1 {
		t.Fatalf("%d runs while paused, want only the one before", n)
	}
	for _, id := range ids {
		if rec, err := reportJob.Get(ctx, h.Client, id); err != nil || rec.State != ferry.JobQueued {
			t.Fatalf("job %s while paused: %+v, %v", id, rec, err)
		}
	}
	queued, _ := listAll(t, h.Client, ferry.JobFilter{Job: reportJob.Name, State: ferry.JobQueued}, 10)
	if len(queued) != 3 {
		t.Errorf("listed queued while paused: %v", queued)
	}

	if err := ferry.ResumeJobs(ctx, h.Client, reportJob.Name); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if rec := waitJob(t, h.Client, id); rec.State != ferry.JobSucceeded {
			t.Errorf("job %s after the resume: %+v", id, rec)
		}
	}
	info, err = ferry.GetJobKind(ctx, h.Client, reportJob.Name)
	if err != nil || info.Paused || !info.PausedUntil.IsZero() || info.Queued != 0 {
		t.Errorf("resumed kind: %+v, %v", info, err)
	}

	// A kind whose worker never started.
	for _, f := range []func() error{
		func() error { return ferry.PauseJobs(ctx, h.Client, "never-started", time.Now().Add(time.Hour)) },
		func() error { return ferry.ResumeJobs(ctx, h.Client, "never-started") },
		func() error { _, err := ferry.GetJobKind(ctx, h.Client, "never-started"); return err },
	} {
		var fe *ferry.Error
		if err := f(); !errors.As(err, &fe) || fe.Status != http.StatusNotFound {
			t.Errorf("%v: want a 404", err)
		}
	}
}

// The pause is the broker's: a worker that starts again keeps it.
func TestPauseJobsOutlivesRestart(t *testing.T) {
	cfg := ferrytest.Config(t)
	worker := func() *ferry.Service {
		svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
		ferry.HandleJob(svc, reportJob, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
			return &RenderedReport{URL: in.Name}, nil
		}, fastJobs...)
		return svc
	}
	ctx := context.Background()
	h := ferrytest.StartWith(t, cfg, worker())
	if err := ferry.PauseJobs(ctx, h.Client, reportJob.Name, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}

	h = ferrytest.StartWith(t, cfg, worker())
	id, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "after"})
	if err != nil {
		t.Fatal(err)
	}
	var info *ferry.JobKindInfo
	ferrytest.Eventually(t, func() bool {
		info, err = ferry.GetJobKind(ctx, h.Client, reportJob.Name)
		return err == nil && info.Queued == 1
	}, "the restarted worker's kind holds the job (%+v)", &info)
	if !info.Paused {
		t.Fatalf("after the restart: %+v, want still paused", info)
	}
	if err := ferry.ResumeJobs(ctx, h.Client, reportJob.Name); err != nil {
		t.Fatal(err)
	}
	waitJob(t, h.Client, id)
}
