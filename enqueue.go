package ferry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/jobs"
	"github.com/ferrygo/ferry/internal/naming"
)

// EnqueueOption adjusts one [Job.Enqueue].
type EnqueueOption func(*enqueueOptions)

type enqueueOptions struct {
	key         string
	window      time.Duration
	runAt       time.Time
	delay       time.Duration
	maxAttempts int
	timeout     time.Duration
	priority    JobPriority
}

// maxJobKeyLength bounds a uniqueness key.
const maxJobKeyLength = 1024

func (o enqueueOptions) check() error {
	switch {
	case o.key == "" && o.window != 0:
		return errors.New("EnqueueKey: the key is empty")
	case len(o.key) > maxJobKeyLength:
		return fmt.Errorf("EnqueueKey: the key is longer than %d bytes", maxJobKeyLength)
	case o.key != "" && o.window < time.Second:
		return fmt.Errorf("EnqueueKey(%q, %v): the window must be at least 1s", o.key, o.window)
	case o.maxAttempts < 0:
		return fmt.Errorf("EnqueueMaxAttempts(%d): must not be negative", o.maxAttempts)
	case o.timeout < 0:
		return fmt.Errorf("EnqueueTimeout(%v): must not be negative", o.timeout)
	case o.delay < 0:
		return fmt.Errorf("EnqueueDelay(%v): must not be negative", o.delay)
	case o.priority.check() != nil:
		return fmt.Errorf("EnqueuePriority: %w", o.priority.check())
	}
	return nil
}

// EnqueueKey makes the enqueue idempotent for window: a second enqueue of
// the same job kind with the same key within it — a retry after a lost
// reply, a double-clicked button — stores nothing and returns the first
// job's ID. The key may be any string up to 1 KiB (it is stored hashed).
//
// A retry of an enqueue that failed after storing the job but before
// writing its record returns that job if it comes within 45 seconds of
// the first attempt; later, with no worker having taken the job yet, it
// cannot be told from a job whose record was removed after its
// retention, and the key is bound to a new job.
func EnqueueKey(key string, window time.Duration) EnqueueOption {
	return func(o *enqueueOptions) { o.key, o.window = key, window }
}

// EnqueueAt holds the job until t (to the second): it waits in the
// broker as a message schedule, taking no worker slot. A time in the past
// runs the job now.
func EnqueueAt(t time.Time) EnqueueOption {
	return func(o *enqueueOptions) { o.runAt = t }
}

// EnqueueDelay holds the job for d; see [EnqueueAt].
func EnqueueDelay(d time.Duration) EnqueueOption {
	return func(o *enqueueOptions) { o.delay = d }
}

// EnqueueMaxAttempts sets how many times the handler may run for this job
// before it fails (default: the worker's, [JobMaxAttempts]).
func EnqueueMaxAttempts(n int) EnqueueOption {
	return func(o *enqueueOptions) { o.maxAttempts = n }
}

// EnqueueTimeout bounds each run of this job's handler (default: the
// worker's, [JobTimeout]).
func EnqueueTimeout(d time.Duration) EnqueueOption {
	return func(o *enqueueOptions) { o.timeout = d }
}

// Enqueue stores a job to run in on a worker of the job kind, and returns
// its ID once the job is durably stored. The job's record is readable at
// once with [Job.Get]; a worker service that binds the job kind with
// [HandleJob] runs it, now or at its time, on any of its replicas.
//
// An input that breaks In's schema (its validation tags) is not stored:
// the error is a 422 *[Error] ("invalid_job"). Any other failure may have
// stored the job or not: enqueue with [EnqueueKey] to retry safely.
func (j Job[In, Out]) Enqueue(ctx context.Context, c *Client, in *In, opts ...EnqueueOption) (id string, err error) {
	return j.enqueue(ctx, c, in, opts, "", "")
}

