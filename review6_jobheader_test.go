package ferry_test

// finding 4: jobLimits reads Ferry-Job-Attempts with strconv.Atoi and
// drops its error, but Atoi returns the clamped maximum on an out-of-range
// number: "99999999999999999999" counts as 2^63-1 runs before this one,
// while any other garbage counts as 0. Such a job is dead-lettered without
// running ("delivered 9223372036854775807 times without an
// acknowledgement"), and its record is never written (Get answers 404).
// Unparsable headers should count as none, as garbage already does.

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

func TestJobWithUnparsableAttemptsHeaderRuns(t *testing.T) {
	for _, attempts := range []string{"garbage", "-3", "99999999999999999999"} {
		t.Run(attempts, func(t *testing.T) {
			var runs atomic.Int32
			h := ferrytest.RunJobs(t, reportJob, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
				runs.Add(1)
				return &RenderedReport{URL: "ok"}, nil
			})
			ctx := context.Background()
			warm, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "warm-up"}) // makes the stream
			if err != nil {
				t.Fatal(err)
			}
			ferrytest.WaitJob(t, h, reportJob, warm)
			id := "abcdefghijklmnopqrstuvwxyz"
			msg := nats.NewMsg("ferry.job.report.run")
			msg.Header.Set("Ferry-Job-Id", id)
			msg.Header.Set("Ferry-Job-Attempts", attempts)
			msg.Data = []byte(`{"name":"by hand"}`)
			js, _ := jetstream.New(h.NATS())
			if _, err := js.PublishMsg(ctx, msg); err != nil {
				t.Fatal(err)
			}
			ferrytest.Eventually(t, func() bool {
				rec, err := reportJob.Get(ctx, h.Client, id)
				return err == nil && rec.State.Final()
			}, "the job has a final record")
			if rec, _ := reportJob.Get(ctx, h.Client, id); rec.State != ferry.JobSucceeded || runs.Load() != 2 {
				t.Errorf("record %s (%q) after %d runs: want succeeded, run once", rec.State, rec.LastError, runs.Load()-1)
			}
		})
	}
}
