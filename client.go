package ferry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/envelope"
	"github.com/ferrygo/ferry/internal/naming"
	"github.com/ferrygo/ferry/internal/natsproto"
)

// DefaultCallTimeout is the budget of a call whose context has no deadline.
const DefaultCallTimeout = 10 * time.Second

// Errors a call can end with besides the callee's own, matched with
// errors.Is through the [*CallError] of the call (ErrNoResponders has
// status 503, ErrCallTimeout 504, ErrBrokerUnavailable 503; a publish
// fails with ErrBrokerUnavailable in a 503 *[Error]).
var (
	// ErrNoResponders: no instance of the service serves the endpoint.
	ErrNoResponders = errors.New("ferry: no responders")
	// ErrCallTimeout: the call's deadline passed before an answer came.
	ErrCallTimeout = errors.New("ferry: call timed out")
	// ErrBrokerUnavailable: the client's broker connection is down
	// (reconnecting or closed); a call or publish fails at once (503
	// broker_unavailable) instead of waiting out its deadline.
	ErrBrokerUnavailable = errors.New("ferry: broker unavailable")
)

// errNoClient is the error of a call made without a client, with the two
// usual causes and their fixes.
var errNoClient = errors.New("no client: add ferry.WithNATS() to the calling service, " +
	"and call svc.Client() inside a handler (it is nil before the host starts)")

// Client calls endpoints of other services over NATS. A service's client
// is [Service.Client]; [NewClient] makes one from any connection. Every
// call and publish passes through the client's [ClientMiddleware], if it
// has any. A Client is safe for concurrent use.
type Client struct {
	nc   *nats.Conn
	hint string // added to a no-responders error: why nobody may answer
	js   *clientJS
	mws  []ClientMiddleware
	send ClientHandler // mws over transport; nil without middleware
}

// clientJS is the JetStream context of a connection, made once and shared
// by the clients on it.
type clientJS struct {
	once sync.Once
	js   jetstream.JetStream
	err  error
	// replicas is the stream replicas of what the clients create (the
	// host's FERRY_STREAM_REPLICAS; 1 for a client made by NewClient).
	replicas int
	// callMax caps how long a call waits for its answer (the host's
	// Config.CallTimeoutMax; DefaultCallTimeoutMax for a client made by
	// NewClient).
	callMax time.Duration
	jobs    clientJobs
}

// callMax is how long a call waits for its answer, at most, unless the
// endpoint's Timeout or the call's CallTimeout says longer.
func (c *Client) callMax() time.Duration {
	if c.js.callMax > 0 {
		return c.js.callMax
	}
	return DefaultCallTimeoutMax
}

// replicas is how many replicas what the client creates gets.
func (c *Client) replicas() int { return max(1, c.js.replicas) }

// NewClient returns a client that calls over nc.
func NewClient(nc *nats.Conn, opts ...ClientOption) *Client {
	c := &Client{nc: nc, js: new(clientJS)}
	for _, opt := range opts {
		if opt != nil {
			opt(c)
		}
	}
	c.build()
	return c
}

// Conn returns the client's NATS connection.
func (c *Client) Conn() *nats.Conn { return c.nc }

