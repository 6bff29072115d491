package ferry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ferrygo/ferry/internal/jobs"
)

// Workflow declares a durable workflow as a value: a stable name, the
// input a run starts with and the output it ends with. Declare it in the
// contract package of the service that runs it; callers import it to
// [Workflow.Start] runs and read their records, and the worker service
// binds its function with [HandleWorkflow].
//
// A run is a job of the workflow's kind: it is stored before Start
// returns, runs on any replica of the worker service, and has a job's
// record (state, attempts, result, error, timestamps), listing, cancel
// and HTTP resources ([AcceptWorkflow]). What makes it a workflow is its
// function's recorded steps ([Step]): the function runs again after a
// crash, a wait or a retry, and every step that already completed returns
// its recorded result instead of running again. Its waits ([Sleep],
// [Receive], [Await]) hold no worker slot and survive every process being
// restarted. See docs/workflows.md.
//
// A workflow and a job kind share one name space: a workflow's name must
// not be a job kind's.
type Workflow[In, Out any] struct {
	// Name is the workflow's stable name: ^[A-Za-z0-9_-]+$. Runs in flight
	// are found by it: renaming a workflow strands them.
	Name string
	// Description documents the workflow.
	Description string
}

// job is the job kind of the workflow's runs.
func (w Workflow[In, Out]) job() Job[In, Out] {
	return Job[In, Out]{Name: w.Name, Description: w.Description, workflow: true}
}

// WorkflowFunc is a workflow's function: it gets a [WorkflowContext] and
// the run's input, and returns the run's output. It runs again from the
// start after a crash, a wait or a retry: everything it does that must
// not happen twice goes into a [Step], and the code between steps must
// take the same path from the same recorded results (no clock, no random
// numbers, no reads of changing state outside steps).
//
// An error it returns fails the run: the compensations of its completed
// steps run in reverse order ([StepWithCompensation]), and the run ends
// failed. A panic, or an error in recording its steps, runs it again after
// a backoff, up to the worker's maximum attempts ([JobMaxAttempts]).
type WorkflowFunc[In, Out any] func(ctx WorkflowContext, in *In) (*Out, error)

// WorkflowContext is the context of a workflow run's execution: a
// [context.Context] that [Step], [Sleep], [Receive] and the other
// workflow functions take. It is cancelled when the run is cancelled —
// once the execution replayed its recorded steps — or when the replica
// shuts down.
type WorkflowContext interface {
	context.Context
	// RunID returns the ID of the run.
	RunID() string
	// execution is the state of this execution.
	execution() *execution
}

// HandleWorkflow makes svc a worker of wf: each replica of svc executes up
// to [JobConcurrency] of its runs at once, through the service's middleware
// chain (the [Request]'s Kind is KindJob and its Name the workflow's
// name). A run waiting in a [Sleep], [Receive] or [Await] takes no slot.
// The job options apply to the runs: JobMaxAttempts bounds the executions
// that fail by panicking, JobTimeout bounds one execution, JobRetention
// keeps a finished run's record.
//
// HandleWorkflow panics, with a message prefixed "ferry:", as [HandleJob]
// does.
func HandleWorkflow[In, Out any](svc *Service, wf Workflow[In, Out], fn WorkflowFunc[In, Out], opts ...JobOption) {
	if fn == nil {
		panic(fmt.Sprintf("ferry: HandleWorkflow %s on service %s: nil function", wf.Name, svc.name))
	}
	HandleJob(svc, wf.job(), func(ctx context.Context, in *In, p *Progress) (*Out, error) {
		return executeRun(ctx, fn, in, p)
	}, opts...)
}

// Start stores a run of the workflow and returns its ID once the run is
// durably stored; a worker service that binds the workflow runs it. The
// enqueue options apply: [EnqueueKey] makes a retried start return the
// same run; EnqueueAt and EnqueueDelay start it later; EnqueuePriority
// orders it among runs waiting for a slot.
//
// An input that breaks In's schema is not stored: the error is a 422
// *[Error] ("invalid_job").
func (w Workflow[In, Out]) Start(ctx context.Context, c *Client, in *In, opts ...EnqueueOption) (string, error) {
	return w.job().Enqueue(ctx, c, in, opts...)
}

// Get returns the record of the run with id, its result typed Out: state,
// attempts, the step it waits in, the result or the error. A run of
// another workflow, or a job, is not found (a 404 *[Error]).
func (w Workflow[In, Out]) Get(ctx context.Context, c *Client, id string) (*JobRecord[Out], error) {
	return w.job().Get(ctx, c, id)
}

// Wait waits until the run with id has ended — succeeded, failed or
// cancelled — and returns its record; it returns ctx's error if ctx ends
// first.
func (w Workflow[In, Out]) Wait(ctx context.Context, c *Client, id string) (*JobRecord[Out], error) {
	return w.job().Wait(ctx, c, id)
}

