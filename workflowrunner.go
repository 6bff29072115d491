package ferry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/jobs"
	"github.com/ferrygo/ferry/internal/naming"
	"github.com/ferrygo/ferry/internal/worker"
)

// A workflow run is a job of the workflow's kind (job.workflow), run by
// the job runner with these differences: its record keeps its input; an
// execution may end suspended, acknowledging its message after
// recording what the run waits for and arranging its wake; and a message
// only starts an execution when it carries the run's current wake number
// (stale wakes are dropped). This file holds those differences.

// beginRun moves a run's record to running for this delivery; start is
// false when it must not execute: it ended, or the message is a stale
// wake (a newer suspension's wake is arranged again, in case the
// execution that suspended stopped before arranging it).
func (r *jobRunner[In, Out]) beginRun(ctx context.Context, d *worker.Delivery, id string) (*jobs.Record, bool, error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	replay, token := wakeOf(d.Msg.Headers())
	seq := d.Meta.Sequence.Stream
	if replay {
		// A resume: the step that failed the run is forgotten first, so
		// that it runs again however often this is tried.
		if rec, err := r.store.Get(wctx, id); err == nil && rec.State == jobs.Failed && !rec.Compensated && rec.FailedStep != "" && token == rec.Wake {
			if err := r.store.DeleteStep(wctx, rec.FailedStep); err != nil {
				return nil, false, err
			}
		}
	}
	for range 3 {
		start, stale, resumed := false, false, false
		rec, err := r.store.Update(wctx, id, func(rec *jobs.Record) (time.Duration, error) {
			start, stale, resumed = false, false, false
			switch {
			case replay && rec.State == jobs.Failed && !rec.Compensated && token == rec.Wake:
				resumed = true // resumed after a fix
			case rec.State.Final():
				return 0, jobs.ErrNoChange
			case token < rec.Wake:
				stale = true
				return 0, jobs.ErrNoChange
			case rec.State == jobs.Running && rec.Exec != 0 && rec.Exec != seq:
				// Another message of the wake being executed (a wake arranged
				// twice): if the execution dies, its own message comes back.
				return 0, jobs.ErrNoChange
			}
			start = true
			rec.Exec = seq
			if data := d.Msg.Data(); len(data) > 0 && json.Valid(data) && !bytes.Equal(rec.Input, data) {
				// The message is the run: a keyed start retried with another
				// input wrote its own in the record, its message dropped as
				// a duplicate of this one. Every execution decodes this input.
				rec.Input = data
			}
			if resumed {
				// The step that failed the run runs again, its attempts afresh.
				rec.FailedStep, rec.RetryAttempts, rec.Waiting = "", nil, ""
			}
			rec.State, rec.Attempts, rec.MaxAttempts, rec.StartedAt = jobs.Running, int(d.Attempt), d.MaxAttempts, time.Now().UTC()
			rec.FinishedAt, rec.Result, rec.WakePending, rec.Requeued = time.Time{}, nil, false, false
			return 0, nil
		})
		if errors.Is(err, jobs.ErrNotFound) {
			if token > 0 || len(d.Msg.Data()) == 0 {
				return nil, false, nil // a wake of a run whose record was removed after its end
			}
			if err := r.store.Create(wctx, r.runFromMessage(d, id)); err != nil && !jobs.Conflict(err) {
				return nil, false, err
			}
			continue
		}
		if err != nil {
			return nil, false, err
		}
		if stale && rec.State != jobs.Running {
			if err := publishWake(wctx, r.js, rec); err != nil {
				return nil, false, err
			}
		}

		return rec, start, nil
	}
	return nil, false, fmt.Errorf("run %s: record not found", id)
}

// wakeOf reads a run's message: whether it resumes a failed run, and the
// suspension it wakes (0, its start, when absent or unparsable).
func wakeOf(h nats.Header) (replay bool, token uint64) {
	token, err := strconv.ParseUint(h.Get(naming.HeaderWorkflowWake), 10, 64)
	if err != nil {
		token = 0 // ParseUint answers a number out of range with the largest
	}
	return h.Get(naming.HeaderJobReplay) != "", token
}

// runFromMessage is the record of a run whose starter did not write one,
// made from its start message.
func (r *jobRunner[In, Out]) runFromMessage(d *worker.Delivery, id string) *jobs.Record {
	rec := r.recordFromMessage(d, id)
	rec.Workflow = true
	if data := d.Msg.Data(); json.Valid(data) {
		// Else the record could not be stored (its input is JSON): the
		// run is made without one and fails as a malformed input.
		rec.Input = data
	}
	rec.Parent = d.Msg.Headers().Get(naming.HeaderWorkflowParent)
	rec.Trace = d.Msg.Headers().Get("Traceparent")
	return rec
}

