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

// Errors a call can end with besides the callee's own; each is also an
// *Error (ErrNoResponders a 503, ErrCallTimeout a 504) so a handler that
// returns it answers its own caller sensibly.
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
// is [Service.Client]; [NewClient] makes one from any connection. A Client
// is safe for concurrent use.
type Client struct {
	nc     *nats.Conn
	hint   string // added to a no-responders error: why nobody may answer
	jsOnce sync.Once
	js     jetstream.JetStream
	jsErr  error
}

// NewClient returns a client that calls over nc.
func NewClient(nc *nats.Conn) *Client { return &Client{nc: nc} }

// Conn returns the client's NATS connection.
func (c *Client) Conn() *nats.Conn { return c.nc }

// Call calls the endpoint over NATS with in and returns its output. The
// call carries ctx's remaining time (DefaultCallTimeout without a
// deadline), the request ID of the call being handled, if any, and its W3C
// trace context. A failure is an *[Error]: the callee's problem as it
// answered it (status, code, detail, field errors), or one made here —
// 503 no_responders (errors.Is [ErrNoResponders]), 504 deadline_exceeded
// (errors.Is [ErrCallTimeout] and context.DeadlineExceeded), 413 when the
// request exceeds the broker's max payload, 500 endpoint_without_service
// when ep has no Service, 500 endpoint_http_only when ep is HTTPOnly (not
// served over NATS), 503 broker_unavailable at once while the connection
// is down (errors.Is [ErrBrokerUnavailable]); a cancelled ctx returns
// context.Canceled.
func (ep Endpoint[In, Out]) Call(ctx context.Context, c *Client, in *In) (_ *Out, err error) {
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
	if fe := c.unavailable(); fe != nil {
		return nil, fe
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
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	req.Header.Set(naming.HeaderTimeout, natsproto.FormatBudget(time.Until(deadline)))
	propagate(ctx, req.Header.Set)
	msg := natsproto.EncodeRequest(naming.EndpointSubject(ep.Service, ep.Name), req)
	reply, err := c.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return nil, ep.callError(ctx, c, err)
	}
	resp, err := natsproto.DecodeResponse(reply)
	if err != nil {
		return nil, fmt.Errorf("ferry: call %s.%s: %w", ep.Service, ep.Name, err)
	}
	if resp.Status >= 400 {
		return nil, decodeProblem(resp)
	}
	out := new(Out)
	if err := envelope.DecodeOutput(resp, out); err != nil {
		return nil, fmt.Errorf("ferry: call %s.%s: %w", ep.Service, ep.Name, err)
	}
	return out, nil
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

// callError maps a transport failure to the error a caller gets.
func (ep Endpoint[In, Out]) callError(ctx context.Context, c *Client, err error) error {
	target := ep.Service + "." + ep.Name
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return &Error{Status: http.StatusServiceUnavailable, Code: "no_responders",
			Detail: "no instance of service " + ep.Service + " serves " + ep.Name + c.hint, cause: errors.Join(ErrNoResponders, err)}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return &Error{Status: http.StatusGatewayTimeout, Code: "deadline_exceeded",
			Detail: "no answer from " + target + " within the call's deadline", cause: errors.Join(ErrCallTimeout, context.DeadlineExceeded)}
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("ferry: call %s: %w", target, ctx.Err())
	case errors.Is(err, nats.ErrMaxPayload):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "request_too_large",
			Detail: "the request exceeds the broker's max payload", cause: err}
	}
	return &Error{Status: http.StatusServiceUnavailable, Detail: "call " + target + " failed: " + err.Error(), cause: err}
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