// enqueue is Enqueue; a workflow's child run is enqueued with its own ID
// (derived from its parent's, so that starting it twice stores it once)
// and its parent's.
func (j Job[In, Out]) enqueue(ctx context.Context, c *Client, in *In, opts []EnqueueOption, fixedID, parent string) (id string, err error) {
	if err := j.check(); err != nil {
		return "", fmt.Errorf("ferry: enqueue: %w", err)
	}
	var o enqueueOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if err := o.check(); err != nil {
		return "", fmt.Errorf("ferry: enqueue %s: %w", j.Name, err)
	}
	if c == nil {
		return "", fmt.Errorf("ferry: enqueue %s: %w", j.Name, errNoClient)
	}
	data, err := json.Marshal(in)
	if err != nil {
		return "", fmt.Errorf("ferry: enqueue %s: %w", j.Name, err)
	}
	if err := publishValidator(j.decl())(data); err != nil {
		return "", j.invalid(err)
	}
	if fe := c.unavailable(); fe != nil {
		return "", fe
	}
	store, err := c.jobStore(ctx)
	if err != nil {
		return "", err
	}
	if err := c.ensureJobStream(ctx, j.Name); err != nil {
		return "", err
	}
	ctx, end := startPublishSpan(ctx, j.Name, 1, "")
	defer func() { end(err) }()

	id = jobs.NewID()
	if fixedID != "" {
		id = fixedID
	}
	if o.key != "" {
		got, first, bound, err := store.Reserve(ctx, j.Name, o.key, id, o.window)
		if err != nil {
			return "", fmt.Errorf("ferry: enqueue %s: uniqueness key: %w", j.Name, err)
		}
		if !first {
			_, err := store.Get(ctx, got)
			switch {
			case err == nil:
				return got, nil // enqueued before: the same job
			case !errors.Is(err, jobs.ErrNotFound):
				return "", fmt.Errorf("ferry: enqueue %s: %w", j.Name, err)
			}
			// The key's job has no record: its enqueue stopped before
			// writing it (its message may be stored: an acknowledgement
			// lost, a deadline passed), or it was removed after its
			// retention (shorter than the window).
			if time.Since(bound) < rebindAfter {
				// Too young to have been removed: enqueue the key's job
				// again under its ID. A message already stored is
				// dropped as a duplicate (the stream remembers IDs for
				// longer), and the record is written.
				id = got
			} else {
				// Bind the key to a new job, unless another enqueue just did.
				if got, err = store.Rebind(ctx, j.Name, o.key, got, id, o.window); err != nil {
					return "", fmt.Errorf("ferry: enqueue %s: uniqueness key: %w", j.Name, err)
				}
				if got != id {
					return got, nil
				}
			}
		}
	}
	now := time.Now().UTC()
	runAt := o.runAt
	if o.delay > 0 {
		runAt = now.Add(o.delay)
	}
	rec := &jobs.Record{ID: id, Job: j.Name, State: jobs.Queued, MaxAttempts: o.maxAttempts, Key: o.key,
		RequestID: RequestIDFromContext(ctx), EnqueuedAt: now, Priority: string(o.priority)}
	if rec.Priority == string(PriorityNormal) {
		rec.Priority = ""
	}
	if j.workflow {
		rec.Workflow, rec.Input, rec.Parent = true, data, parent
	}
	run := o.priority.subject(j.Name)
	msg := nats.NewMsg(run)
	msg.Data = data
	msg.Header.Set(naming.HeaderMsgID, id)
	msg.Header.Set(naming.HeaderJobID, id)
	msg.Header.Set(naming.HeaderJobEnqueued, now.Format(time.RFC3339Nano))
	msg.Header.Set("Content-Type", "application/json")
	if o.maxAttempts > 0 {
		msg.Header.Set(naming.HeaderJobMaxAttempts, strconv.Itoa(o.maxAttempts))
	}
	if o.timeout > 0 {
		msg.Header.Set(naming.HeaderJobTimeout, strconv.FormatInt(o.timeout.Milliseconds(), 10))
	}
	if o.key != "" {
		msg.Header.Set(naming.HeaderJobKey, o.key)
	}
	if o.priority != "" && o.priority != PriorityNormal {
		msg.Header.Set(naming.HeaderJobPriority, string(o.priority))
	}
	propagate(ctx, msg.Header.Set) // request ID and trace context
	if j.workflow {
		rec.Trace = msg.Header.Get("Traceparent") // the run's wakes carry it on
		if parent != "" {
			msg.Header.Set(naming.HeaderWorkflowParent, parent)
		}
	}
	pubOpts := []jetstream.PublishOpt{jetstream.WithExpectStream(naming.JobStream(j.Name))}
	if runAt.After(now.Add(time.Second)) {
		runAt = runAt.Truncate(time.Second).Add(time.Second) // schedules count whole seconds: never early
		rec.State, rec.RunAt = jobs.Scheduled, runAt
		msg.Subject = naming.JobScheduleSubject(j.Name, id)
		msg.Header.Set(naming.HeaderJobRunAt, runAt.Format(time.RFC3339))
		pubOpts = append(pubOpts, jetstream.WithScheduleAt(runAt), jetstream.WithScheduleTarget(run))
	}
	if _, err := c.enqueue(ctx, j.Name, msg, pubOpts); err != nil {
		return "", err
	}
	// The message is the job; the record its view. A worker that takes the
	// job before this write makes the record itself, from the message.
	if err := store.Create(ctx, rec); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return "", fmt.Errorf("ferry: enqueue %s: job %s is stored but its record is not (a worker writes it when it runs the job): %w", j.Name, id, err)
	}
	return id, nil
}

// rebindAfter is how long after its key was bound a job without a record
// may have had it removed (its retention, at least minJobRetention, is
// counted from its end), less a margin for the clocks of the broker and
// this process; younger, its enqueue did not get to write it. It is well
// within the job stream's duplicate window.
var rebindAfter = minJobRetention - 15*time.Second

// decl is the job's input, as a payload checked like a topic's.
func (j Job[In, Out]) decl() topicDecl {
	return topicDecl{name: "job:" + j.Name, payload: reflect.TypeFor[In]()}
}

// jobPublishError is the error of a job message JetStream refused or did
// not answer.
func jobPublishError(name string, err error) error {
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && (apiErr.ErrorCode == jsErrStreamStoreFailed && strings.Contains(apiErr.Description, "maximum") ||
		apiErr.ErrorCode == jsErrInsufficientResources):
		return &Error{Status: http.StatusInsufficientStorage, Code: "job_queue_full",
			Detail: "the queue of job " + name + " is full; nothing was enqueued", cause: err}
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return &Error{Status: http.StatusServiceUnavailable, Code: "broker_unavailable",
			Detail: "the broker did not answer; the job may or may not be stored", cause: err}
	}
	return fmt.Errorf("ferry: enqueue %s: %w", name, err)
}

// invalid is the 422 of an input that breaks the job's schema.
func (j Job[In, Out]) invalid(err error) error {
	var ip *invalidPayload
	if !errors.As(err, &ip) {
		return fmt.Errorf("ferry: enqueue %s: %w", j.Name, err)
	}
	return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_job",
		Detail: "the input breaks the schema of job " + j.Name + "; nothing was enqueued", Errors: ip.fieldErrors("input"), cause: err}
}