// newExecution is the state of the execution of a run whose record, as it
// began, is rec.
func (r *jobRunner[In, Out]) newExecution(ctx context.Context, d *worker.Delivery, rec *jobs.Record) *execution {
	return &execution{
		id: rec.ID, workflow: r.job.Name, service: r.svc.name, store: r.store, client: r.svc.Client(), rec: rec,
		attempt: int(d.Attempt), maxAttempts: d.MaxAttempts, logger: r.svc.logger, observer: r.svc.observer.load(),
		io: context.WithoutCancel(ctx), replaying: true,
	}
}

// suspendRun records that the run waits, arranges its wake, and settles
// its message: acknowledged, or redelivered when the wait could not be
// recorded (the redelivery, stale once the record moved on, arranges the
// wake again).
func (r *jobRunner[In, Out]) suspendRun(known *lastRecord, d *worker.Delivery, x *execution, s *suspension, last *jobs.Progress) worker.Result {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := known.update(ctx, r.store, x.id, func(rec *jobs.Record) (time.Duration, error) {
		if rec.State != jobs.Running {
			return 0, jobs.ErrNoChange
		}
		rec.Wake++
		rec.Waiting, rec.WaitStep, rec.RetryAttempts, rec.RunAt = s.waiting, s.pos, s.retries, s.at.UTC()
		rec.State, rec.Requeued = jobs.Scheduled, false
		retry := strings.HasPrefix(s.waiting, "retry ")
		switch {
		case retry:
			// A retry keeps its backoff: a signal that came meanwhile is
			// found when the run gets to it; a cancel, at the retry.
			rec.WakePending = false
		case rec.WakePending:
			rec.State, rec.WakePending = jobs.Queued, false // woken while it executed
		case rec.CancelRequested:
			rec.State = jobs.Queued // cancelled while it executed: it compensates now
		}
		rec.Steps = x.recordedSteps()
		if last != nil {
			rec.Progress = last
		}
		return 0, nil
	})
	if err != nil {
		return worker.Result{Outcome: worker.Retry, Reason: "workflow run's wait not recorded: " + err.Error()}
	}
	rec := known.current()
	if rec.State == jobs.Running || rec.State.Final() {
		return worker.Result{Outcome: worker.Ack}
	}
	if err := publishWake(ctx, r.js, rec); err != nil {
		return worker.Result{Outcome: worker.Retry, Reason: "workflow run's wake not arranged: " + err.Error()}
	}
	if rec.State == jobs.Scheduled && s.recheck != nil && s.recheck(ctx) {
		// What it waits for came while it recorded its wait.
		if err := wakeRun(ctx, r.svc.Client(), r.store, x.id, s.waiting); err != nil {
			r.svc.logger.Warn("ferry: workflow run not woken", slog.String("workflow", r.job.Name), slog.String("run", x.id), slog.String("err", err.Error()))
		}
	}
	return worker.Result{Outcome: worker.Ack}
}

// endRun follows a run's end: its steps are forgotten (unless it failed
// and can be resumed), and its parent, if any, is woken.
func (r *jobRunner[In, Out]) endRun(known *lastRecord) {
	rec := known.current()
	if rec == nil || !rec.State.Final() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if rec.State != jobs.Failed || rec.Compensated {
		if err := r.store.Forget(ctx, rec.ID); err != nil {
			r.svc.logger.Warn("ferry: workflow run's steps not removed", slog.String("workflow", r.job.Name), slog.String("run", rec.ID),
				slog.String("err", err.Error()))
		}
	}
	if rec.Parent != "" {
		if err := wakeRun(ctx, r.svc.Client(), r.store, rec.Parent, "child "+rec.ID); err != nil {
			r.svc.logger.Warn("ferry: parent run not woken (it looks again when it next executes)", slog.String("workflow", r.job.Name),
				slog.String("run", rec.ID), slog.String("parent", rec.Parent), slog.String("err", err.Error()))
		}
	}
}

// wakeRun wakes the run with id if it waits for waiting ("" for any
// wait): its wake number moves on and a message carrying it is published.
// A run executing is marked to execute again when it suspends; a run
// queued, waiting for something else or for the retry of a failed
// execution is left alone (it finds what came when it gets there).
func wakeRun(ctx context.Context, c *Client, store *jobs.Store, id, waiting string) error {
	publish := false
	rec, err := store.Update(ctx, id, func(rec *jobs.Record) (time.Duration, error) {
		publish = false
		switch {
		case rec.State.Final(), rec.Requeued && rec.State != jobs.Running:
			return 0, jobs.ErrNoChange
		case rec.State == jobs.Running:
			if rec.WakePending {
				return 0, jobs.ErrNoChange
			}
			rec.WakePending = true
			return 0, nil
		case rec.State == jobs.Scheduled && (waiting == "" || rec.Waiting == waiting):
			rec.Wake++
			rec.State = jobs.Queued
			publish = true
			return 0, nil
		case rec.State == jobs.Queued && waiting != "" && rec.Waiting == waiting:
			// Woken for this, perhaps by a call whose publish did not
			// happen (its deadline ended after the record's write): the
			// wake is published again (a duplicate is dropped).
			publish = true
		}
		return 0, jobs.ErrNoChange
	})
	if err != nil || !publish {
		return err
	}
	js, err := c.jetStream()
	if err != nil {
		return err
	}
	// The record moved on: its wake is published even if the caller's
	// context ends now.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return publishWake(pctx, js, rec)
}

