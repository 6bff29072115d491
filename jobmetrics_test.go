package ferry_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// A job kind's series: runs ended by state and their durations from the
// observer; queued, running, scheduled, lag and pause from JetStream at
// scrape time. The event series count job runs as before.
func TestJobMetrics(t *testing.T) {
	svc := ferry.MustNew("reports", "1.0.0", quiet)
	ferry.HandleJob(svc, reportJob, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		switch {
		case strings.HasPrefix(in.Name, "bad"):
			return nil, ferry.Permanent(errors.New("refused"))
		}
		return &RenderedReport{URL: in.Name}, nil
	}, fastJobs...)
	h := ferrytest.Start(t, svc)
	ctx := context.Background()
	url := ferrytest.URL(t, svc) + ferry.MetricsPath
	for _, name := range []string{"ok0", "ok1", "bad0"} {
		id, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		waitJob(t, h.Client, id)
	}
	job := map[string]string{"service": "reports", "job": "report"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for k, v := range job {
			m[k] = v
		}
		return m
	}
	ferrytest.Eventually(t, func() bool {
		mfs := scrape(t, url)
		ok, _ := sample(mfs, "ferry_jobs_finished_total", with("state", "succeeded"))
		bad, _ := sample(mfs, "ferry_jobs_finished_total", with("state", "failed"))
		runs, _ := sample(mfs, "ferry_job_run_duration_seconds", job)
		handled, _ := sample(mfs, "ferry_event_deliveries_total", map[string]string{"topic": "report", "result": "handled"})
		queued, qok := sample(mfs, "ferry_jobs_queued", job)
		return ok == 2 && bad == 1 && runs == 3 && handled == 2 && qok && queued == 0
	}, "the job series count two succeeded runs, one failed, three timed")

	// Paused, with two queued and one scheduled.
	if err := ferry.PauseJobs(ctx, h.Client, reportJob.Name, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: fmt.Sprint("later", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "tomorrow"}, ferry.EnqueueDelay(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	var got string
	ferrytest.Eventually(t, func() bool {
		mfs := scrape(t, url)
		queued, _ := sample(mfs, "ferry_jobs_queued", job)
		scheduled, _ := sample(mfs, "ferry_jobs_scheduled", job)
		running, _ := sample(mfs, "ferry_jobs_running", job)
		paused, _ := sample(mfs, "ferry_job_paused", job)
		_, lag := sample(mfs, "ferry_job_queue_lag_seconds", job)
		got = fmt.Sprintf("queued %v, scheduled %v, running %v, paused %v, lag %v", queued, scheduled, running, paused, lag)
		return queued == 2 && scheduled == 1 && running == 0 && paused == 1 && lag
	}, "the paused kind's gauges (%s)", lazyString{&got})
	if err := ferry.ResumeJobs(ctx, h.Client, reportJob.Name); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool {
		mfs := scrape(t, url)
		ok, _ := sample(mfs, "ferry_jobs_finished_total", with("state", "succeeded"))
		paused, _ := sample(mfs, "ferry_job_paused", job)
		return ok == 4 && paused == 0
	}, "the resumed kind runs its two jobs")
}

// lazyString prints what its string holds when it is printed: a failure
// message's last observation.
type lazyString struct{ s *string }

func (l lazyString) String() string { return *l.s }
