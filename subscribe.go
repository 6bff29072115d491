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

// SubscribeOption adjusts a subscription.
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

// WithMaxDeliveries sets how many times the handler may run for one event
// before it is dead-lettered (default 5). A delivery that is never
// acknowledged — the handler hung past its ack wait, its process died —
// counts too.
func WithMaxDeliveries(n int) SubscribeOption {
	return func(o *subscribeOptions) { o.maxDeliveries = max(1, n) }
}

// WithAckWait sets how long a delivery may go without word from its
// handler before JetStream gives it to another replica (default 30s).
// Long handlers need not raise it: Ferry reports progress every third of
// it while the handler runs.
func WithAckWait(d time.Duration) SubscribeOption {
	return func(o *subscribeOptions) { o.ackWait = max(time.Second, d) }
}

// WithTimeout sets how long the handler may run for one delivery (default
// 5m): its context ends then, and Ferry stops reporting progress, so if
// the handler ignores its context and hangs, JetStream redelivers the event
// after the ack wait, and past the delivery limit it is dead-lettered.
func WithTimeout(d time.Duration) SubscribeOption {
	return func(o *subscribeOptions) { o.timeout = max(time.Millisecond, d) }
}

// WithConcurrency sets how many events of the subscription one replica
// handles at once (default 16). Ferry fetches only as many as it can
// start, so events do not wait in a local buffer while their ack wait runs.
func WithConcurrency(n int) SubscribeOption {
	return func(o *subscribeOptions) { o.concurrency = max(1, n) }
}

// WithBackoff sets the redelivery delay after a failed delivery: initial,
// doubling with each delivery up to max, with ±20% jitter (defaults 1s and
// 5m).
func WithBackoff(initial, max time.Duration) SubscribeOption {
	return func(o *subscribeOptions) { o.backoffInit, o.backoffMx = initial, max }
}

// WithIdempotency makes the handler's effect count once per message ID
// within window: Ferry records each handled ID in a JetStream key-value
// bucket and acknowledges a redelivered or republished ID without running
// the handler again. The record is written after the handler succeeds, so
// a process that dies between the handler's effect and the record runs it
// again: make the effect itself idempotent (keyed by [Event].ID) where a
// second run cannot be tolerated.
func WithIdempotency(window time.Duration) SubscribeOption {
	return func(o *subscribeOptions) { o.idempotency = max(time.Second, window) }
}

// WithDeliverNew starts a new subscription at events published from now
// on, instead of every event the topic's stream holds (the default, so
// events published before the subscriber first started are not missed).
func WithDeliverNew() SubscribeOption {
	return func(o *subscribeOptions) { o.deliverNew = true }
}

// backoff returns the delay before delivery n+1 after n failed ones.
func (o subscribeOptions) backoff(n uint64) time.Duration {
	d := o.backoffInit
	for i := uint64(1); i < n && d < o.backoffMx; i++ {
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
	// Delivery counts the deliveries of this event to this subscription,
	// from 1.
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
// or consumer name, a duplicate consumer name, or a started service.
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
		opt(&o)
	}
	decl := declOf(topic)
	sub := &subscription[T]{svc: svc, topic: decl, consumer: consumer, opts: o, handler: handler}
	sub.decode = payloadDecoder[T](svc.messages, decl)
	svc.addSubscription(sub, decl)
}
