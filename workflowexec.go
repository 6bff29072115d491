package ferry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/ferrygo/ferry/internal/jobs"
	"github.com/ferrygo/ferry/internal/telemetry"
)

// execution is the state of one execution of a workflow run: the next
// step's position, whether recorded steps are still being replayed, the
// compensations registered, and the suspension that ends it early. The
// runner makes it (workflowrunner.go); the workflow functions use it
// through the WorkflowContext.
type execution struct {
	id          string // the run's ID
	workflow    string // the workflow's name
	service     string
	store       *jobs.Store
	client      *Client
	rec         *jobs.Record // the run's record as this execution began
	attempt     int          // this execution's attempt; maxAttempts its limit
	maxAttempts int
	logger      *slog.Logger
	observer    telemetry.Observer // nil without metrics and tracing
	progress    *Progress          // the run's record shows a long step's name

	// io bounds Ferry's own reads and writes: a cancel or a shutdown must
	// not cut the recording of a step that completed.
	io context.Context
	// outer ends with the execution's time or the replica's shutdown, not
	// with a cancel of the run: compensations stop with it.
	outer context.Context

	mu         sync.Mutex
	pos        int  // the next step's position
	replaying  bool // the steps at pos and after may be recorded
	live       bool // a step ran live: a cancel now reaches the function
	pending    error
	cancel     context.CancelCauseFunc // the function's context's
	release    func()                  // releases the function's context once the execution ended
	suspended  *suspension
	changed    error
	comps      []compensation
	lastSignal map[string]uint64
	recorded   int               // steps recorded or replayed
	stepErrors map[*Error]string // the errors steps returned, to their keys
}

// workflowContext is the WorkflowContext of an execution.
type workflowContext struct {
	context.Context
	x *execution
}

func (c workflowContext) RunID() string         { return c.x.id }
func (c workflowContext) execution() *execution { return c.x }

// executionKey carries the execution the runner made into the job
// handler that executes the workflow function.
type executionKey struct{}

// executeRun is a workflow's job handler: it executes the workflow
// function, and when the run fails for good, runs its compensations.
func executeRun[In, Out any](ctx context.Context, fn WorkflowFunc[In, Out], in *In, p *Progress) (*Out, error) {
	x, _ := ctx.Value(executionKey{}).(*execution)
	if x == nil {
		return nil, errors.New("ferry: a workflow ran outside its runner")
	}
	x.progress = p
	wctx := x.start(ctx)
	defer x.release()
	out, err := callWorkflow(wctx, fn, in, x)
	if s := x.suspension(); s != nil {
		return nil, s
	}
	if err == nil {
		return out, nil
	}
	if x.changed != nil {
		err = x.changed
	}
	cancelled := errors.Is(context.Cause(ctx), errJobCancelled)
	if !cancelled && ctx.Err() != nil {
		return nil, err // a shutdown or the execution's timeout: executed again
	}
	var retry *retryRun
	if !cancelled && errors.As(err, &retry) && x.attempt < x.maxAttempts {
		return nil, err
	}
	if cerr := x.compensate(ctx); cerr != nil {
		return nil, cerr
	}
	if cancelled {
		return nil, err
	}
	return nil, Permanent(err)
}

// retryRun is an execution's failure that executing the run again may
// fix: a panic, or a step that could not be recorded.
type retryRun struct{ err error }

func (r *retryRun) Error() string { return r.err.Error() }
func (r *retryRun) Unwrap() error { return r.err }

