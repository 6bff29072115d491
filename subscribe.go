package ferry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ferrygo/ferry/internal/naming"
)

// Defaults of a subscription; each has an option.
const (
	DefaultMaxDeliveries  = 5
	DefaultAckWait        = 30 * time.Second
	DefaultConcurrency    = 16
	DefaultBackoffInitial = time.Second
	DefaultBackoffMax     = 5 * time.Minute
	DefaultMaxAckPending  = 10000
	DefaultHandlerTimeout = 5 * time.Minute
)

// maxBackoff bounds SubscribeBackoff's maximum.
const maxBackoff = 24 * time.Hour

// SubscribeOption adjusts a subscription. Options of one operation are
// named for it (SubscribeTimeout, SubscribeConcurrency, …), so each kind
// of work can have its own; With… options configure a [Service] or a
// [Host].
type SubscribeOption func(*subscribeOptions)

type subscribeOptions struct {
	maxDeliveries          int
	ackWait                time.Duration
	concurrency            int
	backoffInit, backoffMx time.Duration
	idempotency            time.Duration
	deliverNew             bool
	timeout                time.Duration
}

func defaultSubscribeOptions() subscribeOptions {
	return subscribeOptions{maxDeliveries: DefaultMaxDeliveries, ackWait: DefaultAckWait, concurrency: DefaultConcurrency,
		backoffInit: DefaultBackoffInitial, backoffMx: DefaultBackoffMax, timeout: DefaultHandlerTimeout}
}

// check refuses settings that cannot work, when the subscription is
// declared.
func (o subscribeOptions) check() error {
	switch {
	case o.maxDeliveries < 1:
		return fmt.Errorf("SubscribeMaxDeliveries(%d): must be at least 1", o.maxDeliveries)
	case o.ackWait < time.Second:
		return fmt.Errorf("SubscribeAckWait(%v): must be at least 1s", o.ackWait)
	case o.timeout <= 0:
		return fmt.Errorf("SubscribeTimeout(%v): must be positive", o.timeout)
	case o.concurrency < 1:
		return fmt.Errorf("SubscribeConcurrency(%d): must be at least 1", o.concurrency)
	case o.backoffInit <= 0 || o.backoffMx < o.backoffInit || o.backoffMx > maxBackoff:
		return fmt.Errorf("SubscribeBackoff(%v, %v): the initial delay must be positive, and the maximum at least the initial and at most %v",
			o.backoffInit, o.backoffMx, maxBackoff)
	case o.idempotency < 0:
		return fmt.Errorf("SubscribeIdempotency(%v): must not be negative", o.idempotency)
	}
	return nil
}

// SubscribeMaxDeliveries sets how many times the handler may run for one
// event before it is dead-lettered (default 5). A run that never settles —
// the handler hung past its ack wait, its process died — counts too; a
// redelivery caused by a shutdown does not.
func SubscribeMaxDeliveries(n int) SubscribeOption {
	return func(o *subscribeOptions) { o.maxDeliveries = n }
}

// SubscribeAckWait sets how long a delivery may go without word from its
// handler before JetStream gives it to another replica (default 30s, at
// least 1s). Long handlers need not raise it: Ferry reports progress every
// third of it while the handler runs.
func SubscribeAckWait(d time.Duration) SubscribeOption {
	return func(o *subscribeOptions) { o.ackWait = d }
}

// SubscribeTimeout sets how long the handler may run for one delivery
// (default 5m): its context ends then, and Ferry stops reporting progress,
// so if the handler ignores its context and hangs, JetStream redelivers the
// event after the ack wait, and past the delivery limit it is
// dead-lettered.
func SubscribeTimeout(d time.Duration) SubscribeOption {
	return func(o *subscribeOptions) { o.timeout = d }
}

// SubscribeConcurrency sets how many events of the subscription one
// replica handles at once (default 16). Ferry fetches only as many as it
// can start, so events do not wait in a local buffer while their ack wait
// runs.
func SubscribeConcurrency(n int) SubscribeOption {
	return func(o *subscribeOptions) { o.concurrency = n }
}

// SubscribeBackoff sets the redelivery delay after a failed delivery:
// initial, doubling with each delivery up to max (at most 24h), with ±20%
// jitter (defaults 1s and 5m).
func SubscribeBackoff(initial, max time.Duration) SubscribeOption {
	return func(o *subscribeOptions) { o.backoffInit, o.backoffMx = initial, max }
}

