package ferry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/envelope"
)

// OutgoingMessage is the transport-neutral view of one outgoing call,
// event or job as it passes through a [Client]'s [ClientMiddleware]: a
// call of an endpoint ([Endpoint.Call]), an event published
// ([Topic.Publish], [Publisher.Publish] and each event of a batch), or a
// job enqueued ([Job.Enqueue]). Client middleware reads it
// to report (metrics, traces) and sets headers to pass things on (trace
// context, credentials); the input is already encoded, so it carries the
// body as bytes.
//
// An OutgoingMessage belongs to the goroutine running the chain.
type OutgoingMessage struct {
	// Kind is KindEndpoint for a call, KindEvent for a publish, KindJob
	// for an enqueue.
	Kind Kind
	// Subject is the NATS subject it is sent on.
	Subject string
	// Service is the service called; for a publish, the publishing service
	// ([Publisher]), or "" ([Topic.Publish]).
	Service string
	// Endpoint is the name of the endpoint called; "" for a publish.
	Endpoint string
	// Topic is the name of the topic published, or of the job kind
	// enqueued; "" for a call.
	Topic string
	// Header holds the headers sent, keyed canonically: the request ID and
	// trace context of the request being handled, the per-call headers
	// ([CallHeader], [PublishHeader]) and Ferry's own (Ferry-*, Nats-*,
	// Content-Type). Middleware may set and replace headers, but must leave
	// Ferry's own alone.
	Header http.Header
	// Body is the encoded body (JSON), shared with the message sent: read
	// it, never modify it.
	Body []byte

	req  *envelope.Request      // a call's request
	resp *envelope.Response     // a call's successful answer
	msg  *nats.Msg              // an event's or a job's message
	ack  *jetstream.PubAck      // its acknowledgement
	opts []jetstream.PublishOpt // a job's publish options (stream, schedule)
	turn *batchTurn             // an event of a batch: when it may be sent
}

// ClientHandler sends one outgoing message and reports its outcome: nil
// once the callee answered with success (a call) or the topic's stream
// stored the event (a publish); otherwise the error its caller gets: for a
// call a [*CallError] (the callee's problem, or no answer), for a publish
// the publish's error. The innermost ClientHandler of a [Client] is the
// transport's: it sends and waits.
type ClientHandler func(ctx context.Context, msg *OutgoingMessage) error

// ClientMiddleware wraps a [ClientHandler]: the client-side counterpart of
// [Middleware], through which every call and publish of a [Client] passes.
// A client middleware may set headers before calling next (trace context,
// an Authorization header), refuse by returning an error without calling
// next (the caller gets that error as it is), or observe next's outcome
// (status: errors.As to a *CallError; latency). Calling next again sends
// again (a retry); an event sent again keeps its message ID, so its stream
// stores it once.
//
// Client middleware is set for every client of a host or service with
// [WithClientMiddleware], or for one client with [ClientWithMiddleware].
type ClientMiddleware func(next ClientHandler) ClientHandler

// ClientOption adjusts a [Client] made with [NewClient]; like every option
// of one operation it is named for it.
type ClientOption func(*Client)

// ClientWithMiddleware appends client middleware to the client's chain; the
// first given is the outermost. Nil middleware is ignored.
func ClientWithMiddleware(mws ...ClientMiddleware) ClientOption {
	return func(c *Client) {
		for _, m := range mws {
			if m != nil {
				c.mws = append(c.mws, m)
			}
		}
	}
}

// WithClientMiddleware appends client middleware to the chain every call
// ([Endpoint.Call] with [Service.Client]) and publish ([Publisher]) of the
// service passes through; the first given is the outermost. Given to a
// host, it applies to the clients of all its services, outside the
// services' own. Service and Host.
func WithClientMiddleware(mws ...ClientMiddleware) Option {
	return func(o *options) error {
		for _, m := range mws {
			if m == nil {
				return errors.New("ferry: WithClientMiddleware: nil middleware")
			}
		}
		o.clientMiddleware = append(o.clientMiddleware, mws...)
		return nil
	}
}

// build composes the client's chain over its transport; without
// middleware the chain is nil and calls go straight to the transport.
func (c *Client) build() {
	c.send = nil
	if len(c.mws) == 0 {
		return
	}
	h := ClientHandler(c.transport)
	for i := len(c.mws) - 1; i >= 0; i-- {
		h = c.mws[i](h)
	}
	c.send = h
}

// with returns a client on the same connection whose chain adds mws
// inside c's; c itself when mws is empty.
func (c *Client) with(mws []ClientMiddleware) *Client {
	if len(mws) == 0 {
		return c
	}
	d := &Client{nc: c.nc, hint: c.hint, js: c.js, mws: append(append([]ClientMiddleware(nil), c.mws...), mws...)}
	d.build()
	return d
}

// transport is the innermost ClientHandler: it sends the message and
// waits for its answer or acknowledgement.
func (c *Client) transport(ctx context.Context, m *OutgoingMessage) error {
	switch {
	case m.req != nil:
		m.req.Header = m.Header
		resp, err := c.roundTrip(ctx, m.Subject, m.Service, m.Endpoint, m.req)
		m.resp = resp
		return err
	case m.msg != nil && m.Kind == KindJob:
		m.msg.Header = nats.Header(m.Header)
		stripCredentials(m.msg.Header)
		var err error
		m.ack, err = c.enqueueNow(ctx, m.Topic, m.msg, m.opts)
		return err
	case m.msg != nil:
		m.msg.Header = nats.Header(m.Header)
		stripCredentials(m.msg.Header)
		var err error
		if m.turn != nil {
			m.ack, err = c.publishInTurn(ctx, m.Topic, m.msg, m.turn)
		} else {
			m.ack, err = c.publishNow(ctx, m.Topic, m.msg)
		}
		return err
	}
	return errors.New("ferry: an outgoing message that is neither a call nor an event")
}

