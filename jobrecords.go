package ferry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/jobs"
	"github.com/ferrygo/ferry/internal/naming"
)

// errJobNotFound is the 404 of a job with no record: never enqueued, or
// removed after its retention (or an ID that cannot be one).
func errJobNotFound(id string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "job_not_found", Detail: "no job " + quoteID(id)}
}

// quoteID quotes an ID for an error detail, shortened if it is long.
func quoteID(id string) string { return fmt.Sprintf("%q", truncate(id, 64)) }

// Get returns the record of the job with id, its result typed Out. A job
// that does not exist, or is of another kind, is a 404 *[Error]
// ("job_not_found").
func (j Job[In, Out]) Get(ctx context.Context, c *Client, id string) (*JobRecord[Out], error) {
	rec, err := getJob(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if rec.Job != j.Name {
		return nil, errJobNotFound(id)
	}
	return recordOf[Out](rec)
}

// GetJob returns the record of the job with id, of any kind, its result
// as raw JSON. A job that does not exist is a 404 *[Error]
// ("job_not_found").
func GetJob(ctx context.Context, c *Client, id string) (*JobRecord[json.RawMessage], error) {
	rec, err := getJob(ctx, c, id)
	if err != nil {
		return nil, err
	}
	return recordOf[json.RawMessage](rec)
}

func getJob(ctx context.Context, c *Client, id string) (*jobs.Record, error) {
	if c == nil {
		return nil, fmt.Errorf("ferry: get job: %w", errNoClient)
	}
	if !jobs.ValidID(id) {
		return nil, errJobNotFound(id)
	}
	store, err := c.jobStore(ctx)
	if err != nil {
		return nil, err
	}
	rec, err := store.Get(ctx, id)
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		return nil, errJobNotFound(id)
	case err != nil:
		return nil, fmt.Errorf("ferry: get job %s: %w", id, err)
	}
	return rec, nil
}

// Cancel cancels the job with id and returns its record after the
// cancel. A queued or scheduled job is cancelled at once and never starts,
// whichever replica holds it and even if none is connected. A running job
// gets CancelRequested: its handler's context is cancelled on the replica
// that runs it, and the job ends cancelled — or succeeded, if the handler
// finished anyway. Cancelling a finished job changes nothing. A job that
// does not exist, or is of another kind, is a 404 *[Error].
func (j Job[In, Out]) Cancel(ctx context.Context, c *Client, id string) (*JobRecord[Out], error) {
	rec, err := cancelJob(ctx, c, id, j.Name)
	if err != nil {
		return nil, err
	}
	return recordOf[Out](rec)
}

// CancelJob is [Job.Cancel] for a job of any kind, its result as raw JSON.
func CancelJob(ctx context.Context, c *Client, id string) (*JobRecord[json.RawMessage], error) {
	rec, err := cancelJob(ctx, c, id, "")
	if err != nil {
		return nil, err
	}
	return recordOf[json.RawMessage](rec)
}

// cancelledRetention is how long a record cancelled before it ran is kept:
// the worker's retention is not known to a caller.
const cancelledRetention = DefaultJobRetention

func cancelJob(ctx context.Context, c *Client, id, kind string) (*jobs.Record, error) {
	if c == nil {
		return nil, fmt.Errorf("ferry: cancel job: %w", errNoClient)
	}
	if !jobs.ValidID(id) {
		return nil, errJobNotFound(id)
	}
	store, err := c.jobStore(ctx)
	if err != nil {
		return nil, err
	}
	rec, err := store.Update(ctx, id, func(rec *jobs.Record) (time.Duration, error) {
		switch {
		case kind != "" && rec.Job != kind:
			return 0, jobs.ErrNotFound
		case rec.Workflow && rec.State == jobs.Failed && !rec.Compensated:
			// A failed run kept for a resume: discarded.
			rec.State, rec.FinishedAt = jobs.Cancelled, time.Now().UTC()
			return cancelledRetention, nil
		case rec.State.Final(), rec.CancelRequested:
			return 0, jobs.ErrNoChange
		case rec.State == jobs.Running:
			rec.CancelRequested = true
			return 0, nil
		case rec.Workflow:
			// Woken to run its compensations, then to end cancelled.
			rec.CancelRequested, rec.State = true, jobs.Queued
			rec.Wake++
			return 0, nil
		}
		rec.State, rec.FinishedAt = jobs.Cancelled, time.Now().UTC()
		return cancelledRetention, nil
	})
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		return nil, errJobNotFound(id)
	case err != nil:
		return nil, fmt.Errorf("ferry: cancel job %s: %w", id, err)
	}
	switch {
	case rec.Workflow && rec.State == jobs.Queued && rec.CancelRequested:
		js, err := c.jetStream()
		if err == nil {
			err = publishWake(ctx, js, rec)
		}
		if err != nil {
			return nil, fmt.Errorf("ferry: cancel run %s: the cancel is recorded, but the run was not woken to end: %w", id, err)
		}
		if !rec.RunAt.IsZero() {
			// Its schedule (a start for later, or a wait's wake) is
			// obsolete: a start's would start it again once its record
			// is gone.
			purgeSchedule(ctx, c, rec)
		}
	case rec.Workflow && rec.State == jobs.Cancelled:
		_ = store.Forget(ctx, id)
	case rec.State == jobs.Running && rec.CancelRequested:
		// The record is the durable word; the notice makes it prompt.
		_ = c.nc.Publish(naming.JobCancelSubject(rec.Job, id), nil)
	case rec.State == jobs.Cancelled && !rec.RunAt.IsZero():
		// A scheduled job's message need not wait for its time to be skipped.
		purgeSchedule(ctx, c, rec)
	}
	return rec, nil
}

// purgeSchedule removes the message schedule of the job rec, if any.
func purgeSchedule(ctx context.Context, c *Client, rec *jobs.Record) {
	if js, err := c.jetStream(); err == nil {
		if s, err := js.Stream(ctx, naming.JobStream(rec.Job)); err == nil {
			_ = s.Purge(ctx, jetstream.WithPurgeSubject(naming.JobScheduleSubject(rec.Job, rec.ID)))
		}
	}
}
