package ferry

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/ferrygo/ferry/internal/jobs"
	"github.com/ferrygo/ferry/internal/naming"
)

// RetryJob runs a failed job, or workflow run, again and returns its
// record as it was before the retry. A job runs again from its dead
// letter, as [ReplayDeadLetter] does (its attempts start afresh); a
// workflow run resumes from its last completed step, as [Workflow.Resume]
// does. A job that did not fail, a run whose compensations ran, or a job
// whose dead letter was deleted cannot be retried: a 409 *[Error]
// ("not_retryable"; "not_resumable" for a run). A job that does not exist
// is a 404 *Error ("job_not_found").
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
		return out, resumeRun(ctx, c, id)
	}
	dl, err := jobDeadLetter(ctx, c, rec)
	if err != nil {
		return nil, err
	}
	if dl == nil {
		return nil, &Error{Status: http.StatusConflict, Code: "not_retryable",
			Detail: "job " + quoteID(id) + " failed, but its dead letter was deleted: enqueue it again"}
	}
	if _, err := ReplayDeadLetter(ctx, c, dl.Sequence); err != nil {
		return nil, err
	}
	return out, nil
}

// jobDeadLetter finds the dead letter of the failed job rec, or nil.
func jobDeadLetter(ctx context.Context, c *Client, rec *jobs.Record) (*DeadLetter, error) {
	filter := DeadLetterFilter{Topic: rec.Job, Consumer: naming.JobDeadLetterConsumer}
	for {
		page, err := ListDeadLetters(ctx, c, filter, deadLetterPage)
		if err != nil || len(page) == 0 {
			return nil, err
		}
		for i := range page {
			if page[i].Header.Get(naming.HeaderJobID) == rec.ID {
				return &page[i], nil
			}
		}
		filter.After = page[len(page)-1].Sequence
	}
}
