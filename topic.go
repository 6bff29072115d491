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
// (the publish acknowledgement). An event that breaks the topic's schema
// (T's validation tags) is not published: the error is a 422 *[Error]
// with the code "invalid_event" and a field error for each problem. Any
// other failure is an error to retry — with the same message ID, so a
// retry of an event that was in fact stored is not stored twice.
func (t Topic[T]) Publish(ctx context.Context, c *Client, event *T, opts ...PublishOption) error {
	return t.publish(ctx, c, event, "", publishValidator(declOf(t)), opts)
}

// publish publishes one event on behalf of source ("" when none).
func (t Topic[T]) publish(ctx context.Context, c *Client, event *T, source string, validate func([]byte) error, opts []PublishOption) error {
	data, err := t.encode(event, validate)
	if err != nil {
		return t.invalid(err, "event")
	}
	msg, err := t.message(ctx, c, data, source, opts)
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
// in turn, then waits for all of them: for throughput. If an event breaks
// the topic's schema, nothing is published and the error is a 422 *[Error]
// ("invalid_event") whose field errors are located at events[i]. It
// returns the first failure; events that failed may be published again
// (each keeps its generated message ID only within this call).
func (t Topic[T]) PublishBatch(ctx context.Context, c *Client, events []*T) error {
	validate := publishValidator(declOf(t))
	payloads := make([][]byte, len(events))
	var invalid []*FieldError
	var causes []error
	for i, e := range events {
		data, err := t.encode(e, validate)
		var ip *invalidPayload
		switch {
		case errors.As(err, &ip):
			invalid = append(invalid, ip.fieldErrors(fmt.Sprintf("events[%d]", i))...)
			causes = append(causes, err)
		case err != nil:
			return fmt.Errorf("ferry: publish %s: events[%d]: %w", t.Name, i, err)
		}
		payloads[i] = data
	}
	if len(invalid) > 0 {
		return t.invalidEvents(fmt.Sprintf("%d of the %d events break", len(causes), len(events)), invalid, errors.Join(causes...))
	}
	js, err := c.jetStream()
	if err != nil {
		return err
	}
	futures := make([]jetstream.PubAckFuture, 0, len(events))
	for _, data := range payloads {
		msg, err := t.message(ctx, c, data, "", nil)
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

// encode returns the event as JSON after checking it against the topic's
// schema; an event that breaks it fails with an *invalidPayload.
func (t Topic[T]) encode(event *T, validate func([]byte) error) ([]byte, error) {
	if event == nil {
		return nil, errors.New("nil event")
	}
	data, err := json.Marshal(event)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	if err := validate(data); err != nil {
		return nil, err
	}
	return data, nil
}

// invalid returns the error of an event that could not be encoded or
// breaks the topic's schema, located at at.
func (t Topic[T]) invalid(err error, at string) error {
	var ip *invalidPayload
	if errors.As(err, &ip) {
		return t.invalidEvents("the event breaks", ip.fieldErrors(at), err)
	}
	return fmt.Errorf("ferry: publish %s: %w", t.Name, err)
}

// invalidEvents is the 422 of events that break the topic's schema; what
// says which ("the event breaks").
func (t Topic[T]) invalidEvents(what string, fields []*FieldError, cause error) error {
	return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_event",
		Detail: what + " the schema of topic " + t.Name + "; nothing was published", Errors: fields, cause: cause}
}

func (t Topic[T]) message(ctx context.Context, c *Client, data []byte, source string, opts []PublishOption) (*nats.Msg, error) {
	if c == nil || c.nc == nil {
		return nil, fmt.Errorf("ferry: publish %s: no client (is the host connected to a broker?)", t.Name)
	}
	var o publishOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.id == "" {
		o.id = nuid.Next()
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
// against the schema the service documents for the topic. It fails until
// the service's host has started.
func (p *Publisher[T]) Publish(ctx context.Context, event *T, opts ...PublishOption) error {
	return p.topic.publish(ctx, p.svc.Client(), event, p.svc.name, p.validate, opts)
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
