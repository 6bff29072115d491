package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/ferrygo/ferry"
)

// Time limits of the actions.
const (
	actionTimeout    = 10 * time.Second
	replayAllTimeout = time.Minute
)

func (d *dashboard) replayDeadLetter(w http.ResponseWriter, r *http.Request) {
	seq, ok := sequence(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), actionTimeout)
	defer cancel()
	res, err := ferry.ReplayDeadLetter(ctx, d.c, seq)
	d.hub.invalidate()
	if err != nil {
		writeError(w, d.log, "replay", err)
		return
	}
	writeJSON(w, map[string]any{"replayed": seq, "message_id": res.ID})
}

func (d *dashboard) deleteDeadLetter(w http.ResponseWriter, r *http.Request) {
	seq, ok := sequence(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), actionTimeout)
	defer cancel()
	err := ferry.DeleteDeadLetter(ctx, d.c, seq)
	d.hub.invalidate()
	if err != nil {
		writeError(w, d.log, "delete", err)
		return
	}
	writeJSON(w, map[string]any{"deleted": seq})
}

func (d *dashboard) replayAll(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), replayAllTimeout)
	defer cancel()
	n, err := ferry.ReplayDeadLetters(ctx, d.c, ferry.DeadLetterFilter{}, nil)
	d.hub.invalidate()
	if err != nil {
		d.log.Error("dashboard: replay all", "replayed", n, "err", err)
		writeProblem(w, http.StatusInternalServerError, "replay_incomplete",
			strconv.Itoa(n)+" dead letters replayed; some could not be (they stay in the list): the dashboard's log says why")
		return
	}
	writeJSON(w, map[string]any{"replayed": n})
}

func (d *dashboard) cancelJob(w http.ResponseWriter, r *http.Request) {
	d.jobAction(w, r, "cancel", ferry.CancelJob)
}

func (d *dashboard) retryJob(w http.ResponseWriter, r *http.Request) {
	d.jobAction(w, r, "retry", ferry.RetryJob)
}

func (d *dashboard) jobAction(w http.ResponseWriter, r *http.Request, op string,
	do func(context.Context, *ferry.Client, string) (*ferry.JobRecord[json.RawMessage], error)) {
	id := r.PathValue("id")
	if !validID(id) {
		writeProblem(w, http.StatusNotFound, "job_not_found", "no such job")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), actionTimeout)
	defer cancel()
	rec, err := do(ctx, d.c, id)
	d.hub.invalidate()
	if err != nil {
		writeError(w, d.log, op, err)
		return
	}
	writeJSON(w, map[string]any{"id": rec.ID, "state": rec.State})
}

// sequence reads a dead letter's sequence from the path; a bad one is
// answered 404.
func sequence(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		writeProblem(w, http.StatusNotFound, "dead_letter_not_found", "no such dead letter")
		return 0, false
	}
	return seq, true
}

// validID accepts what a job ID may be: short, letters and digits,
// '-' and '_'.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
