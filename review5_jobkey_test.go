package ferry_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// finding 4: EnqueueKey's marker lives for the key's window (24h behind
// Accept) but a finished record only for JobRetention (as short as 1m).
// Once the record is gone, an enqueue with the same key takes the "first
// enqueue stopped between its key and its job" path: it publishes under the
// old ID — which JetStream drops as a duplicate within the stream's 2m
// duplicate window — and creates a fresh "queued" record. The caller gets
// the ID of a job that is "queued" forever and will never run (and after
// the duplicate window, the keyed job runs a second time instead of
// "storing nothing"). The record is removed here as its retention would.
func TestReview5EnqueueKeyAfterRecordExpiry(t *testing.T) {
	svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.HandleJob(svc, reportJob, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		return &RenderedReport{URL: "done"}, nil
	}, ferry.JobRetention(time.Minute))
	h := ferrytest.Start(t, svc)
	ctx := context.Background()
	first, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "x"}, ferry.EnqueueKey("k", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, h.Client, first)

	// The retention passes: the record is removed, the key's marker stays.
	ferry.SetRebindAfter(t, 0)
	js, err := jetstream.New(h.NATS())
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "ferry-jobs")
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "r."+first); err != nil {
		t.Fatal(err)
	}

	again, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "x"}, ferry.EnqueueKey("k", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := reportJob.Get(ctx, h.Client, again)
	if err == nil && !rec.State.Final() {
		ferrytest.Eventually(t, func() bool {
			rec, err = reportJob.Get(ctx, h.Client, again)
			return err == nil && rec.State.Final()
		}, "the record the keyed enqueue answered (%s, state %s) ends: nothing will ever run it", again, rec.State)
	}
}
