package main

import (
	"context"
	"fmt"
	"time"
)

// injected is a fault as it happened.
type injected struct {
	fault
	// UnderLoad: the driver was still issuing operations at the kill,
	// at Killed.
	UnderLoad bool
	Killed    time.Time
	// Restarted is when the process answered /readyz again.
	Restarted time.Time
	// Ready is how long the process took to answer /readyz again once
	// started.
	Ready time.Duration
}

// controller kills and restarts the system's processes as the plan says,
// one fault at a time, so that a process is never started while another
// is down (a service started while the broker's process is down would
// take the data directory and hold the broker itself).
type controller struct {
	procs map[string]*proc
	logf  func(format string, args ...any)
}

// run injects faults in order: each once acked() reaches its At, or at
// once after driverDone closes. It returns when every fault was injected
// and its process is ready again, or at the first process that does not
// come back.
func (c *controller) run(ctx context.Context, faults []fault, acked func() int64, driverDone <-chan struct{}) ([]injected, error) {
	var out []injected
	for _, f := range faults {
		underLoad := true
	wait:
		for acked() < int64(f.At) {
			select {
			case <-ctx.Done():
				return out, ctx.Err()
			case <-driverDone:
				underLoad = false
				break wait
			case <-time.After(20 * time.Millisecond):
			}
		}
		p := c.procs[f.Target]
		c.logf("fault %d/%d: SIGKILL %s at %d acknowledged, down for %v", len(out)+1, len(faults), f.Target, acked(), f.Down.Round(time.Millisecond))
		killed := time.Now()
		p.kill()
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-time.After(f.Down):
		}
		start := time.Now()
		if err := p.start(ctx); err != nil {
			return out, fmt.Errorf("restart %s after fault %d: %w", f.Target, len(out)+1, err)
		}
		out = append(out, injected{fault: f, UnderLoad: underLoad, Killed: killed, Ready: time.Since(start), Restarted: time.Now()})
	}
	return out, nil
}
