package ferry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/ferrygo/ferry/internal/jobs"
	"github.com/ferrygo/ferry/internal/telemetry"
)

// Defaults of a step's retry policy; each has a [StepOption].
const (
	DefaultStepMaxAttempts    = 5
	DefaultStepBackoffInitial = time.Second
	DefaultStepBackoffMax     = 5 * time.Minute
)

// stepShownAfter is how long a step runs before the run's record names
// it.
const stepShownAfter = time.Second

// stepWaitInProcess is the longest retry delay a step waits for in its
// execution; a longer one suspends the run, holding no slot.
const stepWaitInProcess = 2 * time.Second

// StepOption adjusts one step's retry policy.
type StepOption func(*stepOptions)

type stepOptions struct {
	maxAttempts            int
	backoffInit, backoffMx time.Duration
}

func defaultStepOptions() stepOptions {
	return stepOptions{maxAttempts: DefaultStepMaxAttempts, backoffInit: DefaultStepBackoffInitial, backoffMx: DefaultStepBackoffMax}
}

// StepMaxAttempts sets how many times the step's function may run before
// its last error ends the step (default 5; at least 1).
func StepMaxAttempts(n int) StepOption {
	return func(o *stepOptions) { o.maxAttempts = max(n, 1) }
}

// StepBackoff sets the delay before a failed step runs again: initial,
// doubling with each attempt up to max, with ±20% jitter (defaults 1s and
// 5m). A delay of more than 2s suspends the run until then, holding no
// worker slot.
func StepBackoff(initial, max time.Duration) StepOption {
	return func(o *stepOptions) {
		if initial > 0 && max >= initial {
			o.backoffInit, o.backoffMx = initial, max
		}
	}
}

func (o stepOptions) backoff(attempt int) time.Duration {
	d := o.backoffInit
	for i := 1; i < attempt && d < o.backoffMx; i++ {
		d *= 2
	}
	d = min(d, o.backoffMx)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Step runs fn as the step name of the workflow run, at most once to
// completion: fn's result — or the error that ended it — is recorded
// before Step returns, and an execution of the run that finds the step
// recorded returns what is recorded without running fn. A step's
// position and name are checked against the record: a function that no
// longer calls its steps in the recorded order fails the run (a 409
// *[Error] "workflow_changed") instead of mixing results.
//
// fn's error is retried by the step's policy ([StepMaxAttempts],
// [StepBackoff]) unless [IsPermanent] holds for it; the error that ends
// the step is returned as a permanent *[Error] (its status, code and
// detail kept; its text, logged, becomes the error's message), the same
// in every execution. T must survive a JSON round trip: a replayed step
// returns the decoded record.
//
// Effects of fn that crashed before its result was recorded happen again
// when the run executes again: make them idempotent, for example with an
// idempotency key derived from [StepKey].
//
// ctx is cancelled when the run is cancelled or the replica shuts down;
// fn must return then (its error is not recorded).
func Step[T any](ctx WorkflowContext, name string, fn func(ctx context.Context) (T, error), opts ...StepOption) (T, error) {
	x := ctx.execution()
	if err := x.stopped(); err != nil {
		var zero T
		return zero, err
	}
	pos, replaying := x.next()
	return runStep(x, ctx, stepSite{key: jobs.StepKey(x.id, pos, -1), name: name, pos: pos, replaying: replaying},
		stepOptionsOf(opts), fn)
}

// StepWithCompensation is [Step] with an undo: once the step completed,
// undo is registered with its result, and when the run fails for good or
// is cancelled, the registered undos run in reverse step order, each a
// recorded step of its own ("compensate NAME"), so that a crash during
// compensation neither skips nor repeats one. undo gets a context that a
// cancel does not cancel; its errors are retried like a step's.
func StepWithCompensation[T any](ctx WorkflowContext, name string, do func(ctx context.Context) (T, error),
	undo func(ctx context.Context, result T) error, opts ...StepOption) (T, error) {
	x := ctx.execution()
	if err := x.stopped(); err != nil {
		var zero T
		return zero, err
	}
	pos, replaying := x.next()
	v, err := runStep(x, ctx, stepSite{key: jobs.StepKey(x.id, pos, -1), name: name, pos: pos, replaying: replaying, compensable: true},
		stepOptionsOf(opts), do)
	if err == nil && undo != nil {
		x.register(compensation{pos: pos, name: name, undo: func(ctx context.Context) error { return undo(ctx, v) }})
	}
	return v, err
}

// MaxParallel bounds the steps of one [Parallel].
const MaxParallel = 10000

// parallelAtOnce bounds the steps of one Parallel that run at once.
const parallelAtOnce = 64

// Parallel runs n steps, fn(ctx, 0) to fn(ctx, n-1), named "NAME[i]", up
// to 64 at once, and returns their results in order when all have
// completed (a join); n is at most [MaxParallel]. Each is recorded like a [Step]: an execution after a crash
// runs only those not recorded. Its error is the first of the steps'
// errors by index.
func Parallel[T any](ctx WorkflowContext, name string, n int, fn func(ctx context.Context, i int) (T, error), opts ...StepOption) ([]T, error) {
	x := ctx.execution()
	if err := x.stopped(); err != nil {
		return nil, err
	}
	if n < 0 || n > MaxParallel {
		return nil, &Error{Status: http.StatusBadRequest, Code: "invalid_parallel", Permanent: true,
			Detail: fmt.Sprintf("Parallel %s of %d steps: n must be from 0 to %d", name, n, MaxParallel)}
	}
	pos, replaying := x.next()
	if replaying {
		// A step recorded at the fan-out's position: the code changed.
		key := jobs.StepKey(x.id, pos, -1)
		st, err := x.store.GetStep(x.io, key)
		switch {
		case err == nil:
			return nil, x.mismatch(key, st.Name, name)
		case !errors.Is(err, jobs.ErrNotFound):
			return nil, x.recordingError(key, err)
		}
	}
	o := stepOptionsOf(opts)
	results := make([]T, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	slots := make(chan struct{}, parallelAtOnce)
	for i := range n {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			defer func() {
				// A panic outside the step's function (its result's
				// decoding: an UnmarshalJSON with a bug) fails this
				// execution, as in the function's own goroutine, instead
				// of ending the process.
				if v := recover(); v != nil {
					x.logger.Error("ferry: workflow step panicked", slog.String("workflow", x.workflow), slog.String("run", x.id),
						slog.String("step", name+"["+strconv.Itoa(i)+"]"), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
					errs[i] = &retryRun{&Error{Status: http.StatusInternalServerError, cause: fmt.Errorf("panic: %v", v)}}
				}
			}()
			site := stepSite{key: jobs.StepKey(x.id, pos, i), name: name + "[" + strconv.Itoa(i) + "]", pos: pos, replaying: replaying}
			results[i], errs[i] = runStep(x, ctx, site, o, func(ctx context.Context) (T, error) { return fn(ctx, i) })
		})
	}
	wg.Wait()
	if err := x.stopped(); err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return results, err
		}
	}
	return results, nil
}