// publishWake publishes the message that wakes a run: at once for a
// queued run, as a message schedule at its time for a scheduled one (a
// schedule replaces the run's earlier one), none for a run that waits
// without a time. Publishing it twice is harmless: the second is dropped
// as a duplicate, or as stale once the run moved on.
func publishWake(ctx context.Context, js jetstream.JetStream, rec *jobs.Record) error {
	if rec.State == jobs.Scheduled && rec.RunAt.IsZero() {
		return nil
	}
	target := JobPriority(rec.Priority).subject(rec.Job)
	msg := nats.NewMsg(target)
	msg.Header.Set(naming.HeaderJobID, rec.ID)
	msg.Header.Set(naming.HeaderWorkflowWake, strconv.FormatUint(rec.Wake, 10))
	msg.Header.Set(naming.HeaderMsgID, rec.ID+".w"+strconv.FormatUint(rec.Wake, 10))
	if rec.Attempts > 1 {
		msg.Header.Set(naming.HeaderJobAttempts, strconv.Itoa(rec.Attempts-1)) // a wait is not an attempt
	}
	if rec.MaxAttempts > 0 {
		msg.Header.Set(naming.HeaderJobMaxAttempts, strconv.Itoa(rec.MaxAttempts))
	}
	if rec.Priority != "" {
		msg.Header.Set(naming.HeaderJobPriority, rec.Priority)
	}
	if rec.RequestID != "" {
		msg.Header.Set(HeaderRequestID, rec.RequestID)
	}
	if rec.Trace != "" {
		msg.Header.Set("Traceparent", rec.Trace)
	}
	opts := []jetstream.PublishOpt{jetstream.WithExpectStream(naming.JobStream(rec.Job))}
	if rec.State == jobs.Scheduled && rec.RunAt.After(time.Now()) {
		msg.Subject = naming.JobScheduleSubject(rec.Job, rec.ID)
		msg.Header.Del(naming.HeaderMsgID) // a schedule replaces the run's last one
		at := rec.RunAt.Truncate(time.Second)
		if at.Before(rec.RunAt) {
			at = at.Add(time.Second) // schedules count whole seconds: never early
		}
		opts = append(opts, jetstream.WithScheduleAt(at), jetstream.WithScheduleTarget(target))
	}
	_, err := js.PublishMsg(ctx, msg, opts...)
	return err
}

// resumeRun publishes the message that resumes a failed run.
func resumeRun(ctx context.Context, c *Client, id string) error {
	_, rec, err := getRun(ctx, c, id, "resume run")
	switch {
	case err != nil:
		return err
	case rec.State != jobs.Failed || rec.Compensated:
		detail := "run " + quoteID(id) + " is " + string(rec.State) + "; only a failed run can be resumed"
		if rec.Compensated {
			detail = "run " + quoteID(id) + " was compensated; it cannot be resumed"
		}
		return &Error{Status: http.StatusConflict, Code: "not_resumable", Detail: detail}
	}
	js, err := c.jetStream()
	if err != nil {
		return err
	}
	msg := nats.NewMsg(JobPriority(rec.Priority).subject(rec.Job))
	msg.Header.Set(naming.HeaderJobID, id)
	msg.Header.Set(naming.HeaderWorkflowWake, strconv.FormatUint(rec.Wake, 10))
	msg.Header.Set(naming.HeaderJobReplay, "resume")
	if rec.Trace != "" {
		msg.Header.Set("Traceparent", rec.Trace)
	}
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithExpectStream(naming.JobStream(rec.Job))); err != nil {
		return fmt.Errorf("ferry: resume run %s: %w", id, err)
	}
	return nil
}

// getRun reads the record of the workflow run with id, for the operation
// what: a 404 *Error when there is no such run.
func getRun(ctx context.Context, c *Client, id, what string) (*jobs.Store, *jobs.Record, error) {
	if !jobs.ValidID(id) {
		return nil, nil, errRunNotFound(id)
	}
	store, err := c.jobStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	rec, err := store.Get(ctx, id)
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		return nil, nil, errRunNotFound(id)
	case err != nil:
		return nil, nil, fmt.Errorf("ferry: %s %s: %w", what, id, err)
	case !rec.Workflow:
		return nil, nil, errRunNotFound(id)
	}
	return store, rec, nil
}
