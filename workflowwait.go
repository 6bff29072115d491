package ferry

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ferrygo/ferry/internal/jobs"
	"github.com/ferrygo/ferry/internal/naming"
)

// Sleep waits d durably: the first execution that reaches it records the
// wake time and suspends the run, which then holds no worker slot and no
// goroutine; the run executes again at the wake time on any replica, even
// after every process was restarted, and Sleep returns nil there. Its
// error, when not nil, must be returned by the workflow function: it is
// the suspension (or a cancel).
func Sleep(ctx WorkflowContext, d time.Duration) error {
	return sleepUntil(ctx, func(now time.Time) time.Time { return now.Add(d) })
}

// SleepUntil is [Sleep] until t.
func SleepUntil(ctx WorkflowContext, t time.Time) error {
	return sleepUntil(ctx, func(time.Time) time.Time { return t })
}

func sleepUntil(ctx WorkflowContext, wake func(now time.Time) time.Time) error {
	x := ctx.execution()
	if err := x.stopped(); err != nil {
		return err
	}
	pos, replaying := x.next()
	site := stepSite{key: jobs.StepKey(x.id, pos, -1), name: "sleep", pos: pos, replaying: replaying}
	if done, err := replayWait(x, site); done || err != nil {
		return err
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	at, ok := x.waitingFor(pos, "sleep")
	if !ok {
		at = wake(time.Now())
	}
	if time.Now().Before(at) {
		return x.suspend(pos, "sleep", at, nil)
	}
	_, err := recordWait(x, site, &jobs.Step{Name: "sleep"})
	return err
}

// replayWait reports whether a wait at site is recorded as done.
func replayWait(x *execution, site stepSite) (bool, error) {
	if !site.replaying {
		x.goLive()
		return false, nil
	}
	st, err := x.store.GetStep(x.io, site.key)
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		if err := x.unrecorded(site); err != nil {
			return false, err
		}
		x.goLive()
		return false, nil
	case err != nil:
		return false, x.recordingError(site.key, err)
	}
	_, err = replayed[json.RawMessage](x, site, st)
	return true, err
}

// recordWait records a wait's end.
func recordWait(x *execution, site stepSite, st *jobs.Step) (*jobs.Step, error) {
	got, err := x.store.RecordStep(x.io, site.key, st)
	if err != nil {
		return nil, x.recordingError(site.key, err)
	}
	if got.Name != site.name {
		return nil, x.mismatch(site.key, got.Name, site.name)
	}
	x.note()
	return got, nil
}

// ErrReceiveTimeout is the error of a [Receive] whose timeout passed
// before a signal came.
var ErrReceiveTimeout = errors.New("ferry: no signal came before the timeout")

// Receive waits durably for the next signal named name sent to the run
// ([Send]) and returns its value; signals of one name are received in the
// order they were sent, each once. The signal received is recorded: an
// execution after a crash receives the same one. While no signal is there
// the run is suspended, holding no worker slot, until one is sent or the
// timeout (0: none) passes; then Receive returns [ErrReceiveTimeout] (in
// every execution). Any other error must be returned by the workflow
// function: it is the suspension (or a cancel).
func Receive[T any](ctx WorkflowContext, name string, timeout time.Duration) (T, error) {
	var zero T
	x := ctx.execution()
	if err := x.stopped(); err != nil {
		return zero, err
	}
	if err := naming.CheckJobName(name); err != nil {
		return zero, Permanent(fmt.Errorf("ferry: receive: signal name %w", err))
	}
	pos, replaying := x.next()
	site := stepSite{key: jobs.StepKey(x.id, pos, -1), name: "receive " + name, pos: pos, replaying: replaying}
	if replaying {
		st, err := x.store.GetStep(x.io, site.key)
		switch {
		case err == nil:
			x.received(name, st.Signal)
			return receivedValue[T](x, site, st)
		case !errors.Is(err, jobs.ErrNotFound):
			return zero, x.recordingError(site.key, err)
		}
		if err := x.unrecorded(site); err != nil {
			return zero, err
		}
	}
	x.goLive()
	if ctx.Err() != nil {
		return zero, context.Cause(ctx)
	}
	after := x.received(name, 0)
	data, seq, err := x.store.NextSignal(x.io, x.id, name, after)
	for err == nil && json.Unmarshal(data, new(T)) != nil {
		// A signal whose value is not a T is skipped (the same in every
		// execution), not received: it would fail the run.
		x.logger.Warn("ferry: workflow signal skipped: its value does not decode", slog.String("workflow", x.workflow),
			slog.String("run", x.id), slog.String("signal", name), slog.String("type", fmt.Sprintf("%T", *new(T))))
		after = x.received(name, seq)
		data, seq, err = x.store.NextSignal(x.io, x.id, name, after)
	}
	switch {
	case err == nil:
		st, err := x.store.RecordStep(x.io, site.key, &jobs.Step{Name: site.name, Result: data, Signal: seq})
		if err != nil {
			return zero, x.recordingError(site.key, err)
		}
		x.received(name, st.Signal)
		return receivedValue[T](x, site, st)
	case !errors.Is(err, jobs.ErrNotFound):
		return zero, x.recordingError(site.key, err)
	}
	deadline, ok := x.waitingFor(pos, "signal "+name)
	if !ok && timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		if _, err := recordWait(x, site, &jobs.Step{Name: site.name, Error: &jobs.StepError{Status: http.StatusRequestTimeout,
			Code: "signal_timeout", Detail: "no signal " + name + " came before the timeout"}}); err != nil {
			return zero, err
		}
		return zero, ErrReceiveTimeout
	}
	recheck := func(ctx context.Context) bool {
		_, _, err := x.store.NextSignal(ctx, x.id, name, after)
		return err == nil
	}
	return zero, x.suspend(pos, "signal "+name, deadline, recheck)
}

