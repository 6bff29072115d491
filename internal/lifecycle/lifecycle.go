// Package lifecycle runs the parts of a process as an ordered list of
// components: each is started in order and stopped in reverse, and a stop
// is bounded by the caller's deadline whatever the components' work does.
//
// A component's stop has three steps. StopIntake stops taking new work and
// returns at once. Drain waits for the work in flight until its context
// ends, then cancels what is left and returns without waiting for it (what
// it abandoned is its error). Close releases what the component holds. The
// stages of a Group are stopped one after another, so the components
// started first (the broker) serve the later ones (HTTP requests that call
// over the broker) until those have drained.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Component is one part of a process with a start and a bounded stop.
type Component interface {
	// Name names the component in logs and errors.
	Name() string
	// Start starts the component; ctx bounds the start, not the
	// component's life.
	Start(ctx context.Context) error
	// StopIntake stops taking new work. It does not block.
	StopIntake()
	// Drain waits for work in flight until ctx ends; then it cancels that
	// work and returns at once, with an error that says what was left.
	Drain(ctx context.Context) error
	// Close releases the component's resources. ctx bounds it.
	Close(ctx context.Context) error
}

// Funcs is a Component made of functions; nil functions do nothing.
type Funcs struct {
	ComponentName string
	OnStart       func(ctx context.Context) error
	OnStopIntake  func()
	OnDrain       func(ctx context.Context) error
	OnClose       func(ctx context.Context) error
}

var _ Component = Funcs{}

// Name implements Component.
func (f Funcs) Name() string { return f.ComponentName }

// Start implements Component.
func (f Funcs) Start(ctx context.Context) error {
	if f.OnStart == nil {
		return nil
	}
	return f.OnStart(ctx)
}

// StopIntake implements Component.
func (f Funcs) StopIntake() {
	if f.OnStopIntake != nil {
		f.OnStopIntake()
	}
}

// Drain implements Component.
func (f Funcs) Drain(ctx context.Context) error {
	if f.OnDrain == nil {
		return nil
	}
	return f.OnDrain(ctx)
}

// Close implements Component.
func (f Funcs) Close(ctx context.Context) error {
	if f.OnClose == nil {
		return nil
	}
	return f.OnClose(ctx)
}

// Group is an ordered list of stages, each a set of components: stages
// start in order (the components of a stage one after another) and stop
// in reverse (the components of a stage together). A Group is started and
// stopped once.
type Group struct {
	logger *slog.Logger

	mu      sync.Mutex
	stages  [][]Component
	started [][]Component // what Start started, for Stop
	stopped bool
}

// New returns an empty group that logs to logger.
func New(logger *slog.Logger) *Group {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Group{logger: logger}
}

// Add appends a stage of components (nil components are skipped).
func (g *Group) Add(stage ...Component) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var s []Component
	for _, c := range stage {
		if c != nil {
			s = append(s, c)
		}
	}
	if len(s) > 0 {
		g.stages = append(g.stages, s)
	}
}

// Start starts every component in order. If one fails, what was started
// is stopped at once (intake stopped, work cancelled, resources closed,
// bounded by closeTimeout) and the error returned names the component.
func (g *Group) Start(ctx context.Context) error {
	g.mu.Lock()
	stages := g.stages
	g.mu.Unlock()
	for _, stage := range stages {
		var started []Component
		for _, c := range stage {
			if err := c.Start(ctx); err != nil {
				g.record(append(started, c))
				stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
				defer cancel()
				expired, cancelExpired := context.WithCancel(stopCtx)
				cancelExpired() // drains end at once: nothing in flight is waited for
				return errors.Join(err, g.stop(expired, stopCtx))
			}
			started = append(started, c)
		}
		g.record(started)
	}
	return nil
}

// record appends a started stage.
func (g *Group) record(stage []Component) {
	g.mu.Lock()
	g.started = append(g.started, stage)
	g.mu.Unlock()
}

// closeTimeout bounds the closing steps (flushing a connection, stopping
// the embedded broker) once the drain deadline has passed.
const closeTimeout = 2 * time.Second

// Stop stops the started components in reverse order of their stages:
// intake, drain and close of a stage before the stage before it. Drains
// end when drainCtx ends; closes are bounded by closeCtx, which should end
// no earlier than drainCtx. Only the first call does the work.
func (g *Group) Stop(drainCtx, closeCtx context.Context) error {
	return g.stop(drainCtx, closeCtx)
}

func (g *Group) stop(drainCtx, closeCtx context.Context) error {
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return nil
	}
	g.stopped = true
	stages := g.started
	g.mu.Unlock()

	var errs []error
	for i := len(stages) - 1; i >= 0; i-- {
		stage := stages[i]
		for _, c := range stage {
			c.StopIntake()
		}
		stageErrs := make([]error, len(stage))
		var wg sync.WaitGroup
		for j, c := range stage {
			wg.Go(func() {
				if err := c.Drain(drainCtx); err != nil {
					stageErrs[j] = fmt.Errorf("%s: %w", c.Name(), err)
					g.logger.Warn("ferry: shutdown: "+c.Name()+": work abandoned", slog.String("err", err.Error()))
				}
			})
		}
		wg.Wait()
		for j, c := range stage {
			if err := c.Close(closeCtx); err != nil {
				stageErrs[j] = errors.Join(stageErrs[j], fmt.Errorf("%s: close: %w", c.Name(), err))
			}
		}
		errs = append(errs, stageErrs...)
	}
	return errors.Join(errs...)
}
