package ferry_test

import (
	"context"
	"math"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// finding 5: Progress.Set clamps with min/max, which pass NaN through. A
// NaN percent makes every record write that carries it fail (encoding/json
// refuses NaN): a handler that reports NaN (0/0 pages done) and then ends
// cancelled has its final write refused by finish — only logged — while
// its message is acknowledged: the job stays "running" with
// cancel_requested forever, and nothing will run or finish it. (An
// unbounded progress message past the bucket's max payload does the same.)
func TestReview5NaNProgressDoesNotStrandTheRecord(t *testing.T) {
	var client *ferry.Client
	started := make(chan struct{}, 1)
	svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.HandleJob(svc, reportJob, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		p.Set(50, "half way")
		id := ferry.JobFromContext(ctx)
		for { // the first report is written: the writer now waits its interval
			rec, err := reportJob.Get(ctx, client, id)
			if err == nil && rec.Progress != nil {
				break
			}
		}
		started <- struct{}{}
		<-ctx.Done()
		p.Set(math.NaN(), "stopping")
		return nil, ctx.Err()
	})
	h := ferrytest.Start(t, svc)
	client = h.Client
	ctx := context.Background()
	id, err := reportJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "nan"})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	if _, err := reportJob.Cancel(ctx, h.Client, id); err != nil {
		t.Fatal(err)
	}
	logged := false
	ferrytest.Eventually(t, func() bool {
		rec, err := reportJob.Get(ctx, h.Client, id)
		if err == nil && !rec.State.Final() && !logged && rec.CancelRequested {
			logged = true
			t.Logf("record: state %s, cancel_requested %v", rec.State, rec.CancelRequested)
		}
		return err == nil && rec.State.Final()
	}, "the cancelled job's record ends")
}
