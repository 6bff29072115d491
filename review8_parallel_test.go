package ferry_test

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// boomResult is a step result whose encoding panics (a MarshalJSON with a
// bug: a nil map, an index out of range).
type boomResult struct{}

func (boomResult) MarshalJSON() ([]byte, error) { panic("boomResult.MarshalJSON") }

// finding: a panic while a Parallel step's result is encoded (or a
// replayed one decoded: an UnmarshalJSON that panics) ends the process.
// runStep calls json.Marshal(v) outside callStep's recover, and Parallel
// runs runStep in goroutines of its own (wg.Go), where neither
// callWorkflow's nor the job runner's recover reaches. In a Step the
// same panic is recovered (it is on the function's goroutine); in
// Parallel it kills the replica, and every replica that takes the run
// after it. STYLE.md: "A panic in a handler is recovered".
//
// The scenario runs in a child process (the panic would end this one).
func TestReview8ParallelPanicDoesNotEndProcess(t *testing.T) {
	if os.Getenv("REVIEW8_PARALLEL_CHILD") == "1" {
		parallelPanicChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReview8ParallelPanicDoesNotEndProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "REVIEW8_PARALLEL_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		tail := string(out)
		if i := strings.Index(tail, "panic: boomResult"); i >= 0 {
			tail = tail[i:min(len(tail), i+600)]
		} else if len(tail) > 1500 {
			tail = tail[len(tail)-1500:]
		}
		t.Fatalf("the process running the workflow died: %v\n%s", err, tail)
	}
}

func parallelPanicChild(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r8-parallel-panic"}
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		_, err := ferry.Parallel(ctx, "part", 2, func(context.Context, int) (boomResult, error) { return boomResult{}, nil },
			ferry.StepMaxAttempts(1)) // a panic is retried like any error: fail at once here
		return &orderOut{}, err
	}, ferry.JobMaxAttempts(1))
	id, err := wf.Start(context.Background(), h.Client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	rec := ferrytest.WaitRun(t, h, wf, id)
	if rec.State != ferry.JobFailed {
		t.Fatalf("record %+v", rec)
	}
}

// finding (fixed): Parallel started one goroutine per step, all at once,
// with no bound. Now at most 64 run at once.
func TestReview8ParallelIsBounded(t *testing.T) {
	const n = 5000
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r8-parallel-wide"}
	var peak atomic.Int64
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		_, err := ferry.Parallel(ctx, "part", n, func(_ context.Context, i int) (int, error) {
			if g := int64(runtime.NumGoroutine()); g > peak.Load() {
				peak.Store(g)
			}
			return i, nil
		})
		if err != nil {
			return nil, err
		}
		return &orderOut{}, nil
	})
	id, err := wf.Start(context.Background(), h.Client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rec, err := wf.Wait(ctx, h.Client, id)
	if err != nil || rec.State != ferry.JobSucceeded || rec.Steps != n {
		t.Fatalf("record %+v, %v", rec, err)
	}
	if g := peak.Load(); g > 1000 {
		t.Errorf("%d goroutines alive during one Parallel of %d steps: no bound", g, n)
	}
}