// StepKey returns a key unique to the step running in ctx and stable
// across its retries and the run's executions: an idempotency key for the
// step's effects ("<run ID>-<position>"; a compensation's differs from its
// step's). Outside a step it returns "".
func StepKey(ctx context.Context) string {
	k, _ := ctx.Value(stepKeyKey{}).(string)
	return k
}

type stepKeyKey struct{}

// stepIdempotencyKey is StepKey's value for the step recorded under key:
// "<run>-<position>" for a step, "<run>-<position>.<i>" for a fan-out's,
// "<run>-c<position>" for a compensation.
func stepIdempotencyKey(run, key string) string {
	rest := key[len("s."+run+"."):]
	if key[0] == 'c' {
		rest = "c" + rest
	}
	return run + "-" + rest
}

func stepOptionsOf(opts []StepOption) stepOptions {
	o := defaultStepOptions()
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// stepSite is where a step is recorded: its key and name, its position,
// and whether a record may be there already.
type stepSite struct {
	key         string
	name        string
	pos         int
	replaying   bool
	compensable bool
}

// runStep returns the step's recorded result, or runs fn — again after a
// failure, as o allows — and records how it ended.
func runStep[T any](x *execution, ctx context.Context, site stepSite, o stepOptions, fn func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	if site.replaying {
		st, err := x.store.GetStep(x.io, site.key)
		switch {
		case err == nil:
			return replayed[T](x, site, st)
		case !errors.Is(err, jobs.ErrNotFound):
			return zero, x.recordingError(site.key, err)
		}
		if err := x.unrecorded(site); err != nil {
			return zero, err
		}
	}
	x.goLive()
	if ctx.Err() != nil {
		return zero, context.Cause(ctx) // cancelled at the step boundary
	}
	attempt := x.retryAttempts(site) + 1
	sctx := context.WithValue(ctx, stepKeyKey{}, stepIdempotencyKey(x.id, site.key))
	if x.progress != nil {
		// A step that runs for a while is named in the run's record
		// (progress); a quick one costs no write.
		shown := time.AfterFunc(stepShownAfter, func() { x.progress.Set(0, "step "+site.name) })
		defer func() {
			if !shown.Stop() {
				x.progress.Set(0, "step "+site.name+" done")
			}
		}()
	}
	for {
		data, err := observeStep(x, sctx, site.name, attempt, func(ctx context.Context) (json.RawMessage, error) {
			return callStep(ctx, fn, x.maxResult())
		})
		var st *jobs.Step
		switch {
		case err == nil:
			st = &jobs.Step{Name: site.name, Result: data, Attempts: attempt, Compensable: site.compensable}
		case ctx.Err() != nil:
			return zero, err // cut off by a cancel or a shutdown: not recorded
		}
		if st == nil && !IsPermanent(err) && attempt < o.maxAttempts {
			delay := o.backoff(attempt)
			if delay > stepWaitInProcess {
				return zero, x.retryLater(site, time.Now().Add(delay), attempt)
			}
			select {
			case <-time.After(delay):
				attempt++
				continue
			case <-ctx.Done():
				return zero, err
			}
		}
		if st == nil {
			fe := errorFrom(err)
			st = &jobs.Step{Name: site.name, Attempts: attempt, Error: &jobs.StepError{Status: fe.GetStatus(), Code: fe.code(),
				Title: fe.Title, Detail: fe.Detail, Message: truncate(describe(err), 2000)}}
		}
		got, rerr := x.store.RecordStep(x.io, site.key, st)
		if rerr != nil {
			return zero, x.recordingError(site.key, rerr)
		}
		return replayed[T](x, site, got)
	}
}

// replayed returns what a step's record says: its result, or its error.
func replayed[T any](x *execution, site stepSite, st *jobs.Step) (T, error) {
	var zero T
	if st.Name != site.name {
		return zero, x.mismatch(site.key, st.Name, site.name)
	}
	x.note()
	if st.Error != nil {
		err := stepError(st.Error)
		x.failedBy(err, site.key)
		return zero, err
	}
	var v T
	if len(st.Result) > 0 {
		if err := json.Unmarshal(st.Result, &v); err != nil {
			// The step's result type changed under the run: the decoder's
			// text (Go type names) goes to the logs, not to the record.
			x.logger.Warn("ferry: workflow step's recorded result does not decode", slog.String("workflow", x.workflow),
				slog.String("run", x.id), slog.String("step", site.name), slog.String("err", err.Error()))
			return zero, x.mismatch(site.key, st.Name+" (a result of another type)", site.name)
		}
	}
	return v, nil
}

// stepError is the error a failed step returns: the same from its record
// as when it failed.
func stepError(e *jobs.StepError) *Error {
	return &Error{Status: e.Status, Code: e.Code, Title: e.Title, Detail: e.Detail, Permanent: true, cause: errors.New(e.Message)}
}

// callStep calls a step's function and encodes its result, turning a
// panic in either into its error; a result larger than max bytes is a
// permanent error (it could never be recorded).
func callStep[T any](ctx context.Context, fn func(ctx context.Context) (T, error), max int) (data json.RawMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			data, err = nil, &Error{Status: http.StatusInternalServerError, cause: fmt.Errorf("panic: %v\n%s", p, debug.Stack())}
		}
	}()
	v, err := fn(ctx)
	if err != nil {
		return nil, err
	}
	if data, err = json.Marshal(v); err != nil {
		return nil, Permanent(fmt.Errorf("the step's result: %w", err))
	}
	if len(data) > max {
		return nil, &Error{Status: http.StatusInternalServerError, Code: "step_result_too_large", Permanent: true,
			Detail: fmt.Sprintf("the step's result is %d bytes; at most %d can be recorded", len(data), max)}
	}
	return data, nil
}

// observeStep runs one attempt of a step under the service's observers:
// a span in the run's trace, and the step metrics.
func observeStep[T any](x *execution, ctx context.Context, name string, attempt int, fn func(context.Context) (T, error)) (T, error) {
	if x.observer == nil {
		return fn(ctx)
	}
	o := &telemetry.Outcome{Kind: telemetry.KindStep, Service: x.service, Name: x.workflow, Route: name, Topic: x.workflow,
		Transport: TransportNATS, EventID: x.id, Start: time.Now(), Attempt: uint64(attempt)}
	octx := x.observer.Begin(ctx, o)
	v, err := fn(octx)
	o.Duration = time.Since(o.Start)
	o.Result = telemetry.Handled
	if err != nil {
		fe := errorFrom(err)
		o.Result, o.Status, o.Code = telemetry.Retried, fe.GetStatus(), fe.code()
	}
	x.observer.End(octx, o)
	if err != nil {
		x.logger.Warn("ferry: workflow step failed", slog.String("workflow", x.workflow), slog.String("run", x.id),
			slog.String("step", name), slog.Int("attempt", attempt), slog.String("err", describe(err)))
	}
	return v, err
}
