package jobs

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Queue is what JetStream knows of a job kind's queue: its stream and
// the durable consumer its workers share.
type Queue struct {
	// Queued counts the jobs ready to run that no worker took yet (the
	// consumer's pending messages).
	Queued uint64
	// Running counts the jobs taken by a worker and not finished: running,
	// or waiting out a retry's backoff (the consumer's ack-pending
	// messages).
	Running uint64
	// Scheduled counts the jobs waiting for their time (the stream's other
	// messages: message schedules).
	Scheduled uint64
	// OldestQueued is when the oldest of the queued jobs became ready to
	// run (stored, or published by its schedule); zero when none is.
	OldestQueued time.Time
	// PausedUntil is when the consumer's pause ends; zero when it is not
	// paused.
	PausedUntil time.Time
}

// ReadQueue reads the queue of the job kind whose stream and consumer
// are named, its jobs ready to run on runSubject: two requests, and a
// third for the oldest queued job when there is one. It fails with
// jetstream.ErrStreamNotFound or ErrConsumerNotFound when the kind's
// stream or worker consumer does not exist yet.
func ReadQueue(ctx context.Context, js jetstream.JetStream, stream, consumer, runSubject string) (Queue, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return Queue{}, err
	}
	cons, err := st.Consumer(ctx, consumer)
	if err != nil {
		return Queue{}, err
	}
	return readQueue(ctx, st, cons.CachedInfo(), runSubject)
}

// ReadQueueOf is ReadQueue with the stream and consumer handles a caller
// keeps between readings (each Info is one request).
func ReadQueueOf(ctx context.Context, st jetstream.Stream, cons jetstream.Consumer, runSubject string) (Queue, error) {
	info, err := cons.Info(ctx)
	if err != nil {
		return Queue{}, err
	}
	if _, err := st.Info(ctx); err != nil {
		return Queue{}, err
	}
	return readQueue(ctx, st, info, runSubject)
}

func readQueue(ctx context.Context, st jetstream.Stream, info *jetstream.ConsumerInfo, runSubject string) (Queue, error) {
	q := Queue{Queued: info.NumPending, Running: uint64(max(info.NumAckPending, 0))}
	// The stream holds every job not yet acknowledged: the run subject's
	// (pending or ack pending, read just before) and the schedules.
	if msgs := st.CachedInfo().State.Msgs; msgs > q.Queued+q.Running {
		q.Scheduled = msgs - q.Queued - q.Running
	}
	if info.Paused && info.Config.PauseUntil != nil {
		q.PausedUntil = *info.Config.PauseUntil
	}
	if q.Queued > 0 {
		msg, err := st.GetMsg(ctx, info.Delivered.Stream+1, jetstream.WithGetMsgSubject(runSubject))
		if err == nil {
			q.OldestQueued = msg.Time
		}
	}
	return q, nil
}
