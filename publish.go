package ferry

import (
	"cmp"
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

// PublishOption adjusts a publish; like every option of one operation it
// is named for it (PublishMessageID, PublishMessageIDs, PublishHeader,
// PublishTimeout).
type PublishOption func(*publishOptions)

type publishOptions struct {
	id      string
	ids     []string
	set     int // how many ID options were given, to report a conflict
	header  http.Header
	timeout time.Duration
	err     error // the first invalid option
}

// PublishHeader sets a header of the published event (of each event of a
// batch), which subscribers read with [Request.Header]. Ferry's own
// headers (Ferry-*, Nats-*, Content-Type) cannot be set: the publish fails
// with an error. Client middleware runs after the options and may change
// it.
func PublishHeader(name, value string) PublishOption {
	return func(o *publishOptions) {
		err := checkHeaderOption(name)
		if err == nil && isCredentialHeader(name) {
			err = errors.New("the header " + name + " carries credentials, which events must not: an event is stored in its stream and read by every subscriber")
		}
		if err != nil {
			o.err = cmp.Or(o.err, err)
			return
		}
		if o.header == nil {
			o.header = http.Header{}
		}
		o.header.Set(name, value)
	}
}

// credentialHeaders are the headers that carry credentials. Events never
// carry them: an event is stored, replayed and read by every subscriber,
// so a client middleware that sets them on every outgoing message (to
// forward a caller's token on calls) does not leak them into streams.
var credentialHeaders = []string{"Authorization", HeaderAPIKey, "Cookie", "Proxy-Authorization"}

func isCredentialHeader(name string) bool {
	for _, h := range credentialHeaders {
		if strings.EqualFold(name, h) {
			return true
		}
	}
	return false
}

// stripCredentials removes the credential headers from an event's.
func stripCredentials(h nats.Header) {
	for _, name := range credentialHeaders {
		delete(h, name)
		delete(h, http.CanonicalHeaderKey(name))
	}
}

// PublishTimeout gives the publish (for a batch, the sending and the wait
// for every acknowledgement) at most d, within ctx's deadline; d must be
// positive. Without it, the publish takes what ctx allows; a single event
// whose ctx has no deadline waits up to JetStream's default of 5 seconds.
// A publish cut off by it may have been stored: retry it with the same
// message ID.
func PublishTimeout(d time.Duration) PublishOption {
	return func(o *publishOptions) {
		if d <= 0 {
			o.err = cmp.Or(o.err, errors.New("PublishTimeout must be positive, got "+d.String()))
			return
		}
		o.timeout = d
	}
}

// PublishMessageID sets the event's message ID. JetStream stores a message
// once per ID within the stream's duplicate window (2 minutes), so a
// publish retried with the same ID is stored once. Without it, a unique ID
// is generated (and returned in [PublishResult].ID). For a batch, use
// [PublishMessageIDs].
func PublishMessageID(id string) PublishOption {
	return func(o *publishOptions) { o.id, o.set = id, o.set+1 }
}

// PublishMessageIDs sets the message IDs of a batch's events, one per event
// in order; an empty ID is generated. Retrying the events a batch failed to
// store with the IDs its results report stores each event once.
func PublishMessageIDs(ids ...string) PublishOption {
	return func(o *publishOptions) { o.ids, o.set = ids, o.set+1 }
}

// PublishResult is the outcome of publishing one event.
type PublishResult struct {
	// ID is the event's message ID, given or generated; it is set even
	// when the publish failed, to retry with.
	ID string
	// Sequence is the event's sequence in the topic's stream (for a
	// duplicate, the sequence of the event stored first); zero when the
	// event was not stored.
	Sequence uint64
	// Duplicate reports that the stream already held an event with this ID,
	// published within its duplicate window: nothing new was stored.
	Duplicate bool
	// Err is why the event was not stored (or may not have been: a
	// cancelled wait), nil once it was. [Topic.Publish] also returns it as
	// its error.
	Err error
}

// Publish publishes one event and returns once JetStream has stored it
// (the publish acknowledgement), with the event's message ID and stream
// sequence. An event that breaks the topic's schema (T's validation tags)
// is not published: the error is a 422 *[Error] with the code
// "invalid_event" and a field error for each problem, located at
// event.<field>. Any other failure is an error to retry with the same
// message ID (PublishMessageID(result.ID)), so an event that was in fact
// stored is not stored twice.
func (t Topic[T]) Publish(ctx context.Context, c *Client, event *T, opts ...PublishOption) (PublishResult, error) {
	return t.publish(ctx, c, event, "", publishValidator(declOf(t)), opts)
}

// publish publishes one event on behalf of source ("" when none).
func (t Topic[T]) publish(ctx context.Context, c *Client, event *T, source string, validate func([]byte) error, opts []PublishOption) (_ PublishResult, err error) {
	o, err := t.options(opts, false)
	if err != nil {
		return PublishResult{}, err
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	res := PublishResult{ID: o.id}
	if res.ID == "" {
		res.ID = nuid.Next()
	}
	ctx, end := startPublishSpan(ctx, t.Name, 1, res.ID)
	defer func() { end(err) }()
	fail := func(err error) (PublishResult, error) {
		res.Err = err
		return res, err
	}
	data, err := t.encode(event, validate)
	if err != nil {
		return fail(t.invalid(err, "event"))
	}
	if _, err := t.jetStream(c); err != nil {
		return fail(err)
	}
	ack, err := c.publish(ctx, t.Name, source, t.message(ctx, data, res.ID, source, o.header))
	if err != nil {
		return fail(err)
	}
	res.Sequence, res.Duplicate = ack.Sequence, ack.Duplicate
	return res, nil
}

// publishNow publishes an event's message on topic and waits for its
// acknowledgement.
func (c *Client) publishNow(ctx context.Context, topic string, msg *nats.Msg) (*jetstream.PubAck, error) {
	if fe := c.unavailable(); fe != nil {
		return nil, fe
	}
	js, err := c.jetStream()
	if err != nil {
		return nil, err
	}
	ack, err := js.PublishMsg(ctx, msg, jetstream.WithExpectStream(naming.TopicStream(topic)))
	if err != nil {
		return nil, publishError(topic, err)
	}
	return ack, nil
}

// publishInTurn publishes an event of a batch when its turn comes, lets
// the next one go, and waits for its acknowledgement.
func (c *Client) publishInTurn(ctx context.Context, topic string, msg *nats.Msg, turn *batchTurn) (*jetstream.PubAck, error) {
	turn.wait()
	f, err := c.publishAsync(ctx, topic, msg)
	turn.pass()
	if err != nil {
		return nil, err
	}
	return awaitAck(ctx, topic, f)
}

// publishAsync sends an event's message on topic without waiting for its
// acknowledgement.
func (c *Client) publishAsync(ctx context.Context, topic string, msg *nats.Msg) (jetstream.PubAckFuture, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ferry: publish %s: %w", topic, err)
	}
	js, err := c.jetStream()
	if err != nil {
		return nil, err
	}
	f, err := js.PublishMsgAsync(msg, jetstream.WithExpectStream(naming.TopicStream(topic)))
	if err != nil {
		return nil, publishError(topic, err)
	}
	return f, nil
}

// awaitAck waits for the acknowledgement of an event sent with
// publishAsync.
func awaitAck(ctx context.Context, topic string, f jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, publishError(topic, err)
	case <-ctx.Done():
		return nil, fmt.Errorf("ferry: publish %s: stored or not, unknown: %w", topic, ctx.Err())
	}
}

