package ferry_test

// Listing edges that held: an empty bucket, a filter matching nothing, a
// cursor past the end, bad limits and states: no hang, no internal error.

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

func TestReview7ListEdges(t *testing.T) {
	svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
	h := ferrytest.Start(t, svc)
	ctx := context.Background()
	for _, f := range []ferry.JobFilter{{}, {State: ferry.JobFailed}, {Job: "nobody", State: ferry.JobQueued}, {After: "zzzzzz"}} {
		recs, next, err := ferry.ListJobs(ctx, h.Client, f, 5)
		if err != nil || len(recs) != 0 || next != "" {
			t.Errorf("%+v on an empty bucket: %d records, next %q, %v", f, len(recs), next, err)
		}
	}
	if _, err := thumbJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f     ferry.JobFilter
		limit int
	}{{ferry.JobFilter{}, 0}, {ferry.JobFilter{}, -1}, {ferry.JobFilter{}, ferry.MaxJobListLimit + 1}, {ferry.JobFilter{State: "bogus"}, 1},
		{ferry.JobFilter{Job: "a.b"}, 1}, {ferry.JobFilter{Job: "*"}, 1}, {ferry.JobFilter{Job: ">"}, 1}, {ferry.JobFilter{After: "0"}, 1}, {ferry.JobFilter{After: "-1"}, 1}, {ferry.JobFilter{After: "!"}, 1}} {
		_, _, err := ferry.ListJobs(ctx, h.Client, tc.f, tc.limit)
		var fe *ferry.Error
		if !errors.As(err, &fe) || fe.Status != http.StatusBadRequest {
			t.Errorf("%+v limit %d: %v, want a 400", tc.f, tc.limit, err)
		}
	}
}
