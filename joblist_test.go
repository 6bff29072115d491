package ferry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// thumbJob has no worker in these tests: its jobs stay queued.
var thumbJob = ferry.Job[ReportRequest, RenderedReport]{Name: "list-thumb"}

// listAll pages through ListJobs with limit and returns the IDs in order
// and the pages' sizes.
func listAll(t *testing.T, c *ferry.Client, f ferry.JobFilter, limit int) (ids []string, pages []int) {
	t.Helper()
	for range 1000 {
		recs, next, err := ferry.ListJobs(context.Background(), c, f, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > limit {
			t.Fatalf("page of %d records: limit %d", len(recs), limit)
		}
		for _, r := range recs {
			if (f.State != "" && r.State != f.State) || (f.Job != "" && r.Job != f.Job) {
				t.Fatalf("record %s of %s in state %s: filter %+v", r.ID, r.Job, r.State, f)
			}
			ids = append(ids, r.ID)
		}
		pages = append(pages, len(recs))
		if next == "" {
			return ids, pages
		}
		f.After = next
	}
	t.Fatal("more than 1000 pages")
	return nil, nil
}

func TestListJobs(t *testing.T) {
	release := make(chan struct{})
	started := make(chan string, 4)
	svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.HandleJob(svc, reportJob, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		switch {
		case strings.HasPrefix(in.Name, "block"):
			started <- ferry.JobFromContext(ctx)
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		case strings.HasPrefix(in.Name, "bad"):
			return nil, ferry.Permanent(errors.New("refused"))
		}
		return &RenderedReport{URL: "https://reports.example/" + in.Name}, nil
	}, fastJobs...)
	h := ferrytest.Start(t, svc)
	defer close(release)
	ctx := context.Background()

	ids := map[string]string{}
	enqueue := func(job ferry.Job[ReportRequest, RenderedReport], name string, opts ...ferry.EnqueueOption) {
		id, err := job.Enqueue(ctx, h.Client, &ReportRequest{Name: name}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = id
	}
	for i := range 5 {
		enqueue(thumbJob, fmt.Sprintf("q%d", i))
	}
	enqueue(thumbJob, "s0", ferry.EnqueueDelay(time.Hour))
	enqueue(thumbJob, "s1", ferry.EnqueueDelay(time.Hour))
	enqueue(thumbJob, "c0")
	if _, err := thumbJob.Cancel(ctx, h.Client, ids["c0"]); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ok0", "ok1", "ok2", "bad0", "bad1", "block0", "block1"} {
		enqueue(reportJob, name)
	}
	enqueue(reportJob, "later0", ferry.EnqueueDelay(time.Hour))
	for _, name := range []string{"ok0", "ok1", "ok2", "bad0", "bad1"} {
		waitJob(t, h.Client, ids[name])
	}
	<-started
	<-started

	of := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, ids[n])
		}
		return out
	}
	tests := []struct {
		job     string
		state   ferry.JobState
		want    []string
		ordered bool // the order the jobs entered the state is known
	}{
		{"list-thumb", ferry.JobQueued, of("q0", "q1", "q2", "q3", "q4"), true},
		{"list-thumb", ferry.JobScheduled, of("s0", "s1"), true},
		{"list-thumb", ferry.JobCancelled, of("c0"), true},
		{"list-thumb", ferry.JobRunning, nil, true},
		{"list-thumb", "", of("q0", "q1", "q2", "q3", "q4", "s0", "s1", "c0"), false},
		{"report", ferry.JobSucceeded, of("ok0", "ok1", "ok2"), false},
		{"report", ferry.JobFailed, of("bad0", "bad1"), false},
		{"report", ferry.JobRunning, of("block0", "block1"), false},
		{"report", ferry.JobScheduled, of("later0"), true},
		{"report", ferry.JobQueued, nil, true},
		{"", ferry.JobScheduled, of("s0", "s1", "later0"), true},
		{"", ferry.JobCancelled, of("c0"), true},
		{"no-such-job", "", nil, true},
	}
	for _, tt := range tests {
		for _, limit := range []int{1, 2, 100} {
			t.Run(fmt.Sprintf("%s/%s/limit=%d", tt.job, tt.state, limit), func(t *testing.T) {
				var got []string
				var pages []int
				f := ferry.JobFilter{Job: tt.job, State: tt.state}
				ferrytest.Eventually(t, func() bool {
					got, pages = listAll(t, h.Client, f, limit)
					if !tt.ordered {
						got = slices.Sorted(slices.Values(got))
						return slices.Equal(got, slices.Sorted(slices.Values(tt.want)))
					}
					return slices.Equal(got, tt.want)
				}, "the listing %+v returns %v (got %v)", f, tt.want, &got)
				// At most one more page, empty: the last record's page did not know
				// that only markers of purged keys followed.
				if n := (len(tt.want) + limit - 1) / limit; len(pages) > n+1 || len(pages) == n+1 && pages[n] != 0 {
					t.Errorf("%d pages of %v for %d records, limit %d", len(pages), pages, len(tt.want), limit)
				}
			})
		}
	}

	// Typed, with the result.
	recs, next, err := reportJob.List(ctx, h.Client, ferry.JobFilter{State: ferry.JobSucceeded}, 10)
	if err != nil || next != "" || len(recs) != 3 {
		t.Fatalf("List: %d records, next %q, %v", len(recs), next, err)
	}
	for _, r := range recs {
		if r.Result == nil || !strings.HasPrefix(r.Result.URL, "https://reports.example/ok") {
			t.Errorf("record %+v: no typed result", r)
		}
	}

	// Refused filters.
	for _, bad := range []struct {
		f     ferry.JobFilter
		limit int
	}{
		{ferry.JobFilter{}, 0},
		{ferry.JobFilter{}, ferry.MaxJobListLimit + 1},
		{ferry.JobFilter{State: "done"}, 10},
		{ferry.JobFilter{Job: "a.b"}, 10},
		{ferry.JobFilter{After: "not a cursor"}, 10},
	} {
		_, _, err := ferry.ListJobs(ctx, h.Client, bad.f, bad.limit)
		var fe *ferry.Error
		if !errors.As(err, &fe) || fe.Status != http.StatusBadRequest || fe.Code != "invalid_job_list" {
			t.Errorf("ListJobs(%+v, %d): %v, want a 400 invalid_job_list", bad.f, bad.limit, err)
		}
	}
	if _, _, err := thumbJob.List(ctx, h.Client, ferry.JobFilter{Job: "report"}, 10); err == nil {
		t.Error("List of list-thumb with the filter's job report: no error")
	}
}

