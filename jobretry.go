package ferry

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/ferrygo/ferry/internal/jobs"
	"github.com/ferrygo/ferry/internal/naming"
)

// RetryJob runs a failed job, or workflow run, again and returns its
// record as it was before the retry. A job runs again from its dead
// letter, as [ReplayDeadLetter] does (its attempts start afresh); a
// workflow run resumes from its last completed step, as [Workflow.Resume]
// does, and its dead letter, if stored, is deleted (a replay of it would
// change nothing). A job that did not fail, a run whose compensations
// ran, or a job whose dead letter is gone (deleted, or replayed by
// someone else meanwhile) cannot be retried: a 409 *[Error]
// ("not_retryable"; "not_resumable" for a run). A job that does not
// exist is a 404 *Error ("job_not_found").
//
// Finding a job's dead letter reads the dead letters of its kind, oldest
// first: it costs one request per 256 of them.
func RetryJob(ctx context.Context, c *Client, id string) (*JobRecord[json.RawMessage], error) {
	rec, err := getJob(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if rec.State != jobs.Failed {
		return nil, &Error{Status: http.StatusConflict, Code: "not_retryable",
			Detail: "job " + quoteID(id) + " is " + string(rec.State) + "; only a failed job can be retried"}
	}
	out, err := recordOf[json.RawMessage](rec)
	if err != nil {
		return nil, err
	}
	if rec.Workflow {
		if err := resumeRun(ctx, c, id); err != nil {
			return nil, err
		}
		if dl, err := jobDeadLetter(ctx, c, rec, 0); err == nil && dl != nil {
			_ = DeleteDeadLetter(ctx, c, dl.Sequence) // best effort: replaying it would change nothing
		}
		return out, nil
	}
	dl, err := jobDeadLetter(ctx, c, rec, deadLetterWait)
	if err != nil {
		return nil, err
	}
	gone := &Error{Status: http.StatusConflict, Code: "not_retryable",
		Detail: "job " + quoteID(id) + " failed, but its dead letter is gone (deleted, or replayed meanwhile): see its record, or enqueue it again"}
	if dl == nil {
		return nil, gone
	}
	if _, err := ReplayDeadLetter(ctx, c, dl.Sequence); err != nil {
		if isNotFoundError(err) {
			return nil, gone
		}
		return nil, err
	}
	return out, nil
}

// deadLetterWait is how long RetryJob looks for the dead letter of a job
// whose record says failed: the record is written just before it.
const deadLetterWait = 2 * time.Second

// jobDeadLetter finds the dead letter of the failed job rec, or nil if
// none is stored within wait.
func jobDeadLetter(ctx context.Context, c *Client, rec *jobs.Record, wait time.Duration) (*DeadLetter, error) {
	deadline := time.Now().Add(wait)
	filter := DeadLetterFilter{Topic: rec.Job, Consumer: naming.JobDeadLetterConsumer}
	for {
		page, err := ListDeadLetters(ctx, c, filter, deadLetterPage)
		if err != nil {
			return nil, err
		}
		for i := range page {
			if page[i].Header.Get(naming.HeaderJobID) == rec.ID {
				return &page[i], nil
			}
		}
		if len(page) > 0 {
			filter.After = page[len(page)-1].Sequence
			continue
		}
		if time.Now().After(deadline) {
			return nil, nil
		}
		select { // the end of the dead letters: look again for one being stored
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
