package ferry

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/ferrygo/ferry/internal/jobs"
)

// StartChild starts a run of wf as a child of the run executing ctx, and
// returns its ID. The child's ID is derived from the parent's and the
// step's position, and the start is a recorded step ("start NAME"): an
// execution of the parent after a crash does not start it twice. Await
// its result with [Await]; the parent is woken when the child ends.
func StartChild[In, Out any](ctx WorkflowContext, wf Workflow[In, Out], in *In, opts ...EnqueueOption) (string, error) {
	x := ctx.execution()
	if err := x.stopped(); err != nil {
		return "", err
	}
	pos, replaying := x.next()
	site := stepSite{key: jobs.StepKey(x.id, pos, -1), name: "start " + wf.Name, pos: pos, replaying: replaying}
	return runStep(x, ctx, site, defaultStepOptions(), func(ctx context.Context) (string, error) {
		id := childID(x.id, pos)
		if _, err := x.store.Get(ctx, id); err == nil {
			return id, nil // started by an execution that stopped before recording it
		}
		return wf.job().enqueue(ctx, x.client, in, opts, id, x.id)
	})
}

// awaitPoll is how often a run awaiting a run that is not its child
// looks at it.
const awaitPoll = time.Minute

// childID is the ID of the child run a parent starts at pos: a valid run
// ID, the same in every execution of the parent.
func childID(parent string, pos int) string {
	sum := sha256.Sum256([]byte(parent + "/" + strconv.Itoa(pos)))
	return jobs.EncodeID(sum[:16])
}

// Await waits durably for the run of wf with id to end and returns its
// result: the run is suspended, holding no worker slot, until the child
// ends (a child started with [StartChild] wakes its parent; any other run
// is looked at again every minute). Its end is recorded as a step ("await
// NAME"): an execution after a crash gets the same answer. A child that
// failed or was cancelled is a permanent *[Error] ("child_failed",
// "child_cancelled") with its error as detail.
func Await[In, Out any](ctx WorkflowContext, wf Workflow[In, Out], id string) (*Out, error) {
	x := ctx.execution()
	if err := x.stopped(); err != nil {
		return nil, err
	}
	pos, replaying := x.next()
	site := stepSite{key: jobs.StepKey(x.id, pos, -1), name: "await " + wf.Name, pos: pos, replaying: replaying}
	if replaying {
		st, err := x.store.GetStep(x.io, site.key)
		switch {
		case err == nil:
			return replayed[*Out](x, site, st)
		case !errors.Is(err, jobs.ErrNotFound):
			return nil, x.recordingError(site.key, err)
		}
		if err := x.unrecorded(site); err != nil {
			return nil, err
		}
	}
	x.goLive()
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	var rec *jobs.Record
	err := jobs.ErrNotFound
	if jobs.ValidID(id) {
		rec, err = x.store.Get(x.io, id)
	}
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		st := &jobs.Step{Name: site.name, Error: &jobs.StepError{Status: http.StatusNotFound, Code: "run_not_found", Detail: "no workflow run " + quoteID(id)}}
		got, err := recordWait(x, site, st)
		if err != nil {
			return nil, err
		}
		return nil, stepError(got.Error)
	case err != nil:
		return nil, x.recordingError(site.key, err)
	case !rec.State.Final():
		recheck := func(ctx context.Context) bool {
			r, err := x.store.Get(ctx, id)
			return err == nil && r.State.Final()
		}
		var at time.Time // a child wakes its parent when it ends
		if rec.Parent != x.id {
			at = time.Now().Add(awaitPoll)
		}
		return nil, x.suspend(pos, "child "+id, at, recheck)
	}
	st := &jobs.Step{Name: site.name}
	switch rec.State {
	case jobs.Succeeded:
		st.Result = rec.Result
		if len(st.Result) == 0 {
			st.Result = json.RawMessage("null")
		}
	case jobs.Cancelled:
		st.Error = &jobs.StepError{Status: http.StatusConflict, Code: "child_cancelled", Detail: "child run " + id + " was cancelled"}
	default:
		st.Error = &jobs.StepError{Status: http.StatusInternalServerError, Code: "child_failed", Detail: "child run " + id + " failed: " + rec.LastError}
	}
	got, err := x.store.RecordStep(x.io, site.key, st)
	if err != nil {
		return nil, x.recordingError(site.key, err)
	}
	return replayed[*Out](x, site, got)
}