// callWorkflow calls the workflow function, turning a panic into a
// failure that runs it again.
func callWorkflow[In, Out any](ctx WorkflowContext, fn WorkflowFunc[In, Out], in *In, x *execution) (out *Out, err error) {
	defer func() {
		if v := recover(); v != nil {
			x.logger.ErrorContext(ctx, "ferry: workflow function panicked", slog.String("workflow", x.workflow),
				slog.String("run", x.id), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			err = &retryRun{&Error{Status: http.StatusInternalServerError, cause: fmt.Errorf("panic: %v", v)}}
		}
	}()
	return fn(ctx, in)
}

// start makes the function's context: a cancel or shutdown of the
// execution reaches it only once its recorded steps are replayed, so that
// every completed step's compensation is registered before the function
// can give up.
func (x *execution) start(ctx context.Context) WorkflowContext {
	fctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	x.release = func() { cancel(nil) }
	if dl, ok := ctx.Deadline(); ok {
		// The execution's time; its timer is released with the execution
		// (release), not when ctx ends: a cancel must wait for the replay.
		var c2 context.CancelFunc
		fctx, c2 = context.WithDeadline(fctx, dl)
		x.release = func() { c2(); cancel(nil) }
	}
	x.cancel = cancel
	context.AfterFunc(ctx, func() {
		x.mu.Lock()
		defer x.mu.Unlock()
		if x.live {
			cancel(context.Cause(ctx))
		} else {
			x.pending = context.Cause(ctx)
		}
	})
	return workflowContext{Context: fctx, x: x}
}

// next takes the next step position, and says whether a step may be
// recorded there.
func (x *execution) next() (pos int, replaying bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	pos = x.pos
	x.pos++
	return pos, x.replaying
}

// goLive notes that the steps from here on run live: a cancel or shutdown
// that arrived during the replay now reaches the function.
func (x *execution) goLive() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.replaying = false
	if !x.live {
		x.live = true
		if x.pending != nil {
			x.cancel(x.pending)
		}
	}
}

// stopped is the error a workflow function gets instead of running a new
// step: the run is suspended, or the workflow changed under it.
func (x *execution) stopped() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.changed != nil {
		return x.changed
	}
	if x.suspended != nil {
		return x.suspended
	}
	return nil
}

func (x *execution) suspension() *suspension {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.suspended
}

// suspend ends the execution: the run waits, at step position pos, for
// what waiting says, until at (zero: until woken). recheck, when set,
// reports whether what it waits for arrived while the run was recording
// its wait; the runner then wakes it at once.
func (x *execution) suspend(pos int, waiting string, at time.Time, recheck func(context.Context) bool) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.suspended == nil {
		x.suspended = &suspension{pos: pos, waiting: waiting, at: at, recheck: recheck}
	}
	return x.suspended
}

// retryLater suspends the run until at, for the retry of the step at
// site, which failed attempts times. The steps of a fan-out that wait for
// their retries share the suspension: each keeps its own count, and the
// run wakes at the earliest time.
func (x *execution) retryLater(site stepSite, at time.Time, attempts int) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	s := x.suspended
	if s == nil {
		s = &suspension{pos: site.pos, waiting: "retry " + site.name, at: at}
		x.suspended = s
	}
	if s.pos == site.pos && strings.HasPrefix(s.waiting, "retry ") {
		if s.retries == nil {
			s.retries = map[string]int{}
		}
		s.retries[site.key] = attempts
		if at.Before(s.at) {
			s.at = at
		}
	}
	return s
}

// retryAttempts is how many times the step at site failed before the run
// suspended for its retry; 0 when it did not.
func (x *execution) retryAttempts(site stepSite) int {
	if x.rec == nil || x.rec.Wake == 0 || x.rec.WaitStep != site.pos || !strings.HasPrefix(x.rec.Waiting, "retry ") {
		return 0
	}
	return x.rec.RetryAttempts[site.key]
}

// failedBy notes the step whose error a workflow function got: if the
// function returns it, that step failed the run, and a resume runs it
// again.
func (x *execution) failedBy(err *Error, key string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stepErrors == nil {
		x.stepErrors = map[*Error]string{}
	}
	x.stepErrors[err] = key
}

// failedStep is the key of the step whose error err is (or wraps), if any.
func (x *execution) failedStep(err error) string {
	var fe *Error
	if !errors.As(err, &fe) {
		return ""
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.stepErrors[fe]
}

// mismatch fails the run: the step at key is recorded under another name
// than the one the function now gives it.
func (x *execution) mismatch(key, recorded, name string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.changed == nil {
		x.changed = &Error{Status: http.StatusConflict, Code: "workflow_changed", Permanent: true,
			Detail: fmt.Sprintf("the workflow changed under run %s: its step %s is recorded as %q, the code now calls it %q",
				x.id, key[len("s."+x.id+"."):], recorded, name),
			cause: errWorkflowChanged}
	}
	return x.changed
}

// unrecorded checks a step the replay found unrecorded at site: a step
// of its own position that a fan-out ([Parallel]) recorded instead — its
// first step's key — means the code changed (steps and fan-outs are
// recorded under keys of different shapes, so the step's own key does not
// show it).
func (x *execution) unrecorded(site stepSite) error {
	if site.key != jobs.StepKey(x.id, site.pos, -1) {
		return nil // a fan-out's step, or a compensation
	}
	key := jobs.StepKey(x.id, site.pos, 0)
	st, err := x.store.GetStep(x.io, key)
	switch {
	case err == nil:
		return x.mismatch(site.key, st.Name, site.name)
	case !errors.Is(err, jobs.ErrNotFound):
		return x.recordingError(site.key, err)
	}
	return nil
}

// note counts a step recorded or replayed.
func (x *execution) note() {
	x.mu.Lock()
	x.recorded++
	x.mu.Unlock()
}

// maxResult is the largest step result that can be recorded: the
// broker's maximum payload, less room for the step's record around it.
func (x *execution) maxResult() int {
	limit := int64(1 << 20)
	if x.client != nil && x.client.nc != nil {
		if mp := x.client.nc.MaxPayload(); mp > 0 {
			limit = mp
		}
	}
	return int(max(limit-4096, 1024))
}

// recordedSteps counts the steps recorded or replayed.
func (x *execution) recordedSteps() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.recorded
}

