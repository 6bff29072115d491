package ferry_test

// Listing leaves no consumer behind on the records' stream (each page
// makes an ordered consumer, and each fetch of it a new one): held.

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

func TestReview7ListLeavesNoConsumer(t *testing.T) {
	svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
	h := ferrytest.Start(t, svc)
	ctx := context.Background()
	for i := range 30 {
		id, err := thumbJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "a"})
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if _, err := ferry.CancelJob(ctx, h.Client, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 3 {
		ids, _ := listAll(t, h.Client, ferry.JobFilter{State: ferry.JobQueued}, 4)
		if len(ids) != 20 {
			t.Fatalf("%d queued jobs listed, want 20", len(ids))
		}
	}
	js, _ := jetstream.New(h.NATS())
	st, err := js.Stream(ctx, "KV_ferry-jobs")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	ferrytest.Eventually(t, func() bool {
		info, err := st.Info(ctx)
		n = -1
		if err == nil {
			n = info.State.Consumers
		}
		return n == 0
	}, "consumers left on the records' stream: %d", &n)
}
