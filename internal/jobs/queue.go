package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Lane is one priority of a job kind: the durable consumer its workers
// share and the subject its jobs wait on for them.
type Lane struct {
	Consumer, RunSubject string
}

// Lanes returns the lanes of job kind job, normal priority first: the
// consumers "worker", "worker-high" and "worker-low", on
// ferry.job.<job>.run, .run.high and .run.low. These are the job
// priorities' names as the root package's job worker and Enqueue spell
// them; they are repeated here because this package cannot import the
// root (keep the two in step).
func Lanes(job string) []Lane {
	run := "ferry.job." + job + ".run"
	return []Lane{
		{Consumer: "worker", RunSubject: run},
		{Consumer: "worker-high", RunSubject: run + ".high"},
		{Consumer: "worker-low", RunSubject: run + ".low"},
	}
}

// Kind names a job kind's queue in JetStream.
type Kind struct {
	// Job is the kind's name.
	Job string
	// Stream is the kind's stream, holding its jobs of every priority
	// and its schedules.
	Stream string
	// Lanes are its priorities' consumers (nil: Lanes(Job)).
	Lanes []Lane
}

func (k Kind) lanes() []Lane {
	if k.Lanes == nil {
		return Lanes(k.Job)
	}
	return k.Lanes
}

// Queue is what JetStream knows of a job kind's queue: its stream and
// the durable consumers its workers share, one per priority, summed.
type Queue struct {
	// Queued counts the jobs ready to run that no worker took yet (the
	// consumers' pending messages).
	Queued uint64
	// Running counts the jobs taken by a worker and not finished: running,
	// or waiting out a retry's backoff (the consumers' ack-pending
	// messages).
	Running uint64
	// Scheduled counts the jobs waiting for their time (the stream's other
	// messages: message schedules).
	Scheduled uint64
	// OldestQueued is when the oldest of the queued jobs, of any priority,
	// became ready to run (stored, or published by its schedule); zero
	// when none is.
	OldestQueued time.Time
	// PausedUntil is when the kind's pause ends: the earliest end of its
	// consumers' pauses when every one of them is paused; zero otherwise.
	PausedUntil time.Time
}

// ReadQueue reads the queue of job kind k: one request for the stream
// and one per consumer, and one more for the oldest queued job of each
// priority that has one. A priority whose consumer does not exist (yet)
// counts nothing; it fails with jetstream.ErrStreamNotFound or
// ErrConsumerNotFound when the kind's stream or every consumer is
// missing.
func ReadQueue(ctx context.Context, js jetstream.JetStream, k Kind) (Queue, error) {
	st, conss, err := Consumers(ctx, js, k)
	if err != nil {
		return Queue{}, err
	}
	infos := make([]*jetstream.ConsumerInfo, len(conss))
	for i, c := range conss {
		if c != nil {
			infos[i] = c.CachedInfo()
		}
	}
	return readQueue(ctx, st, infos, k)
}

// Consumers returns the stream of job kind k and the consumer of each of
// its lanes, nil where it does not exist; it fails with
// jetstream.ErrStreamNotFound, or ErrConsumerNotFound when none exists.
func Consumers(ctx context.Context, js jetstream.JetStream, k Kind) (jetstream.Stream, []jetstream.Consumer, error) {
	st, err := js.Stream(ctx, k.Stream)
	if err != nil {
		return nil, nil, err
	}
	lanes := k.lanes()
	conss := make([]jetstream.Consumer, len(lanes))
	found := false
	for i, l := range lanes {
		c, err := st.Consumer(ctx, l.Consumer)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			continue
		case err != nil:
			return nil, nil, err
		}
		conss[i], found = c, true
	}
	if !found {
		return nil, nil, jetstream.ErrConsumerNotFound
	}
	return st, conss, nil
}