// Call calls the endpoint over NATS with in and returns its output. The
// call carries ctx's remaining time (without a deadline,
// DefaultCallTimeout, or the endpoint's Timeout and a second when longer;
// a deadline further than Config.CallTimeoutMax — the cap every callee
// puts on a call — is cut to it, so an answer lost with a broker node
// fails the call instead of holding a job for its whole timeout;
// [CallTimeout] sets it), the request ID of the call being
// handled, if any, its W3C trace context (a client span's, with tracing
// on: docs/tracing.md), and the headers of opts
// ([CallHeader]); it passes through the client's middleware.
//
// A call that was sent fails with a [*CallError]: the callee's problem as
// it answered it (status, code, detail, field errors; errors.As finds it as
// an *[Error] too), or one made here — 503 no_responders (errors.Is
// [ErrNoResponders]), 504 deadline_exceeded (errors.Is [ErrCallTimeout]
// and context.DeadlineExceeded), 413 request_too_large when the request
// exceeds the broker's max payload, 503 broker_unavailable at once while
// the connection is down (errors.Is [ErrBrokerUnavailable]), 502 bad_reply
// for a reply that cannot be read. A handler that returns it answers its
// own caller 502, 503 or 504, not the callee's problem, unless it passes it
// on ([PassOn]); see [CallError]. A call that cannot be made fails with an
// *Error: 500 endpoint_without_service when ep has no Service, 500
// endpoint_http_only when ep is HTTPOnly (not served over NATS); a
// cancelled ctx returns context.Canceled; a client middleware's refusal is
// returned as it is.
func (ep Endpoint[In, Out]) Call(ctx context.Context, c *Client, in *In, opts ...CallOption) (_ *Out, err error) {
	if ep.Service == "" {
		return nil, &Error{Status: http.StatusInternalServerError, Code: "endpoint_without_service",
			Detail: "the endpoint value " + ep.Name + " declares no Service, so it cannot be called; set Endpoint.Service to the name of the service that serves it"}
	}
	if ep.HTTPOnly {
		return nil, &Error{Status: http.StatusInternalServerError, Code: "endpoint_http_only",
			Detail: "the endpoint " + ep.Service + "." + ep.Name + " is HTTPOnly: it is not served over NATS, so it cannot be called with a client; call it over HTTP"}
	}
	if c == nil || c.nc == nil {
		return nil, fmt.Errorf("ferry: call %s.%s: %w", ep.Service, ep.Name, errNoClient)
	}
	var o *callOptions
	if len(opts) > 0 {
		o = newCallOptions(opts)
		if o.err != nil {
			return nil, fmt.Errorf("ferry: call %s.%s: %w", ep.Service, ep.Name, o.err)
		}
	}
	if in == nil {
		in = new(In)
	}
	ctx, end := startCallSpan(ctx, ep.Service, ep.Name)
	defer func() { end(err) }()
	req, err := envelope.EncodeInput(in)
	if err != nil {
		return nil, fmt.Errorf("ferry: call %s.%s: %w", ep.Service, ep.Name, err)
	}
	if o != nil && o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	} else if deadline, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, max(DefaultCallTimeout, ep.Timeout+time.Second))
		defer cancel()
	} else if limit := max(c.callMax(), ep.Timeout+time.Second); time.Until(deadline) > limit {
		// A job's or a workflow step's context lasts for many minutes: an
		// answer lost with a broker node would hold the caller for all of
		// them, although no callee runs a call longer than its cap.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	req.Header.Set(naming.HeaderTimeout, natsproto.FormatBudget(time.Until(deadline)))
	propagate(ctx, req.Header.Set)
	if o != nil {
		o.setHeaders(req.Header)
	}
	resp, err := c.call(ctx, ep.Service, ep.Name, naming.EndpointSubject(ep.Service, ep.Name), req)
	if err != nil {
		return nil, err
	}
	out := new(Out)
	if err := envelope.DecodeOutput(resp, out); err != nil {
		return nil, badReply(ep.Service, ep.Name, err)
	}
	return out, nil
}

// roundTrip sends a call's request and returns the callee's successful
// answer, or the *CallError of its failure.
func (c *Client) roundTrip(ctx context.Context, subject, service, endpoint string, req *envelope.Request) (*envelope.Response, error) {
	if fe := c.unavailable(); fe != nil {
		return nil, callFailed(service, endpoint, fe)
	}
	reply, err := c.nc.RequestMsgWithContext(ctx, natsproto.EncodeRequest(subject, req))
	if err != nil {
		return nil, transportError(ctx, service, endpoint, c.hint, err)
	}
	resp, err := natsproto.DecodeResponse(reply)
	if err != nil {
		return nil, badReply(service, endpoint, err)
	}
	if resp.Status >= 400 {
		return nil, callFailed(service, endpoint, decodeProblem(resp))
	}
	return resp, nil
}

// unavailable returns the 503 of a client whose connection is down, or nil.
func (c *Client) unavailable() *Error {
	if st := c.nc.Status(); st != nats.CONNECTED {
		return &Error{Status: http.StatusServiceUnavailable, Code: "broker_unavailable",
			Detail: "the broker connection is " + strings.ToLower(st.String()) + "; try again shortly",
			Header: http.Header{"Retry-After": {"1"}}, cause: ErrBrokerUnavailable}
	}
	return nil
}

// decodeProblem turns an error reply into the callee's *Error.
func decodeProblem(resp *envelope.Response) *Error {
	fe := &Error{}
	if err := json.Unmarshal(resp.Body.Bytes(), fe); err != nil || fe.Status == 0 {
		fe = &Error{Status: resp.Status, Detail: natsproto.ProblemDetail(resp.Body.Bytes(), resp.Status)}
	}
	fe.Status = resp.Status
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		fe.Header = http.Header{"Retry-After": {ra}}
	}
	return fe
}
