package jobs

import "encoding/json"

// Run is what a workflow run's record holds beyond a job's: its input
// (read by every execution after the first), and what the run waits for
// while it is suspended. A suspended run is in state Scheduled; it runs
// again when a wake message carrying its current Wake number arrives —
// one made by a message schedule at its time, by a signal, or by a child
// run's end. A message carrying an older number is stale and dropped, so
// two wakes of one suspension never make two executions.
type Run struct {
	// Input is the run's input as JSON.
	Input json.RawMessage `json:"input,omitempty"`
	// Wake counts the run's suspensions: the number the next wake message
	// must carry.
	Wake uint64 `json:"wake,omitempty"`
	// Waiting says what the suspended run waits for ("sleep", "signal
	// NAME", "child ID", "retry STEP"), at step position WaitStep; RunAt
	// (the job's field) is its time, zero when it waits without one.
	Waiting  string `json:"waiting,omitempty"`
	WaitStep int    `json:"wait_step,omitempty"`
	// RetryAttempts counts, per step key, the failed attempts of the steps
	// that wait for their retry (several, in a fan-out).
	RetryAttempts map[string]int `json:"retry_attempts,omitempty"`
	// FailedStep is the key of the step whose error failed the run: the
	// one a resume runs again.
	FailedStep string `json:"failed_step,omitempty"`
	// Exec is the stream sequence of the message whose delivery executes
	// the run (while it is running): another message carrying the same wake
	// number is a duplicate, dropped.
	Exec uint64 `json:"exec,omitempty"`
	// WakePending is set by a wake that found the run executing: when the
	// execution suspends, it runs again at once instead.
	WakePending bool `json:"wake_pending,omitempty"`
	// Requeued is set while the run waits for the retry of an execution
	// that failed, not in a wait of its own: Waiting names its last wait,
	// which a wake of that name must not cut short.
	Requeued bool `json:"requeued,omitempty"`
	// Parent is the run that started this one as its child: it is woken
	// when this run ends.
	Parent string `json:"parent,omitempty"`
	// Compensated is set once the run's compensations began: such a run is
	// not resumed.
	Compensated bool `json:"compensated,omitempty"`
	// Steps counts the steps recorded by the run's last execution.
	Steps int `json:"steps,omitempty"`
	// Trace is the trace context the run started in: its wakes carry it,
	// so every execution of the run is in one trace.
	Trace string `json:"trace,omitempty"`
}