// received notes the stream sequence of the last signal named name the
// run received (when seq is not 0) and returns it.
func (x *execution) received(name string, seq uint64) uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.lastSignal == nil {
		x.lastSignal = map[string]uint64{}
	}
	if seq > x.lastSignal[name] {
		x.lastSignal[name] = seq
	}
	return x.lastSignal[name]
}

// receivedValue decodes a recorded receive.
func receivedValue[T any](x *execution, site stepSite, st *jobs.Step) (T, error) {
	var zero T
	if st.Name != site.name {
		return zero, x.mismatch(site.key, st.Name, site.name)
	}
	x.note()
	if st.Error != nil {
		return zero, ErrReceiveTimeout
	}
	var v T
	if err := json.Unmarshal(st.Result, &v); err != nil {
		return zero, Permanent(fmt.Errorf("ferry: receive %s: the signal's value: %w", site.name, err))
	}
	return v, nil
}

// SendOption adjusts one [Send].
type SendOption func(*sendOptions)

type sendOptions struct{ key string }

// SendKey makes a Send idempotent: a signal sent again to the same run
// with the same name and key — a retry after an error or a lost reply —
// is stored once.
func SendKey(key string) SendOption { return func(o *sendOptions) { o.key = key } }

// Send sends the signal name with value (as JSON) to the workflow run
// with id, from any process: it is stored before Send returns, and the run
// receives it with [Receive] — at once if it is waiting for it, else when
// it gets there. A run that does not exist is a 404 *[Error]; one that
// ended, a 409 ("run_ended"). Any other error may have stored the signal
// or not: send with [SendKey] to retry safely.
func Send(ctx context.Context, c *Client, id, name string, value any, opts ...SendOption) error {
	var o sendOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if c == nil {
		return fmt.Errorf("ferry: send: %w", errNoClient)
	}
	if naming.CheckJobName(name) != nil {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_signal",
			Detail: "the signal name " + quoteID(name) + " must be 1 to 64 of A-Z, a-z, 0-9, _ and -"}
	}
	data, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("ferry: send %s: %w", name, err)
	}
	store, rec, err := getRun(ctx, c, id, "send "+name+" to run")
	switch {
	case err != nil:
		return err
	case rec.State.Final():
		return &Error{Status: http.StatusConflict, Code: "run_ended", Detail: "run " + quoteID(id) + " ended " + string(rec.State) + "; the signal was not sent"}
	}
	signal := jobs.NewID()
	if o.key != "" {
		sum := sha256.Sum256([]byte(o.key))
		signal = jobs.EncodeID(sum[:16])
	}
	if err := store.PutSignal(ctx, id, name, signal, data); err != nil {
		return fmt.Errorf("ferry: send %s to run %s: %w", name, id, err)
	}
	// The run may have ended, and removed its signals, since it was read:
	// then this one would never be received, nor removed.
	if rec, err := store.Get(ctx, id); err == nil && rec.State.Final() || errors.Is(err, jobs.ErrNotFound) {
		_ = store.DeleteSignal(ctx, id, name, signal)
		return &Error{Status: http.StatusConflict, Code: "run_ended", Detail: "run " + quoteID(id) + " ended; the signal was not sent"}
	}
	if err := wakeRun(ctx, c, store, id, "signal "+name); err != nil {
		return fmt.Errorf("ferry: send %s to run %s: the signal is stored, but the run was not woken (it receives it when it next executes): %w", name, id, err)
	}
	return nil
}

// errRunNotFound is the 404 of a workflow run that does not exist.
func errRunNotFound(id string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "run_not_found", Detail: "no workflow run " + quoteID(id)}
}