// PublishBatch publishes events without waiting for each acknowledgement
// in turn, then waits for all of them: for throughput. It returns one
// result per event, in order, each with its message ID (given with
// [PublishMessageIDs], or generated), its stream sequence and its own error;
// the error returned is nil when every event was stored, and otherwise
// wraps the first failure. Publish the failed events again with their
// result IDs: an event that was in fact stored is not stored twice.
//
// If an event breaks the topic's schema, nothing is published: the
// results are nil and the error is a 422 *[Error] ("invalid_event") whose
// field errors are located at events[i].<field>.
func (t Topic[T]) PublishBatch(ctx context.Context, c *Client, events []*T, opts ...PublishOption) ([]PublishResult, error) {
	return t.publishBatch(ctx, c, events, "", publishValidator(declOf(t)), opts)
}

func (t Topic[T]) publishBatch(ctx context.Context, c *Client, events []*T, source string, validate func([]byte) error, opts []PublishOption) (_ []PublishResult, err error) {
	o, err := t.options(opts, true)
	if err != nil {
		return nil, err
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	ctx, end := startPublishSpan(ctx, t.Name, len(events), "")
	defer func() { end(err) }()
	if o.ids != nil && len(o.ids) != len(events) {
		return nil, fmt.Errorf("ferry: publish %s: %d message IDs for %d events", t.Name, len(o.ids), len(events))
	}
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
			return nil, fmt.Errorf("ferry: publish %s: events[%d]: %w", t.Name, i, err)
		}
		payloads[i] = data
	}
	if len(invalid) > 0 {
		return nil, t.invalidEvents(fmt.Sprintf("%d of the %d events break", len(causes), len(events)), invalid, errors.Join(causes...))
	}
	if _, err := t.jetStream(c); err != nil {
		return nil, err
	}
	if fe := c.unavailable(); fe != nil {
		return nil, fe
	}

	results := make([]PublishResult, len(events))
	msgs := make([]*nats.Msg, len(events))
	for i, data := range payloads {
		r := &results[i]
		if o.ids != nil {
			r.ID = o.ids[i]
		}
		if r.ID == "" {
			r.ID = nuid.Next()
		}
		msgs[i] = t.message(ctx, data, r.ID, source, o.header)
	}
	if c.send != nil {
		c.publishBatch(ctx, t.Name, source, msgs, results)
	} else {
		futures := make([]jetstream.PubAckFuture, len(events))
		for i, msg := range msgs {
			futures[i], results[i].Err = c.publishAsync(ctx, t.Name, msg)
		}
		for i, f := range futures {
			if f == nil {
				continue
			}
			r := &results[i]
			ack, err := awaitAck(ctx, t.Name, f)
			if err != nil {
				r.Err = err
				continue
			}
			r.Sequence, r.Duplicate = ack.Sequence, ack.Duplicate
		}
	}
	failed := 0
	var first error
	for _, r := range results {
		if r.Err != nil {
			failed++
			if first == nil {
				first = r.Err
			}
		}
	}
	if failed > 0 {
		return results, fmt.Errorf("ferry: publish %s: %d of %d events not stored (publish them again with their result IDs): %w", t.Name, failed, len(events), first)
	}
	return results, nil
}

