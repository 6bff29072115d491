package ferry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/jobs"
	"github.com/ferrygo/ferry/internal/naming"
)

// JobKindInfo is the state of a job kind's queue, as the broker has it.
type JobKindInfo struct {
	// Job is the job kind's name.
	Job string
	// Queued counts the jobs ready to run that no worker took yet.
	Queued uint64
	// Running counts the jobs a worker took and did not finish: running,
	// or waiting out a retry's backoff.
	Running uint64
	// Scheduled counts the jobs waiting for their time.
	Scheduled uint64
	// OldestQueued is when the oldest queued job became ready to run (its
	// enqueue, or its time); zero when none is queued.
	OldestQueued time.Time
	// Paused reports whether the kind is paused ([PauseJobs]), and
	// PausedUntil when the pause ends.
	Paused      bool
	PausedUntil time.Time
}

// errJobKindNotFound is the 404 of a job kind whose worker never
// started on the broker (no stream or no consumer yet).
func errJobKindNotFound(job string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "job_kind_not_found",
		Detail: "no worker of job " + job + " has started on this broker"}
}

// GetJobKind returns the state of a job kind's queue: the counts of its
// queued, running and scheduled jobs (every priority's, summed) and
// whether it is paused (every priority's consumer is). A kind
// whose worker never started is a 404 *[Error] ("job_kind_not_found").
func GetJobKind(ctx context.Context, c *Client, job string) (*JobKindInfo, error) {
	js, err := jobKindJetStream(c, job)
	if err != nil {
		return nil, err
	}
	q, err := jobs.ReadQueue(ctx, js, jobQueue(job))
	if err != nil {
		return nil, jobKindError(job, err)
	}
	return &JobKindInfo{Job: job, Queued: q.Queued, Running: q.Running, Scheduled: q.Scheduled, OldestQueued: q.OldestQueued,
		Paused: !q.PausedUntil.IsZero(), PausedUntil: q.PausedUntil}, nil
}

// PauseJobs stops the workers of a job kind from taking jobs until the
// time until (zero: until [ResumeJobs]), on every replica at once: for an
// incident, a broken dependency, a deploy. Jobs still enqueue and are
// stored; scheduled ones come due and wait; jobs already running finish.
// The pause applies to every priority (the kind's consumers worker,
// worker-high and worker-low, those that exist) and is kept by the
// broker: it outlives the workers' restarts, and ends by itself at
// until. A kind whose worker
// never started is a 404 *[Error] ("job_kind_not_found").
func PauseJobs(ctx context.Context, c *Client, job string, until time.Time) error {
	js, err := jobKindJetStream(c, job)
	if err != nil {
		return err
	}
	if until.IsZero() {
		until = time.Now().AddDate(100, 0, 0)
	}
	if err := jobs.Pause(ctx, js, jobQueue(job), until); err != nil {
		return jobKindError(job, err)
	}
	return nil
}

// ResumeJobs ends the pause of a job kind: its workers take jobs again,
// the oldest first. Resuming a kind that is not paused changes nothing.
func ResumeJobs(ctx context.Context, c *Client, job string) error {
	js, err := jobKindJetStream(c, job)
	if err != nil {
		return err
	}
	if err := jobs.Resume(ctx, js, jobQueue(job)); err != nil {
		return jobKindError(job, err)
	}
	return nil
}

// jobQueue names a job kind's queue: its stream and its priorities'
// consumers (normal, high, low).
func jobQueue(job string) jobs.Kind {
	return jobs.Kind{Job: job, Stream: naming.JobStream(job)}
}

func jobKindJetStream(c *Client, job string) (jetstream.JetStream, error) {
	if c == nil {
		return nil, fmt.Errorf("ferry: job kind %s: %w", job, errNoClient)
	}
	if err := naming.CheckJobName(job); err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Code: "invalid_job_kind", Detail: err.Error()}
	}
	return c.jetStream()
}

func jobKindError(job string, err error) error {
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound) {
		return errJobKindNotFound(job)
	}
	return fmt.Errorf("ferry: job kind %s: %w", job, err)
}
