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

type r9Secret struct {
	InternalLedgerID int `json:"ledger"`
}

// finding: a step result that no longer decodes fails the run with 409
// workflow_changed whose detail — the record's last_error, what GET
// /runs/{id} answers a caller — carries the JSON decoder's text: Go type
// and field names of the service's internals ("Go struct field
// r9Secret.ledger of type string"). The record is to keep "the error a
// caller may see"; the decoder's text belongs in the logs.
func TestReview9WorkflowChangedDetailHasNoGoTypes(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r9-changed-leak"}
	var deployed atomic.Int32 // 0: the old code, 1: the new one
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		if deployed.Load() == 0 {
			if _, err := ferry.Step(ctx, "ledger", func(context.Context) (int, error) { return 7, nil }); err != nil {
				return nil, err
			}
		} else {
			if _, err := ferry.Step(ctx, "ledger", func(context.Context) (r9Secret, error) { return r9Secret{}, nil }); err != nil {
				return nil, err
			}
		}
		deployed.Store(1)
		if err := ferry.Sleep(ctx, time.Second); err != nil {
			return nil, err
		}
		return &orderOut{}, nil
	})
	ctx := context.Background()
	id, err := wf.Start(ctx, h.Client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	rec := ferrytest.WaitRun(t, h, wf, id)
	if rec.State != ferry.JobFailed {
		t.Fatalf("record %+v", rec)
	}
	if strings.Contains(rec.LastError, "Go ") || strings.Contains(rec.LastError, "r9Secret") {
		t.Fatalf("the record's last_error carries the decoder's internals: %q", rec.LastError)
	}
}