// options applies opts, refusing the ID options of the other kind of
// publish.
func (t Topic[T]) options(opts []PublishOption, batch bool) (publishOptions, error) {
	var o publishOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	switch {
	case o.err != nil:
		return o, fmt.Errorf("ferry: publish %s: %w", t.Name, o.err)
	case o.set > 1:
		return o, fmt.Errorf("ferry: publish %s: message IDs given twice", t.Name)
	case batch && o.id != "":
		return o, fmt.Errorf("ferry: publish %s: PublishMessageID on a batch; use PublishMessageIDs", t.Name)
	case !batch && o.ids != nil:
		return o, fmt.Errorf("ferry: publish %s: PublishMessageIDs on a single event; use PublishMessageID", t.Name)
	}
	return o, nil
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

// jetStream returns the client's JetStream context.
func (t Topic[T]) jetStream(c *Client) (jetstream.JetStream, error) {
	if c == nil || c.nc == nil {
		return nil, fmt.Errorf("ferry: publish %s: %w", t.Name, errNoClient)
	}
	return c.jetStream()
}

// message is the event as published: its payload, message ID, content
// type, source service, the request ID and trace context of ctx, and the
// headers of the publish's options.
func (t Topic[T]) message(ctx context.Context, data []byte, id, source string, header http.Header) *nats.Msg {
	msg := nats.NewMsg(t.Subject)
	msg.Data = data
	msg.Header.Set(naming.HeaderMsgID, id)
	msg.Header.Set("Content-Type", "application/json")
	if source != "" {
		msg.Header.Set(naming.HeaderSource, source)
	}
	propagate(ctx, msg.Header.Set)
	for k, vs := range header {
		msg.Header[k] = vs
	}
	return msg
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

// publishError is the error of a publish to topic that JetStream refused
// or did not answer.
func publishError(topic string, err error) error {
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && (apiErr.ErrorCode == jsErrStreamStoreFailed && strings.Contains(apiErr.Description, "maximum") ||
		apiErr.ErrorCode == jsErrInsufficientResources):
		return &Error{Status: http.StatusInsufficientStorage, Code: "topic_full",
			Detail: "topic " + topic + " is full; nothing was published", cause: errors.Join(ErrTopicFull, err)}
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return &Error{Status: http.StatusServiceUnavailable, Code: "no_stream",
			Detail: "topic " + topic + " has no stream yet (no service declaring it has started) or the broker is unavailable", cause: err}
	}
	return fmt.Errorf("ferry: publish %s: %w", topic, err)
}
