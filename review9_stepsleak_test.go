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

// finding: the steps of a run that failed and can be resumed are kept
// ("unless it failed and can be resumed") but nothing ever removes them:
// the run's record is removed after JobRetention (a TTL on its message),
// its steps in ferry-steps have no TTL and no later purge — once the
// record is gone, no Cancel, Resume or end can reach them. Every failed
// run without compensations leaves its steps for good. The record's
// expiry is simulated by purging its key (what its TTL does), after
// checking that its step messages carry no TTL of their own.
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
	msg, err := s.GetLastMsgForSubject(ctx, "$KV.ferry-steps.s."+id+".0")
	if err != nil {
		t.Fatal(err)
	}
	ttl := msg.Header.Get("Nats-TTL")
	kv, err := js.KeyValue(ctx, "ferry-jobs")
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, "r."+id); err != nil { // JobRetention passed
		t.Fatal(err)
	}
	if n := stepMessages(t, h, "s", id); n > 0 && ttl == "" {
		t.Fatalf("the record of failed run %s is gone after its retention; its %d step messages stay in ferry-steps with no TTL", id, n)
	}
}
