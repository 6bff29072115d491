package ferry_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestForgedJobTimeoutIsIgnored: a Ferry-Job-Timeout too long for a
// time.Duration (published by hand: Enqueue never writes one) counts as
// none, instead of wrapping around to a few microseconds that fail every
// run (found by FuzzJobMessage).
func TestForgedJobTimeoutIsIgnored(t *testing.T) {
	var short atomic.Int32
	h := ferrytest.RunJobs(t, reportJob, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) < time.Minute {
			short.Add(1)
			return nil, ferry.Permanent(errors.New("a run with a deadline of less than a minute"))
		}
		return &RenderedReport{URL: "ok"}, nil
	}, ferry.JobTimeout(time.Hour))
	warm, err := reportJob.Enqueue(context.Background(), h.Client, &ReportRequest{Name: "warm-up"}) // makes the stream
	if err != nil {
		t.Fatal(err)
	}
	ferrytest.WaitJob(t, h, reportJob, warm)
	id := "forgedtimeoutabcdefghijklm"
	msg := nats.NewMsg("ferry.job.report.run")
	msg.Header.Set("Ferry-Job-Id", id)
	msg.Header.Set("Ferry-Job-Timeout", "18446744073710") // ms: × 1e6 wraps around to 448µs
	msg.Data = []byte(`{"name":"by hand"}`)
	publishJobMessage(t, h, msg)
	rec := ferrytest.WaitJob(t, h, reportJob, id)
	if rec.State != ferry.JobSucceeded || short.Load() != 0 {
		t.Errorf("record %s (%q); want succeeded with the worker's timeout", rec.State, rec.LastError)
	}
}

// TestForgedWorkflowStartNotJSON: a workflow start published by hand whose
// payload is not JSON fails its run at once as a malformed input, instead
// of failing to store the run's record on every attempt (answered as the
// store being unavailable) until its attempts are spent.
func TestForgedWorkflowStartNotJSON(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "forged-start"}
	var executions atomic.Int32
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		executions.Add(1)
		return &orderOut{}, nil
	}, ferry.JobMaxAttempts(3), ferry.JobBackoff(time.Hour, time.Hour))
	warm, err := wf.Start(context.Background(), h.Client, &orderIn{}) // makes the stream
	if err != nil {
		t.Fatal(err)
	}
	ferrytest.WaitRun(t, h, wf, warm)
	id := "forgedstartabcdefghijklmno"
	msg := nats.NewMsg("ferry.job.forged-start.run")
	msg.Header.Set("Ferry-Job-Id", id)
	msg.Data = []byte(`[`)
	publishJobMessage(t, h, msg)
	ferrytest.Eventually(t, func() bool {
		_, err := wf.Get(context.Background(), h.Client, id)
		return err == nil
	}, "the run's record is made from its message")
	rec := ferrytest.WaitRun(t, h, wf, id)
	if rec.State != ferry.JobFailed || rec.Attempts != 1 || executions.Load() != 1 {
		t.Errorf("record %s after %d attempts (%q), %d executions; want failed at its first attempt, not executed",
			rec.State, rec.Attempts, rec.LastError, executions.Load()-1)
	}
}

func publishJobMessage(t *testing.T, h *ferrytest.Host, msg *nats.Msg) {
	t.Helper()
	js, _ := jetstream.New(h.NATS())
	if _, err := js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}