// recordingError is the error of a step whose record could not be read
// or written: the execution fails and runs again.
func (x *execution) recordingError(key string, err error) error {
	return &retryRun{fmt.Errorf("ferry: workflow %s run %s: step %s not recorded: %w", x.workflow, x.id, key, err)}
}

// waitingFor reports the time the run recorded for its wait at pos, when
// its last suspension was that wait.
func (x *execution) waitingFor(pos int, waiting string) (time.Time, bool) {
	if x.rec == nil || x.rec.WaitStep != pos || x.rec.Waiting != waiting || x.rec.Wake == 0 {
		return time.Time{}, false
	}
	return x.rec.RunAt, true
}

// suspension is an execution's end because the run waits: the error the
// workflow functions return, which the runner turns into a wait.
type suspension struct {
	pos     int
	waiting string
	at      time.Time
	retries map[string]int // step key → failed attempts, for "retry" waits
	recheck func(context.Context) bool
}

func (s *suspension) Error() string {
	return "ferry: the workflow run waits (" + s.waiting + "); return this error from the workflow function"
}

// compensation is a completed step's undo, registered in step order.
type compensation struct {
	pos  int
	name string
	undo func(ctx context.Context) error
}

// register adds a completed step's compensation.
func (x *execution) register(c compensation) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.comps = append(x.comps, c)
}

// compensate runs the registered compensations in reverse step order,
// each a recorded step of its own: one that completed before is not run
// again. Their context is not cancelled by the run's cancel, only by a
// shutdown. A compensation that fails for good is recorded with its error
// and the others still run. It returns nil once each has completed or
// failed for good; its other errors (a suspension, a *retryRun) leave the
// rest to the run's next execution.
func (x *execution) compensate(ctx context.Context) error {
	x.mu.Lock()
	comps := append([]compensation(nil), x.comps...)
	x.mu.Unlock()
	if len(comps) == 0 {
		return nil
	}
	if !x.rec.Compensated {
		if _, err := x.store.Update(x.io, x.id, func(rec *jobs.Record) (time.Duration, error) {
			if rec.Compensated {
				return 0, jobs.ErrNoChange
			}
			rec.Compensated = true
			return 0, nil
		}); err != nil {
			return x.recordingError("compensations", err)
		}
	}
	outer := x.outer
	if outer == nil {
		outer = ctx
	}
	cctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	stop := context.AfterFunc(outer, func() { cancel(context.Cause(outer)) }) // a shutdown, or the time is up
	defer stop()
	var failed []error
	for i := len(comps) - 1; i >= 0; i-- {
		c := comps[i]
		_, err := runStep(x, cctx, stepSite{key: jobs.CompensationKey(x.id, c.pos), name: "compensate " + c.name, pos: c.pos, replaying: true},
			defaultStepOptions(), func(ctx context.Context) (struct{}, error) { return struct{}{}, c.undo(ctx) })
		if err == nil {
			continue
		}
		if s := x.suspension(); s != nil {
			return s
		}
		var retry *retryRun
		if errors.As(err, &retry) {
			return err
		}
		if cctx.Err() != nil {
			return &retryRun{err} // cut by a shutdown, not recorded: the run executes again and goes on from here
		}
		failed = append(failed, err)
	}
	if len(failed) > 0 {
		x.logger.Error("ferry: workflow compensation failed", slog.String("workflow", x.workflow), slog.String("run", x.id),
			slog.String("err", errors.Join(failed...).Error()))
	}
	return nil
}
