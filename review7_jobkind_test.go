package ferry_test

// finding 3: GetJobKind's Scheduled (and ferry_jobs_scheduled) counts a
// periodic job's schedule as a scheduled job. Scheduled is the kind's
// stream's messages less the consumers' pending and ack-pending ones, and
// the stream also holds each Periodic schedule (a message schedule that
// stays for as long as it is declared) and its ticks: a kind with one
// daily schedule and no job waiting reports one scheduled job forever,
// and an alert on scheduled jobs never clears.

import (
	"context"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

func TestReview7PeriodicScheduleIsNotAScheduledJob(t *testing.T) {
	var runs periodicRuns
	svc := periodicWorker(&runs, nil, map[string]string{"nightly": "0 0 3 * * *"})
	h := ferrytest.Start(t, svc)
	ctx := context.Background()
	info, err := ferry.GetJobKind(ctx, h.Client, nightlyJob.Name)
	if err != nil {
		t.Fatal(err)
	}
	if info.Scheduled != 0 || info.Queued != 0 || info.Running != 0 {
		t.Fatalf("no job enqueued, only a daily schedule declared: %+v", info)
	}
}
