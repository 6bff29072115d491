package ferry

// finding 3: a cancel that lands while a failed run is being requeued —
// after the run returned (so its context was not cancelled) and before
// the record moves back from running — leaves the record "scheduled" (or
// "queued") with cancel_requested: setRequeued ignores the request. A
// second Cancel changes nothing (cancel_requested is already set), the
// schedule is not removed, and the record says scheduled until the retry's
// time (up to 24 h), when the worker finally cancels it; meanwhile a
// periodic job's next ticks are skipped as overlapping.

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ferrygo/ferry/internal/jobs"
)

type review6Report struct {
	Name string `json:"name"`
}

func TestRequeueHonoursACancelRequest(t *testing.T) {
	cfg := Config{NATSEmbed: true, DataDir: t.TempDir(), Addr: "127.0.0.1:0"}
	quietLog := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := New("review6", "1.0.0", WithConfig(cfg), WithoutHTTP(), WithLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	HandleJob(svc, Job[review6Report, review6Report]{Name: "review6-report"},
		func(context.Context, *review6Report, *Progress) (*review6Report, error) { return nil, nil })
	h, err := NewHost(WithConfig(cfg), WithLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Add(svc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
	})
	r := svc.jobs[0].(*jobRunner[review6Report, review6Report])

	for _, tc := range []struct {
		name    string
		requeue func(known *lastRecord, id string)
	}{
		{"long retry", func(known *lastRecord, id string) {
			r.requeueAt(known, id, nil, "busy", time.Now().Add(time.Hour))
		}},
		{"short retry", func(known *lastRecord, id string) { r.requeue(known, id, nil, "busy", false) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := jobs.NewID()
			if err := r.store.Create(ctx, &jobs.Record{ID: id, Job: "review6-report", State: jobs.Running, EnqueuedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			known, err := r.store.Get(ctx, id) // the run's last write: running
			if err != nil {
				t.Fatal(err)
			}
			// The cancel lands after the run returned, before the requeue.
			if _, err := cancelJob(ctx, r.svc.runtime().client, id, ""); err != nil {
				t.Fatal(err)
			}
			tc.requeue(&lastRecord{rec: known}, id)
			rec, err := r.store.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if rec.State != jobs.Cancelled {
				t.Errorf("record %s with cancel_requested=%v after a cancel: want cancelled", rec.State, rec.CancelRequested)
			}
		})
	}
}
