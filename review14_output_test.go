package ferry_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// bigOutput is a job's output.
type bigOutput struct {
	Data string         `json:"data,omitempty"`
	Odd  map[[2]int]int `json:"odd,omitempty"` // a key type JSON cannot encode
}

// finding: a job whose output is too large for its record runs again and
// again. HandleJob encodes the output and writes it into the record; the
// broker refuses the write (its max payload), finish retries that write
// for 30s (recordWriteBudget) as if the store were unavailable, and the
// job, its end not recorded, is delivered again: the handler — its effects
// — runs once per attempt, each holding a slot for 30s, until the
// attempts run out. An output that can never be recorded is a permanent
// failure, like an output that does not encode.
func TestReview14OutputTooLargeForRecordRunsOnce(t *testing.T) {
	job := ferry.Job[orderIn, bigOutput]{Name: "r14-big-output"}
	var runs atomic.Int32
	var size int
	h := ferrytest.RunJobs(t, job, func(ctx context.Context, in *orderIn, p *ferry.Progress) (*bigOutput, error) {
		runs.Add(1)
		return &bigOutput{Data: strings.Repeat("x", size)}, nil
	})
	size = int(h.Client.Conn().MaxPayload()) + 1
	ctx := context.Background()
	id, err := job.Enqueue(ctx, h.Client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	var rec *ferry.JobRecord[bigOutput]
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if rec, err = job.Get(ctx, h.Client, id); err == nil && rec.State.Final() {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if rec == nil || !rec.State.Final() || runs.Load() != 1 {
		t.Fatalf("the job ran %d times and is %v 20s on; want once, failed", runs.Load(), rec)
	}
	if rec.State != ferry.JobFailed {
		t.Fatalf("the job ended %s", rec.State)
	}
}

// finding: the record of a job whose output does not encode says why in
// encoding/json's words, which name the Go types ("json: unsupported
// type: map[[2]int]int"): LastError is what callers read (GET, the 202's
// resources), and "never its internal text" (publicError) is the rule for
// every other failure.
func TestReview14OutputEncodingErrorHasNoGoTypes(t *testing.T) {
	job := ferry.Job[orderIn, bigOutput]{Name: "r14-odd-output"}
	h := ferrytest.RunJobs(t, job, func(ctx context.Context, in *orderIn, p *ferry.Progress) (*bigOutput, error) {
		return &bigOutput{Odd: map[[2]int]int{{1, 2}: 3}}, nil
	})
	id, err := job.Enqueue(context.Background(), h.Client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	rec := ferrytest.WaitJob(t, h, job, id)
	if rec.State != ferry.JobFailed || strings.Contains(rec.LastError, "map[") || strings.Contains(rec.LastError, "json:") {
		t.Fatalf("the job ended %s with last error %q", rec.State, rec.LastError)
	}
}
