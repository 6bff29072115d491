package ferry_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// fragileResult is a step result whose decoding panics (an UnmarshalJSON
// with a bug); it encodes as any value does.
type fragileResult struct{ N int }

func (f *fragileResult) UnmarshalJSON([]byte) error { panic("fragileResult.UnmarshalJSON") }

// finding: a panic while a Parallel step's recorded result is decoded
// ends the process. runStep returns every step's result through replayed,
// which decodes the record — after a live step too — with json.Unmarshal
// outside any recover, and Parallel runs runStep in goroutines of its own
// (wg.Go). The encoding side was guarded (callStep); the decoding side,
// named in the same earlier finding, was not. In a Step the same panic is
// recovered (the function's goroutine); in Parallel it kills the replica,
// and every replica that takes the run after it.
//
// The scenario runs in a child process (the panic would end this one).
func TestReview14ParallelDecodePanicDoesNotEndProcess(t *testing.T) {
	if os.Getenv("REVIEW14_DECODE_CHILD") == "1" {
		parallelDecodePanicChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReview14ParallelDecodePanicDoesNotEndProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "REVIEW14_DECODE_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		tail := string(out)
		if i := strings.Index(tail, "panic: fragileResult"); i >= 0 {
			tail = tail[i:min(len(tail), i+600)]
		} else if len(tail) > 1500 {
			tail = tail[len(tail)-1500:]
		}
		t.Fatalf("the process running the workflow died: %v\n%s", err, tail)
	}
}

func parallelDecodePanicChild(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r14-parallel-decode"}
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		_, err := ferry.Parallel(ctx, "part", 2, func(context.Context, int) (fragileResult, error) { return fragileResult{N: 1}, nil })
		return &orderOut{}, err
	}, ferry.JobMaxAttempts(1))
	id, err := wf.Start(context.Background(), h.Client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	if rec := ferrytest.WaitRun(t, h, wf, id); rec.State != ferry.JobFailed {
		t.Fatalf("record %+v", rec)
	}
}
