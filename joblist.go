package ferry

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/ferrygo/ferry/internal/jobs"
	"github.com/ferrygo/ferry/internal/naming"
)

// MaxJobListLimit bounds the records one page of [ListJobs] returns.
const MaxJobListLimit = 1000

// JobFilter selects the jobs [ListJobs] returns; an empty field matches
// all.
type JobFilter struct {
	// Job is the job kind's name.
	Job string
	// State is the state the jobs are in now.
	State JobState
	// After is the cursor a previous page returned: the page starts after
	// it. "" starts from the beginning.
	After string
}

// ListJobs returns up to limit records of jobs matching filter, and the
// cursor of the next page: pass it as filter.After; "" means the end was
// reached. Jobs come in the order they were created for queued, scheduled
// and running (the oldest job first), in the order they ended for a final
// state. A page may hold fewer than limit records and still not be the
// last (it reads at most about twice limit index entries, skipping those
// whose job moved on and, for queued, scheduled or running, those of the
// kind's jobs in the other two).
//
// A listing reads an index kept beside the records, not every record: it
// costs one request per page plus one read per entry. The index has one
// key per job for its open states (queued, scheduled, running: written
// when the job is stored and kept until it ends) and one for its final
// state. Each record returned is read at listing time and is in the
// filter's state then. The index follows each job's end shortly after the
// record: a listing sees this client's own changes, and another process's
// within moments. Pages are stable under concurrent changes: a job keeps
// its place while it moves between queued, scheduled and running (a
// retried job going back to queued), so it comes at most once per pass
// of one state, and is missed only if it is out of the state when the
// listing reaches it; a new job comes at the end. A listing of every state
// (State "") may return a job that ends during the pass twice: once open,
// once more at the end in its final state. A job whose index write was lost (the
// broker failed, or the writing process died right after the record) is
// missing from its list until its next change between open and final.
//
// A limit outside 1..[MaxJobListLimit], an invalid state or job name, or
// a cursor this function did not make is a 400 *[Error]
// ("invalid_job_list").
func ListJobs(ctx context.Context, c *Client, filter JobFilter, limit int) ([]*JobRecord[json.RawMessage], string, error) {
	recs, next, err := listJobs(ctx, c, filter, limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]*JobRecord[json.RawMessage], 0, len(recs))
	for _, r := range recs {
		rec, err := recordOf[json.RawMessage](r)
		if err != nil {
			return nil, "", fmt.Errorf("ferry: list jobs: job %s: %w", r.ID, err)
		}
		out = append(out, rec)
	}
	return out, next, nil
}

// List is [ListJobs] for this job kind, the results typed Out;
// filter.Job must be empty or the kind's name.
func (j Job[In, Out]) List(ctx context.Context, c *Client, filter JobFilter, limit int) ([]*JobRecord[Out], string, error) {
	if filter.Job != "" && filter.Job != j.Name {
		return nil, "", invalidJobList(fmt.Sprintf("the filter's job %q is not %q", filter.Job, j.Name))
	}
	filter.Job = j.Name
	recs, next, err := listJobs(ctx, c, filter, limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]*JobRecord[Out], 0, len(recs))
	for _, r := range recs {
		rec, err := recordOf[Out](r)
		if err != nil {
			return nil, "", fmt.Errorf("ferry: list jobs: job %s: %w", r.ID, err)
		}
		out = append(out, rec)
	}
	return out, next, nil
}

func invalidJobList(detail string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_job_list", Detail: detail}
}

// jobListFlushWait bounds how long a listing waits for this client's own
// index writes to be acknowledged.
const jobListFlushWait = 2 * time.Second

func listJobs(ctx context.Context, c *Client, filter JobFilter, limit int) ([]*jobs.Record, string, error) {
	if c == nil {
		return nil, "", fmt.Errorf("ferry: list jobs: %w", errNoClient)
	}
	f := jobs.ListFilter{Job: filter.Job, State: jobs.State(filter.State)}
	switch {
	case limit < 1 || limit > MaxJobListLimit:
		return nil, "", invalidJobList(fmt.Sprintf("limit %d: must be from 1 to %d", limit, MaxJobListLimit))
	case f.State != "" && !f.State.Valid():
		return nil, "", invalidJobList(fmt.Sprintf("no job state %q", filter.State))
	case f.Job != "" && naming.CheckJobName(f.Job) != nil:
		return nil, "", invalidJobList(naming.CheckJobName(f.Job).Error())
	}
	if filter.After != "" {
		seq, err := strconv.ParseUint(filter.After, 36, 64)
		if err != nil || seq == 0 || seq == math.MaxUint64 { // the next page starts at seq+1
			return nil, "", invalidJobList(fmt.Sprintf("cursor %q: not one a listing returned", truncate(filter.After, 64)))
		}
		f.After = seq
	}
	store, err := c.jobStore(ctx)
	if err != nil {
		return nil, "", err
	}
	fctx, cancel := context.WithTimeout(ctx, jobListFlushWait)
	_ = store.Flush(fctx) // this client's own changes first; others' within moments
	cancel()
	recs, next, err := store.List(ctx, f, limit)
	if err != nil {
		return nil, "", fmt.Errorf("ferry: list jobs: %w", err)
	}
	cursor := ""
	if next > 0 {
		cursor = strconv.FormatUint(next, 36)
	}
	return recs, cursor, nil
}

// RebuildJobIndex writes the listing index's key of every job whose key
// was lost (a broker failure, or a process that died between a job's
// record and its index write: [ListJobs] misses such a job until its next
// change between open and final). It reads every record: an operator's
// repair, not a routine. It returns how many keys it wrote.
func RebuildJobIndex(ctx context.Context, c *Client) (int, error) {
	if c == nil {
		return 0, fmt.Errorf("ferry: rebuild the job index: %w", errNoClient)
	}
	store, err := c.jobStore(ctx)
	if err != nil {
		return 0, err
	}
	n, err := store.Reindex(ctx)
	if err != nil {
		return n, fmt.Errorf("ferry: rebuild the job index: %w", err)
	}
	return n, nil
}