// call sends a call's request through the client's chain and returns the
// callee's successful answer.
func (c *Client) call(ctx context.Context, service, endpoint, subject string, req *envelope.Request) (*envelope.Response, error) {
	noteCall(ctx, service, endpoint) // for the calling service's AsyncAPI document
	if c.send == nil {
		return c.roundTrip(ctx, subject, service, endpoint, req)
	}
	m := &OutgoingMessage{Kind: KindEndpoint, Subject: subject, Service: service, Endpoint: endpoint, Header: req.Header, Body: req.Body, req: req}
	if err := c.send(ctx, m); err != nil {
		return nil, err
	}
	if m.resp == nil {
		return nil, fmt.Errorf("ferry: call %s.%s: a client middleware returned success without sending the call", service, endpoint)
	}
	return m.resp, nil
}

// publish sends an event through the client's chain and returns its
// acknowledgement.
func (c *Client) publish(ctx context.Context, topic, source string, msg *nats.Msg) (*jetstream.PubAck, error) {
	if c.send == nil {
		return c.publishNow(ctx, topic, msg)
	}
	m := eventMessage(topic, source, msg)
	if err := c.send(ctx, m); err != nil {
		return nil, err
	}
	if m.ack == nil {
		return nil, fmt.Errorf("ferry: publish %s: a client middleware returned success without publishing the event", topic)
	}
	return m.ack, nil
}

// enqueue sends a job's message through the client's chain and returns
// its acknowledgement.
func (c *Client) enqueue(ctx context.Context, job string, msg *nats.Msg, opts []jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if c.send == nil {
		return c.enqueueNow(ctx, job, msg, opts)
	}
	m := &OutgoingMessage{Kind: KindJob, Subject: msg.Subject, Topic: job, Header: http.Header(msg.Header), Body: msg.Data, msg: msg, opts: opts}
	if err := c.send(ctx, m); err != nil {
		return nil, err
	}
	if m.ack == nil {
		return nil, fmt.Errorf("ferry: enqueue %s: a client middleware returned success without enqueueing the job", job)
	}
	return m.ack, nil
}

// enqueueNow publishes a job's message and waits for its acknowledgement.
func (c *Client) enqueueNow(ctx context.Context, job string, msg *nats.Msg, opts []jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if fe := c.unavailable(); fe != nil {
		return nil, fe
	}
	js, err := c.jetStream()
	if err != nil {
		return nil, err
	}
	ack, err := js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		return nil, jobPublishError(job, err)
	}
	return ack, nil
}

func eventMessage(topic, source string, msg *nats.Msg) *OutgoingMessage {
	return &OutgoingMessage{Kind: KindEvent, Subject: msg.Subject, Service: source, Topic: topic,
		Header: http.Header(msg.Header), Body: msg.Data, msg: msg}
}

// batchWindow bounds how many events of a batch are inside the client's
// middleware at once.
const batchWindow = 256

// batchTurn orders the events of a batch sent through middleware: each
// is sent after the one before it was sent (or given up), so a batch is
// stored in order, while the acknowledgements are awaited together.
type batchTurn struct {
	prev <-chan struct{} // closed when the event before may be overtaken
	done chan struct{}   // closed when this one may be
	once sync.Once
}

// wait blocks until the event before has been sent or given up.
func (t *batchTurn) wait() { <-t.prev }

// pass lets the next event be sent; later calls do nothing.
func (t *batchTurn) pass() { t.once.Do(func() { close(t.done) }) }

// publishBatch sends the events of a batch through the client's chain,
// each in its own goroutine (at most batchWindow at once) so that their
// acknowledgements are awaited together, and records each outcome in
// results.
func (c *Client) publishBatch(ctx context.Context, topic, source string, msgs []*nats.Msg, results []PublishResult) {
	slots := make(chan struct{}, batchWindow)
	prev := make(chan struct{})
	close(prev)
	var wg sync.WaitGroup
	for i, msg := range msgs {
		r := &results[i]
		m := eventMessage(topic, source, msg)
		m.turn = &batchTurn{prev: prev, done: make(chan struct{})}
		prev = m.turn.done
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			r.Err = c.sendInBatch(ctx, m)
			if r.Err == nil {
				r.Sequence, r.Duplicate = m.ack.Sequence, m.ack.Duplicate
			}
		})
	}
	wg.Wait()
}

// sendInBatch runs the chain for one event of a batch and lets the next
// one go, whatever the chain did: a panic in a middleware fails the event,
// not the process.
func (c *Client) sendInBatch(ctx context.Context, m *OutgoingMessage) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("ferry: publish %s: a client middleware panicked: %v", m.Topic, v)
		}
		m.turn.wait()
		m.turn.pass()
	}()
	if err := c.send(ctx, m); err != nil {
		return err
	}
	if m.ack == nil {
		return fmt.Errorf("ferry: publish %s: a client middleware returned success without publishing the event", m.Topic)
	}
	return nil
}
