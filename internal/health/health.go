// Package health is a process's health registry: components register
// named checks, and the registry answers whether the process is alive and
// whether it is ready to take work — every check passes and it is not
// draining. A check is a function read at the time of the question, so it
// reports the component's state as it is (a broker connection that is
// reconnecting, a subscription that cannot create its consumer), not as it
// last reported it.
package health

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// Check reports a component's readiness: nil when ready.
type Check func() error

// Registry holds the checks of one process. The zero value is ready to
// use. It is safe for concurrent use.
type Registry struct {
	mu       sync.Mutex
	checks   map[string]Check
	draining atomic.Bool
}

// Add registers check under name, replacing one of the same name.
func (r *Registry) Add(name string, check Check) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.checks == nil {
		r.checks = map[string]Check{}
	}
	r.checks[name] = check
}

// Remove removes the check named name.
func (r *Registry) Remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.checks, name)
}

// SetDraining marks the process as draining: no longer ready, whatever
// the checks say.
func (r *Registry) SetDraining() { r.draining.Store(true) }

// ErrDraining is the readiness error of a draining process.
var ErrDraining = errors.New("draining: shutting down")

// Problem is one failing check.
type Problem struct {
	Check string `json:"check"`
	Error string `json:"error"`
}

// Ready runs every check and returns the failing ones, sorted by name;
// none when the process is ready. A draining process fails with
// ErrDraining under the check "shutdown".
func (r *Registry) Ready() []Problem {
	var out []Problem
	if r.draining.Load() {
		out = append(out, Problem{Check: "shutdown", Error: ErrDraining.Error()})
	}
	r.mu.Lock()
	checks := make(map[string]Check, len(r.checks))
	for n, c := range r.checks {
		checks[n] = c
	}
	r.mu.Unlock()
	for name, check := range checks {
		if err := safe(check); err != nil {
			out = append(out, Problem{Check: name, Error: err.Error()})
		}
	}
	slices.SortFunc(out, func(a, b Problem) int {
		switch {
		case a.Check < b.Check:
			return -1
		case a.Check > b.Check:
			return 1
		}
		return 0
	})
	return out
}

// safe runs a check, turning a panic into its error.
func safe(check Check) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("check panicked: %v", v)
		}
	}()
	return check()
}
