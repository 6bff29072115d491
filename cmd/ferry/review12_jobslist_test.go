package main

import (
	"context"
	"strings"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestReview12JobsListSaysNoJobsWhileThereAre: `ferry jobs list` reads a
// page of records and drops the workflow runs from it on the client, so a
// page that holds only runs prints "no jobs" — while a job succeeded and
// the same command with a larger --limit lists it. A user told "no jobs"
// has no reason to follow the "more:" line. (`ferry runs list` has the
// same hole for a page of jobs.) The filter belongs in the listing, or
// the command should read on until it has a page of its own kind.
//
// Failed before the fix.
func TestReview12JobsListSaysNoJobsWhileThereAre(t *testing.T) {
	url, h := system(t)
	ctx := context.Background()
	id, err := countJob.Enqueue(ctx, h.Client, &countIn{To: 1})
	if err != nil {
		t.Fatal(err)
	}
	var runIDs []string
	for range 3 {
		runID, err := countFlow.Start(ctx, h.Client, &countIn{To: 1})
		if err != nil {
			t.Fatal(err)
		}
		runIDs = append(runIDs, runID)
	}
	ferrytest.Eventually(t, func() bool {
		for _, x := range append([]string{id}, runIDs...) {
			if rec, err := ferry.GetJob(ctx, h.Client, x); err != nil || rec.State != ferry.JobSucceeded {
				return false
			}
		}
		return true
	}, "the job and the runs succeed")
	code, all, _ := ferryCmd(t, url, "jobs", "list", "--state", "succeeded", "--limit", "10")
	if code != 0 || !strings.Contains(all, id) {
		t.Fatalf("jobs list --limit 10 does not list the job: %d\n%s", code, all)
	}
	for _, limit := range []string{"1", "2", "3"} {
		code, out, _ := ferryCmd(t, url, "jobs", "list", "--state", "succeeded", "--limit", limit)
		if code == 0 && strings.Contains(out, "no jobs") {
			t.Errorf("jobs list --limit %s says there are no jobs, yet job %s succeeded:\n%s", limit, id, out)
		}
	}
}
