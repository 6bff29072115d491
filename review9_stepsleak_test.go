package ferry_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// stepMessages counts the messages kept in the steps bucket's stream
// under the run's keys of one kind ("s", "c", "g"): values, and the
// purge markers a key-value purge leaves.
func stepMessages(t *testing.T, h *ferrytest.Host, kind, id string) uint64 {
	t.Helper()
	ctx := context.Background()
	js, err := jetstream.New(h.Client.Conn())
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "KV_ferry-steps")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("$KV.ferry-steps."+kind+"."+id+".>"))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// finding: Send refuses a signal whose run ended as it was stored by
// removing it with DeleteSignal, a key-value purge. A purge leaves a
// marker message on the key's subject, kept for good (no TTL; the bucket
// keeps its last message per key), and the run's one purge of its steps
// (store.Forget, at its end) has already happened — so each refused Send
// that lost the race leaves a message in ferry-steps forever: the bucket
// grows towards its MaxBytes with every such race. The key is gone (the
// first review's test lists keys), the message is not.
func TestReview9RefusedSendLeavesNothing(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r9-send-marker"}
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		if _, err := ferry.Receive[int](ctx, "go", 0); err != nil {
			return nil, err
		}
		return &orderOut{}, nil
	})
	ctx := context.Background()
	var left uint64
	refused := 0
	for r := range 10 {
		id, err := wf.Start(ctx, h.Client, &orderIn{Order: fmt.Sprint(r)})
		if err != nil {
			t.Fatal(err)
		}
		ferrytest.Eventually(t, func() bool {
			rec, err := wf.Get(ctx, h.Client, id)
			return err == nil && rec.Waiting == "signal go"
		}, "run waits")
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range 4 {
			wg.Go(func() {
				for {
					err := ferry.Send(ctx, h.Client, id, "extra", 1)
					var fe *ferry.Error
					if errors.As(err, &fe) && fe.Status == 409 {
						mu.Lock()
						refused++
						mu.Unlock()
						return
					}
				}
			})
		}
		if err := ferry.Send(ctx, h.Client, id, "go", 1); err != nil {
			t.Fatal(err)
		}
		ferrytest.WaitRun(t, h, wf, id)
		wg.Wait()
		time.Sleep(100 * time.Millisecond)
		left += stepMessages(t, h, "g", id)
	}
	if left > 0 {
		t.Fatalf("%d messages left in ferry-steps under the signals of 10 runs that ended (%d Sends refused)", left, refused)
	}
}

// finding (fixed): the steps of a run that failed and can be resumed were
// kept with no TTL while its record was removed after JobRetention: once
// the record was gone, no Cancel, Resume or end could reach them. Now
// such a run's record is kept too (no TTL), until it is resumed or
// discarded; discarding it (Cancel) removes its steps.
func TestReview9FailedRunStepsDoNotOutliveRecord(t *testing.T) {
	wf := ferry.Workflow[orderIn, orderOut]{Name: "r9-failed-steps"}
	h := ferrytest.RunWorkflow(t, wf, func(ctx ferry.WorkflowContext, in *orderIn) (*orderOut, error) {
		if _, err := ferry.Step(ctx, "a", func(context.Context) (int, error) { return 1, nil }); err != nil {
			return nil, err
		}
		_, err := ferry.Step(ctx, "b", func(context.Context) (int, error) { return 0, ferry.Permanent(errors.New("no")) })
		return nil, err
	}, ferry.JobRetention(time.Minute))
	ctx := context.Background()
	id, err := wf.Start(ctx, h.Client, &orderIn{})
	if err != nil {
		t.Fatal(err)
	}
	if rec := ferrytest.WaitRun(t, h, wf, id); rec.State != ferry.JobFailed {
		t.Fatalf("record %+v", rec)
	}
	js, err := jetstream.New(h.Client.Conn())
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "KV_ferry-steps")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLastMsgForSubject(ctx, "$KV.ferry-steps.s."+id+".0"); err != nil {
		t.Fatalf("the failed run's first step is not kept for a resume: %v", err)
	}
	jobsStream, err := js.Stream(ctx, "KV_ferry-jobs")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := jobsStream.GetLastMsgForSubject(ctx, "$KV.ferry-jobs.r."+id)
	if err != nil {
		t.Fatal(err)
	}
	if ttl := rec.Header.Get("Nats-TTL"); ttl != "" {
		t.Fatalf("the record of failed run %s expires (TTL %s) while its steps are kept without one", id, ttl)
	}
	if _, err := wf.Cancel(ctx, h.Client, id); err != nil { // discarded
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool { return stepMessages(t, h, "s", id) == 0 }, "the discarded run's steps are removed")
}