// SubscribeIdempotency makes the handler's effect count once per message
// ID within window: before the handler runs, Ferry claims the ID in the
// service's JetStream key-value bucket, so a redelivery or a republish of
// an ID that is being handled waits, and one that was handled is
// acknowledged without running the handler again. The claim is renewed
// while the handler runs within its timeout, becomes a record of success
// when the handler returns nil, and is released when it fails. A process
// that dies between the handler's effect and the record, or a handler that
// hangs past its timeout, runs again once the claim expires (the handler
// timeout plus the ack wait after its last renewal): make the effect
// itself idempotent (keyed by [Event].ID) where a second run cannot be
// tolerated.
func SubscribeIdempotency(window time.Duration) SubscribeOption {
	return func(o *subscribeOptions) { o.idempotency = max(time.Second, window) }
}

// SubscribeDeliverNew starts a new subscription at events published from
// now on, instead of every event the topic's stream holds (the default, so
// events published before the subscriber first started are not missed).
func SubscribeDeliverNew() SubscribeOption {
	return func(o *subscribeOptions) { o.deliverNew = true }
}

// backoff returns the delay before delivery n+1 after n failed ones.
func (o subscribeOptions) backoff(n uint64) time.Duration {
	d := o.backoffInit
	for i := uint64(1); i < n && d < o.backoffMx; i++ {
		if d > o.backoffMx/2 {
			d = o.backoffMx // doubling would pass the maximum (or overflow)
			break
		}
		d *= 2
	}
	d = min(d, o.backoffMx)
	jitter := time.Duration(rand.Int64N(int64(d)/5 + 1))
	if rand.IntN(2) == 0 {
		return d - jitter
	}
	return d + jitter
}

// Event describes the event being handled; see [EventFromContext].
type Event struct {
	// ID is the message ID (Nats-Msg-Id): the same for every delivery and
	// every de-duplicated republish of the event.
	ID string
	// Topic is the topic's name and Subject the subject it arrived on.
	Topic, Subject string
	// Delivery counts the handler's runs for this event in this
	// subscription, this one included, from 1 (redeliveries caused by a
	// shutdown are not counted).
	Delivery uint64
	// Published is when the stream stored the event.
	Published time.Time
	// Sequence is the event's sequence in its stream.
	Sequence uint64
}

type eventKey struct{}

// EventFromContext returns the event being handled, or nil outside an
// event handler.
func EventFromContext(ctx context.Context) *Event {
	e, _ := ctx.Value(eventKey{}).(*Event)
	return e
}

// Subscribe binds handler to topic on svc with a durable subscription named
// consumer: every replica of the service shares it (each event is handled
// by one of them), and it survives restarts. The handler receives each
// event at least once:
//
//   - returning nil acknowledges the event;
//   - returning an error redelivers it after a backoff, up to the maximum
//     number of deliveries, after which it goes to the dead-letter stream
//     with the error; an error for which [IsPermanent] holds goes there at
//     once; a panic counts as an error;
//   - an event whose payload is not valid JSON for T, or breaks T's
//     validation tags, goes to the dead-letter stream at once; fields T
//     does not know are accepted (tolerant reader).
//
// Subscribe panics, with a message prefixed "ferry:", on an invalid topic
// or consumer name, a duplicate consumer name, options that cannot work (a
// negative backoff, a zero concurrency), or a started service.
func Subscribe[T any](svc *Service, topic Topic[T], consumer string, handler func(context.Context, *T) error, opts ...SubscribeOption) {
	if err := topic.check(); err != nil {
		panic(fmt.Sprintf("ferry: Subscribe on service %s: %v", svc.name, err))
	}
	if err := naming.CheckEndpointName(consumer); err != nil {
		panic(fmt.Sprintf("ferry: Subscribe %s to %s: consumer %v", svc.name, topic.Name, err))
	}
	if handler == nil {
		panic(fmt.Sprintf("ferry: Subscribe %s to %s: nil handler", svc.name, topic.Name))
	}
	o := defaultSubscribeOptions()
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if err := o.check(); err != nil {
		panic(fmt.Sprintf("ferry: Subscribe %s to %s: %v", svc.name, topic.Name, err))
	}
	decl := declOf(topic)
	sub := &subscription[T]{svc: svc, topic: decl, consumer: consumer, opts: o, handler: handler}
	sub.decode = payloadDecoder[T](svc.messages, decl)
	svc.addSubscription(sub, decl)
}