// ReadQueueOf is ReadQueue with the stream and consumer handles a caller
// keeps between readings (Consumers' answer; each Info is one request).
func ReadQueueOf(ctx context.Context, st jetstream.Stream, conss []jetstream.Consumer, k Kind) (Queue, error) {
	infos := make([]*jetstream.ConsumerInfo, len(conss))
	for i, c := range conss {
		if c == nil {
			continue
		}
		info, err := c.Info(ctx)
		if err != nil {
			return Queue{}, err
		}
		infos[i] = info
	}
	if _, err := st.Info(ctx); err != nil {
		return Queue{}, err
	}
	return readQueue(ctx, st, infos, k)
}

func readQueue(ctx context.Context, st jetstream.Stream, infos []*jetstream.ConsumerInfo, k Kind) (Queue, error) {
	lanes := k.lanes()
	var q Queue
	paused := true
	for _, info := range infos {
		if info == nil {
			continue
		}
		q.Queued += info.NumPending
		q.Running += uint64(max(info.NumAckPending, 0))
		if info.Paused && info.Config.PauseUntil != nil {
			if q.PausedUntil.IsZero() || info.Config.PauseUntil.Before(q.PausedUntil) {
				q.PausedUntil = *info.Config.PauseUntil
			}
		} else {
			paused = false
		}
	}
	if !paused {
		q.PausedUntil = time.Time{}
	}
	// The stream holds every job not yet acknowledged: the run subjects'
	// (pending or ack pending, read just before) and the schedules.
	if msgs := st.CachedInfo().State.Msgs; msgs > q.Queued+q.Running {
		q.Scheduled = msgs - q.Queued - q.Running
		// Less the periodic schedules and their ticks not yet turned into
		// jobs, which the stream also holds; only when there may be any.
		if others, err := periodicMessages(ctx, st, k); err == nil {
			q.Scheduled -= min(q.Scheduled, others)
		}
	}
	for i, info := range infos {
		if info == nil || info.NumPending == 0 {
			continue
		}
		msg, err := st.GetMsg(ctx, info.Delivered.Stream+1, jetstream.WithGetMsgSubject(lanes[i].RunSubject))
		if err == nil && (q.OldestQueued.IsZero() || msg.Time.Before(q.OldestQueued)) {
			q.OldestQueued = msg.Time
		}
	}
	return q, nil
}

// Pause pauses every existing consumer of job kind k until until; it
// fails as Consumers does when the kind has none.
func Pause(ctx context.Context, js jetstream.JetStream, k Kind, until time.Time) error {
	return eachConsumer(ctx, js, k, func(name string) error {
		_, err := js.PauseConsumer(ctx, k.Stream, name, until)
		return err
	})
}

// Resume ends the pause of every existing consumer of job kind k.
func Resume(ctx context.Context, js jetstream.JetStream, k Kind) error {
	return eachConsumer(ctx, js, k, func(name string) error {
		_, err := js.ResumeConsumer(ctx, k.Stream, name)
		return err
	})
}

// eachConsumer applies do to each lane's consumer that exists, all of
// them even when one fails; it fails with ErrConsumerNotFound when none
// exists (or the stream's error).
func eachConsumer(ctx context.Context, js jetstream.JetStream, k Kind, do func(consumer string) error) error {
	if _, err := js.Stream(ctx, k.Stream); err != nil {
		return err
	}
	var errs []error
	found := false
	for _, l := range k.lanes() {
		err := do(l.Consumer)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
		case err != nil:
			found = true
			errs = append(errs, err)
		default:
			found = true
		}
	}
	if !found {
		return jetstream.ErrConsumerNotFound
	}
	return errors.Join(errs...)
}

// periodicMessages counts the messages of the kind's stream that are not
// jobs: its periodic schedules (one per schedule, on ….cron.<name>) and
// the ticks they fired that no worker has turned into a job yet (on
// ….tick). Two stream reads, each answering a small count.
func periodicMessages(ctx context.Context, st jetstream.Stream, k Kind) (uint64, error) {
	var n uint64
	for _, filter := range []string{"ferry.job." + k.Job + ".cron.*", "ferry.job." + k.Job + ".tick"} {
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			return 0, err
		}
		for _, c := range info.State.Subjects {
			n += c
		}
	}
	return n, nil
}
