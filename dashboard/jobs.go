package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/ferrygo/ferry"
)

// Bounds on the jobs one snapshot reads and shows.
const (
	maxKinds   = 50  // job kinds whose queues are read
	openLimit  = 20  // records per open state (the oldest)
	ringSize   = 20  // records kept per final state (the latest)
	tailPage   = 100 // index entries read per final state and page
	tailPages  = 3   // pages per final state and refresh
	maxLatest  = 40  // records shown
	recordWait = 2 * time.Second
)

// JobsView is the job kinds' queues and the latest jobs and runs.
type JobsView struct {
	Kinds  []KindView `json:"kinds"`
	Latest []JobView  `json:"latest"`
}

// KindView is a job kind's queue: its open jobs' counts.
type KindView struct {
	Job       string `json:"job"`
	Queued    uint64 `json:"queued"`
	Running   uint64 `json:"running"`
	Scheduled uint64 `json:"scheduled"`
	Paused    bool   `json:"paused,omitempty"`
}

// JobView is one job or workflow run.
type JobView struct {
	ID              string             `json:"id"`
	Job             string             `json:"job"`
	Workflow        bool               `json:"workflow,omitempty"`
	State           ferry.JobState     `json:"state"`
	Attempts        int                `json:"attempts"`
	MaxAttempts     int                `json:"max_attempts,omitempty"`
	Progress        *ferry.JobProgress `json:"progress,omitempty"`
	LastError       string             `json:"last_error,omitempty"`
	Steps           int                `json:"steps,omitempty"`
	Waiting         string             `json:"waiting,omitempty"`
	CancelRequested bool               `json:"cancel_requested,omitempty"`
	EnqueuedAt      time.Time          `json:"enqueued_at"`
	UpdatedAt       time.Time          `json:"updated_at"`
}

type record = ferry.JobRecord[json.RawMessage]

// jobTail follows the ended jobs: listings of a final state come in the
// order jobs ended, so it keeps each state's cursor between refreshes
// and reads only what ended since (a few pages per refresh: on a system
// with a long history it catches up over the first refreshes), keeping
// the latest ringSize records of each.
type jobTail struct {
	c      *ferry.Client
	mu     sync.Mutex // one read at a time
	cursor map[ferry.JobState]string
	ring   map[ferry.JobState][]*record
}

func newJobTail(c *ferry.Client) *jobTail {
	return &jobTail{c: c, cursor: map[ferry.JobState]string{}, ring: map[ferry.JobState][]*record{}}
}

// read returns the kinds' queues and the latest jobs.
func (t *jobTail) read(ctx context.Context, kinds []string) (JobsView, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := JobsView{Kinds: []KindView{}, Latest: []JobView{}}
	var firstErr error
	keep := func(err error) {
		if firstErr == nil && err != nil {
			firstErr = err
		}
	}
	for i, k := range kinds {
		if i >= maxKinds {
			break
		}
		info, err := ferry.GetJobKind(ctx, t.c, k)
		if isStatus(err, 404) {
			continue // its worker did not start yet
		}
		if err != nil {
			keep(err)
			continue
		}
		out.Kinds = append(out.Kinds, KindView{Job: k, Queued: info.Queued, Running: info.Running, Scheduled: info.Scheduled, Paused: info.Paused})
	}
	var recs []*record
	for _, st := range []ferry.JobState{ferry.JobRunning, ferry.JobQueued, ferry.JobScheduled} {
		page, _, err := ferry.ListJobs(ctx, t.c, ferry.JobFilter{State: st}, openLimit)
		keep(err)
		recs = append(recs, page...)
	}
	for _, st := range []ferry.JobState{ferry.JobFailed, ferry.JobSucceeded, ferry.JobCancelled} {
		keep(t.follow(ctx, st))
		recs = append(recs, t.ring[st]...)
	}
	seen := map[string]bool{}
	slices.SortStableFunc(recs, func(a, b *record) int { return b.UpdatedAt.Compare(a.UpdatedAt) })
	for _, r := range recs {
		if seen[r.ID] || len(out.Latest) >= maxLatest {
			continue
		}
		seen[r.ID] = true
		out.Latest = append(out.Latest, JobView{ID: r.ID, Job: r.Job, Workflow: r.Workflow, State: r.State, Attempts: r.Attempts,
			MaxAttempts: r.MaxAttempts, Progress: r.Progress, LastError: r.LastError, Steps: r.Steps, Waiting: r.Waiting,
			CancelRequested: r.CancelRequested, EnqueuedAt: r.EnqueuedAt, UpdatedAt: r.UpdatedAt})
	}
	return out, firstErr
}

// follow reads what ended in state st since the last read into its ring.
// Once the end is reached the listing gives no cursor, so the last page
// is read again next time (at most tailPage entries) until it fills up.
// A failed job can be retried, so the failed ring's records are read
// again and dropped when they moved on.
func (t *jobTail) follow(ctx context.Context, st ferry.JobState) error {
	for range tailPages {
		page, next, err := ferry.ListJobs(ctx, t.c, ferry.JobFilter{State: st, After: t.cursor[st]}, tailPage)
		if err != nil {
			return err
		}
		for _, r := range page {
			t.put(st, r)
		}
		if next == "" {
			break
		}
		t.cursor[st] = next
	}
	if st != ferry.JobFailed {
		return nil
	}
	kept := t.ring[st][:0]
	for _, r := range t.ring[st] {
		rctx, cancel := context.WithTimeout(ctx, recordWait)
		now, err := ferry.GetJob(rctx, t.c, r.ID)
		cancel()
		switch {
		case err == nil && now.State == st:
			kept = append(kept, now)
		case err != nil && !isStatus(err, 404):
			kept = append(kept, r) // unknown: kept as it was
		}
	}
	t.ring[st] = kept
	return nil
}

// put adds r to st's ring, replacing an earlier record of the same job.
func (t *jobTail) put(st ferry.JobState, r *record) {
	ring := t.ring[st]
	if i := slices.IndexFunc(ring, func(x *record) bool { return x.ID == r.ID }); i >= 0 {
		ring[i] = r
		return
	}
	ring = append(ring, r)
	if len(ring) > ringSize {
		ring = slices.Delete(ring, 0, len(ring)-ringSize)
	}
	t.ring[st] = ring
}

// jobKinds are the job kinds the services run.
func jobKinds(services []ServiceView) []string {
	var kinds []string
	for _, s := range services {
		for _, j := range s.Jobs {
			if !slices.Contains(kinds, j) {
				kinds = append(kinds, j)
			}
		}
	}
	slices.Sort(kinds)
	return kinds
}

// isStatus reports a Ferry *Error with that status.
func isStatus(err error, status int) bool {
	var fe *ferry.Error
	return errors.As(err, &fe) && fe.Status == status
}
