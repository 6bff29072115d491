package ferry

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/jsbound"
	"github.com/ferrygo/ferry/internal/naming"
)

// DefaultTopicMaxBytes is a topic stream's size limit when its Topic does
// not set one. Past it, publishing fails (nothing stored is dropped).
const DefaultTopicMaxBytes = 1 << 30

// Topic declares a stream of typed events: a stable name, the NATS subject
// the events are published on, and the payload type T. Declare it in the
// contract package of the service that publishes it; subscribers import
// it. Events are JSON, stored durably in a JetStream stream named
// ferry-<Name>, and delivered at least once to each subscription.
//
// Schema evolution: a subscriber accepts fields it does not know, so a
// producer may add optional fields; removing or retyping a field, or adding
// a required one, needs a new topic (docs/protocol.md).
type Topic[T any] struct {
	// Name is the topic's stable name: ^[A-Za-z0-9_-]+$.
	Name string
	// Subject is the NATS subject events are published on, such as
	// "orders.placed"; no wildcards, not under "ferry." or "$".
	Subject string
	// Description documents the topic in the AsyncAPI document.
	Description string
	// MaxAge, when set, removes events older than it, consumed or not.
	// Zero keeps every event until the stream reaches MaxBytes.
	MaxAge time.Duration
	// MaxBytes limits the stream's size; when full, publishing fails with
	// an error rather than dropping old events. Zero means 1 GiB.
	MaxBytes int64
}

// check validates the declaration.
func (t Topic[T]) check() error {
	if err := naming.CheckTopicName(t.Name); err != nil {
		return err
	}
	return naming.CheckSubject(t.Subject)
}

// Publisher publishes a topic on behalf of a service: the service declares
// that it sends the topic (its stream is created when the host starts, and
// its AsyncAPI document lists it), and events carry the service's name.
type Publisher[T any] struct {
	svc      *Service
	topic    Topic[T]
	validate func([]byte) error
}

// NewPublisher declares that svc publishes topic and returns its publisher.
// It panics, with a message prefixed "ferry:", on an invalid topic or a
// service that has started.
func NewPublisher[T any](svc *Service, topic Topic[T]) *Publisher[T] {
	if err := topic.check(); err != nil {
		panic(fmt.Sprintf("ferry: NewPublisher on service %s: %v", svc.name, err))
	}
	d := declOf(topic)
	svc.declareTopic(d)
	return &Publisher[T]{svc: svc, topic: topic, validate: svc.messages.validator(d)}
}

// Publish publishes event; see [Topic.Publish]. It checks the event
// against the schema the service documents for the topic, and the event
// carries the service's name (Ferry-Source). It fails until the service's
// host has started.
func (p *Publisher[T]) Publish(ctx context.Context, event *T, opts ...PublishOption) (PublishResult, error) {
	return p.topic.publish(ctx, p.svc.Client(), event, p.svc.name, p.validate, opts)
}

// PublishBatch publishes events; see [Topic.PublishBatch]. Like
// [Publisher.Publish], it checks them against the service's schema and
// they carry the service's name.
func (p *Publisher[T]) PublishBatch(ctx context.Context, events []*T, opts ...PublishOption) ([]PublishResult, error) {
	return p.topic.publishBatch(ctx, p.svc.Client(), events, p.svc.name, p.validate, opts)
}

// Topic returns the published topic.
func (p *Publisher[T]) Topic() Topic[T] { return p.topic }

// jetStream returns the client's JetStream context, made once.
func (c *Client) jetStream() (jetstream.JetStream, error) {
	if c == nil || c.nc == nil {
		return nil, fmt.Errorf("ferry: %w", errNoClient)
	}
	c.js.once.Do(func() {
		js, err := jetstream.New(c.nc)
		if err == nil {
			js = jsbound.Wrap(js)
		}
		c.js.js, c.js.err = js, err
	})
	return c.js.js, c.js.err
}
