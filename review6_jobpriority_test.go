package ferry_test

// finding 2: a job message whose Ferry-Job-Priority is not one of high,
// normal, low (a message written by hand or by a client middleware, a
// dead letter from a newer version, "High") is run by the normal lane,
// but a long retry reschedules it, and ReplayDeadLetter republishes it,
// onto ferry.job.<name>.run.<garbage>: the stream stores it (run.*) and no
// lane consumes it. The job is lost while the replay reports success and
// the record says scheduled or running forever.

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

func TestJobWithUnknownPriorityIsNotLost(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(run int32) error
	}{
		{"replayed dead letter", func(run int32) error {
			if run == 1 {
				return ferry.Permanent(errors.New("refused"))
			}
			return nil
		}},
		{"rescheduled retry", func(run int32) error {
			if run == 1 {
				return errors.New("busy")
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ferry.SetLongRetry(t, 500*time.Millisecond)
			var runs atomic.Int32
			svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
			ferry.HandleJob(svc, reportJob, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
				if err := tc.fail(runs.Add(1)); err != nil {
					return nil, err
				}
				return &RenderedReport{URL: "ok"}, nil
			}, ferry.JobBackoff(100*time.Second, 100*time.Second))
			h := ferrytest.Start(t, svc)
			ctx := context.Background()
			// The stream exists once a job was enqueued.
			first, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "warm-up"}, ferry.EnqueueDelay(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := reportJob.Cancel(ctx, h.Client, first); err != nil {
				t.Fatal(err)
			}
			id := "abcdefghijklmnopqrstuvwxyz"
			msg := nats.NewMsg("ferry.job.report.run")
			msg.Header.Set("Ferry-Job-Id", id)
			msg.Header.Set("Ferry-Job-Priority", "urgent")
			msg.Data = []byte(`{"name":"by hand"}`)
			js, _ := jetstream.New(h.NATS())
			if _, err := js.PublishMsg(ctx, msg); err != nil {
				t.Fatal(err)
			}
			ferrytest.Eventually(t, func() bool { return runs.Load() >= 1 }, "the job runs")
			if tc.name == "replayed dead letter" {
				if rec := waitJob(t, h.Client, id); rec.State != ferry.JobFailed {
					t.Fatalf("record %+v: want failed", rec)
				}
				dls := waitDeadLetters(t, h.Client, ferry.DeadLetterFilter{Topic: "report"}, 1)
				if _, err := ferry.ReplayDeadLetter(ctx, h.Client, dls[0].Sequence); err != nil {
					t.Fatal(err)
				}
			}
			ferrytest.Eventually(t, func() bool { return runs.Load() >= 2 }, "the job runs again")
			if rec := waitJob(t, h.Client, id); rec.State != ferry.JobSucceeded {
				t.Errorf("record %+v: want succeeded", rec)
			}
		})
	}
}