// Pages stay consistent while jobs change state between them: a job that
// left the state before the listing reached it is not returned, a new one
// comes at the end, one that moved within the open group (to running and
// back to queued) keeps its place and comes once, and the rest come once
// each, in order.
func TestListJobsConcurrentChanges(t *testing.T) {
	h := ferrytest.Start(t, ferry.MustNew("idle", "1.0.0", ferry.WithoutHTTP(), quiet))
	ctx := context.Background()
	var ids []string
	for i := range 20 {
		id, err := thumbJob.Enqueue(ctx, h.Client, &ReportRequest{Name: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	f := ferry.JobFilter{Job: thumbJob.Name, State: ferry.JobQueued}
	recs, next, err := ferry.ListJobs(ctx, h.Client, f, 4)
	if err != nil || len(recs) != 4 || next == "" {
		t.Fatalf("first page: %d records, next %q, %v", len(recs), next, err)
	}
	var listed []string
	for _, r := range recs {
		listed = append(listed, r.ID)
	}
	// Between the pages: cancel one listed job and two not yet listed,
	// move a listed one and one not yet listed to running and back, one
	// not yet listed to running only, enqueue two more.
	for _, id := range []string{ids[1], ids[10], ids[15]} {
		if _, err := thumbJob.Cancel(ctx, h.Client, id); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{ids[2], ids[7]} {
		for _, st := range []ferry.JobState{ferry.JobRunning, ferry.JobQueued} {
			if err := ferry.SetJobState(ctx, h.Client, id, st, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := ferry.SetJobState(ctx, h.Client, ids[12], ferry.JobRunning, 0); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		id, err := thumbJob.Enqueue(ctx, h.Client, &ReportRequest{Name: fmt.Sprint("new", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	f.After = next
	rest, _ := listAll(t, h.Client, f, 4)
	listed = append(listed, rest...)

	var want []string
	want = append(want, ids[0:4]...)
	for i, id := range ids[4:20] {
		if i+4 != 10 && i+4 != 12 && i+4 != 15 {
			want = append(want, id)
		}
	}
	want = append(want, ids[20], ids[21]) // the new ones
	if !slices.Equal(listed, want) {
		t.Errorf("listed\n%v\nwant\n%v", listed, want)
	}
	// And now: the jobs queued now, once each.
	now, _ := listAll(t, h.Client, ferry.JobFilter{Job: thumbJob.Name, State: ferry.JobQueued}, 7)
	if len(now) != 18 || slices.Contains(now, ids[1]) || slices.Contains(now, ids[10]) || slices.Contains(now, ids[12]) {
		t.Errorf("queued now: %d jobs %v", len(now), now)
	}
}

// A stale index key (its job moved on; written here by hand, as a lost
// race would leave it) is skipped and repaired, an open key of a job open
// in another state only skipped; the keys of a finished
// job expire with its record, and the markers of purged keys after them.
func TestListJobsStaleAndExpiry(t *testing.T) {
	h := ferrytest.Start(t, ferry.MustNew("idle", "1.0.0", ferry.WithoutHTTP(), quiet))
	ctx := context.Background()
	js, err := jetstream.New(h.NATS())
	if err != nil {
		t.Fatal(err)
	}
	cancelled, err := thumbJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "c"})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "ferry-jobs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := thumbJob.Cancel(ctx, h.Client, cancelled); err != nil {
		t.Fatal(err)
	}
	staleKey := "i.list-thumb.open." + cancelled
	ferrytest.Eventually(t, func() bool {
		_, err := kv.Get(ctx, staleKey)
		return errors.Is(err, jetstream.ErrKeyNotFound)
	}, "the open key of the cancelled job is purged")
	if _, err := kv.Put(ctx, staleKey, nil); err != nil {
		t.Fatal(err)
	}
	queued, _ := listAll(t, h.Client, ferry.JobFilter{Job: thumbJob.Name, State: ferry.JobQueued}, 10)
	if len(queued) != 0 {
		t.Errorf("queued: %v, want none (the key is stale)", queued)
	}
	ferrytest.Eventually(t, func() bool {
		_, err := kv.Get(ctx, staleKey)
		return errors.Is(err, jetstream.ErrKeyNotFound)
	}, "the stale key is repaired")

	// A running job's open key is skipped by a listing of queued, not
	// purged: it is not stale.
	running, err := thumbJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ferry.SetJobState(ctx, h.Client, running, ferry.JobRunning, 0); err != nil {
		t.Fatal(err)
	}
	if queued, _ = listAll(t, h.Client, ferry.JobFilter{Job: thumbJob.Name, State: ferry.JobQueued}, 10); len(queued) != 0 {
		t.Errorf("queued: %v, want none", queued)
	}
	if got, _ := listAll(t, h.Client, ferry.JobFilter{Job: thumbJob.Name, State: ferry.JobRunning}, 10); !slices.Equal(got, []string{running}) {
		t.Errorf("running: %v, want [%s]", got, running)
	}
	if _, err := kv.Get(ctx, "i.list-thumb.open."+running); err != nil {
		t.Errorf("the running job's open key: %v", err)
	}

	// Expiry: a job finished with a retention of 1s.
	expiring, err := thumbJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "e"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ferry.SetJobState(ctx, h.Client, expiring, ferry.JobSucceeded, time.Second); err != nil {
		t.Fatal(err)
	}
	got, _ := listAll(t, h.Client, ferry.JobFilter{Job: thumbJob.Name, State: ferry.JobSucceeded}, 10)
	if !slices.Equal(got, []string{expiring}) {
		t.Errorf("succeeded: %v, want [%s]", got, expiring)
	}
	stream, err := js.Stream(ctx, "KV_ferry-jobs")
	if err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool {
		got, _ = listAll(t, h.Client, ferry.JobFilter{Job: thumbJob.Name, State: ferry.JobSucceeded}, 10)
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter("$KV.ferry-jobs.i.list-thumb.*."+expiring))
		return len(got) == 0 && err == nil && len(info.State.Subjects) == 0
	}, "the job's record, index keys and markers are gone (listed %v)", &got)
}

func TestRebuildJobIndex(t *testing.T) {
	svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
	h := ferrytest.Start(t, svc)
	ctx := context.Background()
	var ids []string
	for i := range 3 {
		id, err := thumbJob.Enqueue(ctx, h.Client, &ReportRequest{Name: fmt.Sprintf("r%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	f := ferry.JobFilter{Job: thumbJob.Name, State: ferry.JobQueued}
	ferrytest.Eventually(t, func() bool { got, _ := listAll(t, h.Client, f, 10); return len(got) == 3 }, "three queued jobs listed")
	// Lose one job's index key, as a process that died between its record
	// and its index write would.
	js, _ := jetstream.New(h.NATS())
	kv, err := js.KeyValue(ctx, "ferry-jobs")
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, "i."+thumbJob.Name+".open."+ids[1]); err != nil {
		t.Fatal(err)
	}
	if got, _ := listAll(t, h.Client, f, 10); len(got) != 2 {
		t.Fatalf("listed %v after the lost key; want the two others", got)
	}
	n, err := ferry.RebuildJobIndex(ctx, h.Client)
	if err != nil || n != 1 {
		t.Fatalf("rebuild wrote %d keys, %v; want the one lost", n, err)
	}
	if got, _ := listAll(t, h.Client, f, 10); len(got) != 3 {
		t.Errorf("listed %v after the rebuild; want all three", got)
	}
	if n, err := ferry.RebuildJobIndex(ctx, h.Client); err != nil || n != 0 {
		t.Errorf("a second rebuild wrote %d keys, %v; want none", n, err)
	}
}