// Cancel cancels the run with id: a run that is executing has its
// context cancelled at its next step (and the running step's context at
// once); a waiting run is woken. Either way the compensations of its
// completed steps run in reverse order before it ends cancelled. A run
// that failed keeping its steps for [Workflow.Resume] is discarded. It
// returns the record after the cancel.
func (w Workflow[In, Out]) Cancel(ctx context.Context, c *Client, id string) (*JobRecord[Out], error) {
	return w.job().Cancel(ctx, c, id)
}

// List is [Job.List] for the workflow's runs.
func (w Workflow[In, Out]) List(ctx context.Context, c *Client, filter JobFilter, limit int) ([]*JobRecord[Out], string, error) {
	filter.Job = w.Name
	return w.job().List(ctx, c, filter, limit)
}

// Resume runs a failed run again from its last completed step, after the
// cause of its failure was fixed: the step that failed runs again, the
// steps before it return their recorded results. A run whose
// compensations ran, or that did not fail, cannot be resumed (a 409
// *[Error] "not_resumable").
func (w Workflow[In, Out]) Resume(ctx context.Context, c *Client, id string) error {
	if _, err := w.Get(ctx, c, id); err != nil {
		return err
	}
	return resumeRun(ctx, c, id)
}

// Steps returns the steps the run with id recorded, in the order they
// ran, its compensations last. A finished run's steps are removed with
// its end (its record keeps their count), unless it failed and can be
// resumed.
func (w Workflow[In, Out]) Steps(ctx context.Context, c *Client, id string) ([]WorkflowStep, error) {
	if _, err := w.Get(ctx, c, id); err != nil {
		return nil, err
	}
	return runSteps(ctx, c, id)
}

// GetRunSteps is [Workflow.Steps] for a run of any workflow. An ID that is
// not a workflow run's is a 404 *[Error] ("run_not_found").
func GetRunSteps(ctx context.Context, c *Client, id string) ([]WorkflowStep, error) {
	if _, _, err := getRun(ctx, c, id, "steps of run"); err != nil {
		return nil, err
	}
	return runSteps(ctx, c, id)
}

func runSteps(ctx context.Context, c *Client, id string) ([]WorkflowStep, error) {
	store, err := c.jobStore(ctx)
	if err != nil {
		return nil, err
	}
	recorded, err := store.Steps(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("ferry: steps of run %s: %w", id, err)
	}
	steps := make([]WorkflowStep, 0, len(recorded))
	for _, st := range recorded {
		ws := WorkflowStep{Name: st.Name, Result: st.Result, Attempts: st.Attempts, At: st.At, Compensation: st.Key[0] == 'c'}
		if st.Error != nil {
			ws.Error = st.Error.Detail
			if ws.Error == "" {
				ws.Error = st.Error.Title
			}
		}
		steps = append(steps, ws)
	}
	return steps, nil
}

// WorkflowStep is one recorded step of a run ([Workflow.Steps]).
type WorkflowStep struct {
	// Name is the step's name ("sleep", "receive NAME", "start WORKFLOW"
	// and "await WORKFLOW" for the workflow functions' own steps).
	Name string `json:"name"`
	// Result is the step's result as JSON, unless it failed.
	Result json.RawMessage `json:"result,omitempty"`
	// Error is what the step's error answers a caller, if it failed.
	Error string `json:"error,omitempty"`
	// Compensation marks a compensation's record.
	Compensation bool `json:"compensation,omitempty"`
	// Attempts counts the step's runs; At is when it was recorded.
	Attempts int       `json:"attempts,omitempty"`
	At       time.Time `json:"at"`
}

// Wait waits until the job with id has ended — succeeded, failed or
// cancelled — and returns its record; it returns ctx's error if ctx ends
// first.
func (j Job[In, Out]) Wait(ctx context.Context, c *Client, id string) (*JobRecord[Out], error) {
	rec, err := j.Get(ctx, c, id)
	if err != nil || rec.State.Final() {
		return rec, err
	}
	store, err := c.jobStore(ctx)
	if err != nil {
		return nil, err
	}
	w, err := store.Watch(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("ferry: wait for job %s: %w", id, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("ferry: wait for job %s: the watch ended", id)
			}
			r, err := jobs.Decode(e)
			switch {
			case err != nil:
				return nil, err
			case r == nil && e != nil:
				return nil, errJobNotFound(id) // removed
			case r == nil || !r.State.Final():
				continue
			}
			return recordOf[Out](r)
		}
	}
}

// errWorkflowChanged is the cause of a run failed because its function no
// longer takes the path its recorded steps took.
var errWorkflowChanged = errors.New("workflow changed under a running run")
