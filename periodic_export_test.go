package ferry

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/naming"
)

// FirePeriodicTick hands svc's periodic jobs a tick of a declared
// schedule as the broker delivers one: next is the schedule's next
// firing after the tick (what identifies it), fired when it fired.
func FirePeriodicTick(ctx context.Context, svc *Service, job, schedule string, next, fired time.Time) error {
	r := newPeriodicRunner(svc)
	rt := svc.runtime()
	store, err := rt.client.jobStore(ctx)
	if err != nil {
		return err
	}
	r.store, r.js = store, rt.js
	p := r.declared[job][schedule]
	h := nats.Header{}
	h.Set(naming.HeaderJobSchedule, schedule)
	h.Set(naming.HeaderJobCron, p.expr)
	h.Set(jetstream.ScheduleNextHeader, next.UTC().Format(time.RFC3339Nano))
	return r.tick(ctx, job, h, p.input, fired, fired)
}
