package ferry

import (
	"fmt"

	"github.com/ferrygo/ferry/internal/naming"
)

// JobPriority is the priority of a job: [PriorityHigh], [PriorityNormal]
// (the default) or [PriorityLow].
//
// JetStream has no per-message priority, so each priority is a lane of its
// own: a subject in the job kind's stream, a durable consumer, and worker
// slots reserved for it on every replica (see [JobConcurrency]). A flood of
// jobs at one priority therefore never delays jobs at another — no lane
// can starve — and high-priority jobs never wait behind a backlog of
// normal ones.
type JobPriority string

// The priorities.
const (
	PriorityHigh   JobPriority = "high"
	PriorityNormal JobPriority = "normal"
	PriorityLow    JobPriority = "low"
)

// priorities are the lanes, in the order workers start them.
var priorities = []JobPriority{PriorityHigh, PriorityNormal, PriorityLow}

// check validates p; "" is normal.
func (p JobPriority) check() error {
	switch p {
	case "", PriorityHigh, PriorityNormal, PriorityLow:
		return nil
	}
	return fmt.Errorf("priority %q: must be %q, %q or %q", string(p), PriorityHigh, PriorityNormal, PriorityLow)
}

// subject is the lane's run subject; an unknown priority (a message's
// header not written by Enqueue) is normal's, the lane that runs it, not
// a subject in the stream that no lane consumes.
func (p JobPriority) subject(job string) string {
	if p.check() != nil || p == "" || p == PriorityNormal {
		return naming.JobRunSubject(job)
	}
	return naming.JobRunSubject(job) + "." + string(p)
}

// durable is the lane's durable consumer.
func (p JobPriority) durable() string {
	if p == "" || p == PriorityNormal {
		return naming.JobConsumer
	}
	return naming.JobConsumer + "-" + string(p)
}

// concurrency is the lane's share of the worker's slots: high and normal
// each get all of them, low a quarter (at least one).
func (p JobPriority) concurrency(n int) int {
	if p == PriorityLow {
		return max(1, n/4)
	}
	return n
}

// EnqueuePriority sets the job's priority (default [PriorityNormal]).
func EnqueuePriority(p JobPriority) EnqueueOption {
	return func(o *enqueueOptions) { o.priority = p }
}
