package ferry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

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

// PublishOption adjusts one publish.
type PublishOption func(*publishOptions)

type publishOptions struct {
	id string
}

// WithMessageID sets the event's message ID. JetStream stores a message
// once per ID within the stream's duplicate window (2 minutes), so a
// publish retried with the same ID is stored once. Without it, a unique ID
// is generated.
func WithMessageID(id string) PublishOption {
	return func(o *publishOptions) { o.id = id }
}

// Publish publishes one event and returns once JetStream has stored it
// (the publish acknowledgement). A failure is an error to retry — with the
// same message ID, so a retry of an event that was in fact stored is not
// stored twice.
func (t Topic[T]) Publish(ctx context.Context, c *Client, event *T, opts ...PublishOption) error {
	return t.publish(ctx, c, event, "", opts)
}

// publish publishes one event on behalf of source ("" when none).
func (t Topic[T]) publish(ctx context.Context, c *Client, event *T, source string, opts []PublishOption) error {
	msg, err := t.message(ctx, c, event, source, opts)
	if err != nil {
		return err
	}
	js, err := c.jetStream()
	if err != nil {
		return err
	}
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithExpectStream(naming.TopicStream(t.Name))); err != nil {
		return t.publishError(err)
	}
	return nil
}

// PublishBatch publishes events without waiting for each acknowledgement
// in turn, then waits for all of them: for throughput. It returns the
// first failure; events that failed may be published again (each keeps its
// generated message ID only within this call).
func (t Topic[T]) PublishBatch(ctx context.Context, c *Client, events []*T) error {
	js, err := c.jetStream()
	if err != nil {
		return err
	}
	futures := make([]jetstream.PubAckFuture, 0, len(events))
	for _, e := range events {
		msg, err := t.message(ctx, c, e, "", nil)
		if err != nil {
			return err
		}
		f, err := js.PublishMsgAsync(msg, jetstream.WithExpectStream(naming.TopicStream(t.Name)))
		if err != nil {
			return t.publishError(err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return t.publishError(err)
		case <-ctx.Done():
			return fmt.Errorf("ferry: publish %s: %w", t.Name, ctx.Err())
		}
	}
	return nil
}

func (t Topic[T]) message(ctx context.Context, c *Client, event *T, source string, opts []PublishOption) (*nats.Msg, error) {
	if c == nil || c.nc == nil {
		return nil, fmt.Errorf("ferry: publish %s: no client (is the host connected to a broker?)", t.Name)
	}
	if event == nil {
		return nil, fmt.Errorf("ferry: publish %s: nil event", t.Name)
	}
	var o publishOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.id == "" {
		o.id = nuid.Next()
	}
	data, err := json.Marshal(event)
	if err != nil {
		return nil, fmt.Errorf("ferry: publish %s: encode: %w", t.Name, err)
	}
	msg := nats.NewMsg(t.Subject)
	msg.Data = data
	msg.Header.Set(naming.HeaderMsgID, o.id)
	msg.Header.Set("Content-Type", "application/json")
	if source != "" {
		msg.Header.Set(naming.HeaderSource, source)
	}
	propagate(ctx, msg.Header.Set)
	return msg, nil
}

// JetStream errors of a full stream: the store refused the message
// ("maximum bytes exceeded", discard-new at the limit), or the server is
// out of storage.
const (
	jsErrStreamStoreFailed     = 10077
	jsErrInsufficientResources = 10047
)

// ErrTopicFull reports a topic stream at its size limit.
var ErrTopicFull = errors.New("ferry: topic stream is full")

func (t Topic[T]) publishError(err error) error {
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && (apiErr.ErrorCode == jsErrStreamStoreFailed && strings.Contains(apiErr.Description, "maximum") ||
		apiErr.ErrorCode == jsErrInsufficientResources):
		return &Error{Status: http.StatusInsufficientStorage, Code: "topic_full",
			Detail: "topic " + t.Name + " is full; nothing was published", cause: errors.Join(ErrTopicFull, err)}
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return &Error{Status: http.StatusServiceUnavailable, Code: "no_stream",
			Detail: "topic " + t.Name + " has no stream yet (no service declaring it has started) or the broker is unavailable", cause: err}
	}
	return fmt.Errorf("ferry: publish %s: %w", t.Name, err)
}

// Publisher publishes a topic on behalf of a service: the service declares
// that it sends the topic (its stream is created when the host starts, and
// its AsyncAPI document lists it), and events carry the service's name.
type Publisher[T any] struct {
	svc   *Service
	topic Topic[T]
}

// NewPublisher declares that svc publishes topic and returns its publisher.
// It panics, with a message prefixed "ferry:", on an invalid topic or a
// service that has started.
func NewPublisher[T any](svc *Service, topic Topic[T]) *Publisher[T] {
	if err := topic.check(); err != nil {
		panic(fmt.Sprintf("ferry: NewPublisher on service %s: %v", svc.name, err))
	}
	svc.declareTopic(declOf(topic))
	return &Publisher[T]{svc: svc, topic: topic}
}

// Publish publishes event; see [Topic.Publish]. It fails until the
// service's host has started.
func (p *Publisher[T]) Publish(ctx context.Context, event *T, opts ...PublishOption) error {
	return p.topic.publish(ctx, p.svc.Client(), event, p.svc.name, opts)
}

// Topic returns the published topic.
func (p *Publisher[T]) Topic() Topic[T] { return p.topic }

// jetStream returns the client's JetStream context, made once.
func (c *Client) jetStream() (jetstream.JetStream, error) {
	if c == nil || c.nc == nil {
		return nil, errors.New("ferry: no client (is the host connected to a broker?)")
	}
	c.jsOnce.Do(func() { c.js, c.jsErr = jetstream.New(c.nc) })
	return c.js, c.jsErr
}
