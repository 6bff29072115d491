package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrygo/ferry"
)

// attemptTimeout bounds one attempt of an operation.
const attemptTimeout = 5 * time.Second

// ack is one acknowledged operation as the driver persists it, a JSON
// line of the acks file, written and synced before the next is counted.
type ack struct {
	Op   string `json:"op"`
	Kind string `json:"kind"`
	// ID is what the system answered: the job or run ID; for a publish,
	// Seq is the event's stream sequence and Duplicate that JetStream
	// reported it already held the message ID (an earlier attempt that
	// failed had stored it).
	ID        string `json:"id,omitempty"`
	Seq       uint64 `json:"seq,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
	// Attempts counts the tries, this one included.
	Attempts int       `json:"attempts"`
	At       time.Time `json:"at"`
}

// ackLog is the driver's persisted record of acknowledged operations.
type ackLog struct {
	mu sync.Mutex
	f  *os.File
	n  atomic.Int64
}

func openAckLog(path string) (*ackLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	return &ackLog{f: f}, nil
}

// add appends a and syncs the file before counting it.
func (l *ackLog) add(a ack) error {
	line, err := json.Marshal(a)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.Write(append(line, '\n')); err != nil {
		return err
	}
	if err := l.f.Sync(); err != nil {
		return err
	}
	l.n.Add(1)
	return nil
}

func (l *ackLog) close() error { return l.f.Close() }

// driver issues the plan's operations through client, rate per second
// from workers goroutines, retrying each with the same ID until it is
// acknowledged or ctx ends.
type driver struct {
	client  *ferry.Client
	acks    *ackLog
	rate    float64
	workers int

	issued, retries atomic.Int64
	// retried counts the failed attempts per kind of operation.
	retried [4]atomic.Int64
}

func (d *driver) run(ctx context.Context, ops []plannedOp) error {
	work := make(chan plannedOp)
	errs := make(chan error, d.workers)
	var wg sync.WaitGroup
	for range d.workers {
		wg.Go(func() {
			for op := range work {
				if err := d.do(ctx, op); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / d.rate))
	defer tick.Stop()
	var err error
feed:
	for _, op := range ops {
		select {
		case <-ctx.Done():
			break feed
		case err = <-errs:
			break feed
		case <-tick.C:
		}
		select {
		case work <- op:
			d.issued.Add(1)
		case <-ctx.Done():
			break feed
		case err = <-errs:
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}

// do issues op until it is acknowledged, and persists the ack. Only a
// failure to persist is an error; ctx ending leaves op unacknowledged.
func (d *driver) do(ctx context.Context, op plannedOp) error {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		a, err := d.once(ctx, op)
		if err == nil {
			a.Op, a.Kind, a.Attempts, a.At = op.ID, op.Kind, attempt, time.Now().UTC()
			if err := d.acks.add(a); err != nil {
				return fmt.Errorf("persist the ack of %s: %w", op.ID, err)
			}
			return nil
		}
		d.retries.Add(1)
		d.retried[slices.Index(opKinds, op.Kind)].Add(1)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff/2 + rand.N(backoff/2+1)):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// once makes one attempt of op.
func (d *driver) once(ctx context.Context, op plannedOp) (ack, error) {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	in := &Op{Op: op.ID}
	switch op.Kind {
	case opCall:
		_, err := Handle.Call(ctx, d.client, in)
		return ack{}, err
	case opPublish:
		res, err := Happened.Publish(ctx, d.client, in, ferry.PublishMessageID(op.ID))
		return ack{ID: res.ID, Seq: res.Sequence, Duplicate: res.Duplicate}, err
	case opEnqueue:
		id, err := Work.Enqueue(ctx, d.client, in, ferry.EnqueueKey(op.ID, idempotency))
		return ack{ID: id}, err
	case opStart:
		id, err := Flow.Start(ctx, d.client, in, ferry.EnqueueKey(op.ID, idempotency))
		return ack{ID: id}, err
	}
	return ack{}, fmt.Errorf("unknown kind %q", op.Kind)
}
