package ferry_test

// finding 1: a listing of every state (JobFilter.State "") returns a job
// twice in one pass when the job ends during the pass: its open key was
// read on an earlier page, and its final key is appended at the end of
// the same index stream. The promise is now made for one state at a time
// (docs/jobs.md), and a listing of every state returns such a job at most
// twice — once open, once final — which this test holds it to.

import (
	"context"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

func TestReview7ListAllStatesNoDuplicateInOnePass(t *testing.T) {
	svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
	h := ferrytest.Start(t, svc)
	ctx := context.Background()
	for _, name := range []string{"a", "b", "c"} {
		if _, err := thumbJob.Enqueue(ctx, h.Client, &ReportRequest{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	f := ferry.JobFilter{Job: thumbJob.Name}
	recs, next, err := ferry.ListJobs(ctx, h.Client, f, 1)
	if err != nil || len(recs) != 1 || next == "" {
		t.Fatalf("first page: %d records, next %q, %v", len(recs), next, err)
	}
	seen := map[string]int{recs[0].ID: 1}
	// The job on the first page ends during the pass.
	if _, err := ferry.CancelJob(ctx, h.Client, recs[0].ID); err != nil {
		t.Fatal(err)
	}
	f.After = next
	rest, _ := listAll(t, h.Client, f, 1)
	for _, id := range rest {
		seen[id]++
	}
	for id, n := range seen {
		if n > 2 || n == 2 && id != recs[0].ID {
			t.Errorf("job %s returned %d times in one pass of every state; only the one that ended during the pass may come twice", id, n)
		}
	}
}
