package ferry

import (
	"encoding/json"
	"reflect"
	"time"

	"github.com/ferrygo/ferry/internal/jobs"
	"github.com/ferrygo/ferry/internal/naming"
)

// Job declares a kind of durable background work as a value: a stable
// name, the input a caller enqueues and the output the handler returns.
// Declare it in the contract package of the service that runs it; callers
// import it to [Enqueue] jobs and read their records, and the worker
// service binds the handler with [HandleJob].
//
// A job is stored in JetStream before Enqueue returns and runs at least
// once on any replica of the worker service: a process that dies while
// running it leaves it to another replica after the ack wait. Its record
// (state, attempts, progress, result) is kept in the key-value bucket
// ferry-jobs, readable with [Job.Get] from any process.
type Job[In, Out any] struct {
	// Name is the job kind's stable name: ^[A-Za-z0-9_-]+$. It names the
	// stream (ferryjob-<Name>), the subjects and the metric label.
	Name string
	// Description documents the job kind.
	Description string

	// workflow marks the job kind of a [Workflow]'s runs.
	workflow bool
}

// check validates the declaration.
func (j Job[In, Out]) check() error { return naming.CheckJobName(j.Name) }

// docTopic is the job kind as the AsyncAPI document shows it: a channel
// "job-<name>" on its run subject, whose messages are its inputs.
func (j Job[In, Out]) docTopic() topicDecl {
	name := "job-" + j.Name
	if j.workflow {
		name = "workflow-" + j.Name
	}
	return topicDecl{name: name, subject: naming.JobRunSubject(j.Name), description: j.Description, payload: reflect.TypeFor[In]()}
}

// JobState is where a job is in its life; see the constants.
type JobState string

// The states of a job. A queued job waits for a worker; a scheduled one
// waits for its time (EnqueueAt, EnqueueDelay, or a retry's backoff of a
// minute or more). JobSucceeded, JobFailed and JobCancelled are final.
const (
	JobQueued    JobState = JobState(jobs.Queued)
	JobScheduled JobState = JobState(jobs.Scheduled)
	JobRunning   JobState = JobState(jobs.Running)
	JobSucceeded JobState = JobState(jobs.Succeeded)
	JobFailed    JobState = JobState(jobs.Failed)
	JobCancelled JobState = JobState(jobs.Cancelled)
)

// Final reports whether the job will not run again.
func (s JobState) Final() bool { return jobs.State(s).Final() }

// JobProgress is what a running job last reported with [Progress.Set].
type JobProgress struct {
	// Percent is from 0 to 100.
	Percent float64 `json:"percent" minimum:"0" maximum:"100"`
	// Message says what the job is doing.
	Message string `json:"message,omitempty"`
}

// JobRecord is a job's durable record, with its result typed Out. Read
// it with [Job.Get] (typed) or [GetJob] (the result as raw JSON).
type JobRecord[Out any] struct {
	// ID is the job's ID: 26 characters, unguessable.
	ID string `json:"id"`
	// Job is the job kind's name (the workflow's, for a run).
	Job string `json:"job"`
	// Workflow marks a workflow run ([Workflow]).
	Workflow bool `json:"workflow,omitempty"`
	// State is where the job is.
	State JobState `json:"state" enum:"queued,scheduled,running,succeeded,failed,cancelled"`
	// Attempts counts the handler's runs so far, this one included while
	// running; MaxAttempts is its limit (0 until the job first runs, when
	// it was enqueued without EnqueueMaxAttempts: the worker's applies).
	Attempts    int `json:"attempts"`
	MaxAttempts int `json:"max_attempts,omitempty"`
	// Priority is the job's priority: high, normal or low.
	Priority JobPriority `json:"priority" enum:"high,normal,low"`
	// LastError is what the last failed run's error answers a caller: a
	// Ferry *Error's detail, a generic line for any other error (whose
	// text goes only to the logs and the dead letter).
	LastError string `json:"last_error,omitempty"`
	// Progress is the last progress reported, if any.
	Progress *JobProgress `json:"progress,omitempty"`
	// Result is the handler's output once the job succeeded.
	Result *Out `json:"result,omitempty"`
	// Schedule names the schedule that started the job, for a periodic
	// job's run ([Periodic]).
	Schedule string `json:"schedule,omitempty"`
	// Waiting says what a waiting workflow run waits for: "sleep",
	// "signal NAME", "child ID" or "retry STEP" (its time in RunAt).
	Waiting string `json:"waiting,omitempty"`
	// Steps counts the steps a workflow run recorded, as of its last wait
	// or its end.
	Steps int `json:"steps,omitempty"`
	// CancelRequested: a cancel found the job running and cancelled its
	// handler's context; it ends cancelled, or succeeded if the handler
	// finished anyway.
	CancelRequested bool `json:"cancel_requested,omitempty"`
	// EnqueuedAt, RunAt (when it was scheduled for), StartedAt (its last
	// run's start), FinishedAt and UpdatedAt are in UTC.
	EnqueuedAt time.Time `json:"enqueued_at"`
	RunAt      time.Time `json:"run_at,omitzero"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// recordOf converts a stored record, decoding its result into Out.
func recordOf[Out any](r *jobs.Record) (*JobRecord[Out], error) {
	out := &JobRecord[Out]{
		ID: r.ID, Job: r.Job, State: JobState(r.State), Attempts: r.Attempts, MaxAttempts: r.MaxAttempts,
		Priority: JobPriority(r.Priority), LastError: r.LastError, CancelRequested: r.CancelRequested, Schedule: r.Schedule,
		Steps: r.Steps, Workflow: r.Workflow,
		EnqueuedAt: r.EnqueuedAt, RunAt: r.RunAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, UpdatedAt: r.UpdatedAt,
	}
	if out.Priority == "" {
		out.Priority = PriorityNormal
	}
	if r.State == jobs.Scheduled && !r.Requeued {
		out.Waiting = r.Waiting
	}
	if r.Progress != nil {
		out.Progress = &JobProgress{Percent: r.Progress.Percent, Message: r.Progress.Message}
	}
	if len(r.Result) > 0 {
		out.Result = new(Out)
		if err := json.Unmarshal(r.Result, out.Result); err != nil {
			return nil, err
		}
	}
	return out, nil
}
