package worker

import (
	"context"
	"errors"
)

// Overdue returns how many handlers are still running past their timeout:
// their context ended with context.DeadlineExceeded, yet they hold a slot
// (and so a share of the worker's concurrency) because they ignore it.
// Handlers cut off by a shutdown are not counted. Safe for concurrent use;
// it takes each slot's lock briefly.
func (w *Worker) Overdue() int {
	n := 0
	for i := range w.running {
		r := &w.running[i]
		r.mu.Lock()
		if r.msg != nil && errors.Is(r.ctx.Err(), context.DeadlineExceeded) {
			n++
		}
		r.mu.Unlock()
	}
	return n
}
