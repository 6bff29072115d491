package ferry

import (
	"context"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
)

// Kind says what sort of work a [Request] is.
type Kind string

// The kinds of work that pass through a service's middleware.
const (
	// KindEndpoint is a call of an endpoint, over HTTP or NATS.
	KindEndpoint Kind = "endpoint"
	// KindEvent is a message delivered to a subscription.
	KindEvent Kind = "event"
	// KindJob is a run of a job's handler.
	KindJob Kind = "job"
)

// Transport names, as found in [Request.Transport].
const (
	TransportHTTP = "http"
	TransportNATS = "nats"
)

// transportMemory names calls run in memory, without HTTP or NATS: the
// transport tests compare the others with.
const transportMemory = "memory"

// HeaderRequestID is the header that carries a request ID, over HTTP and
// NATS alike. A valid incoming ID is kept; otherwise Ferry makes one.
const HeaderRequestID = "X-Request-Id"

// Request is the transport-neutral view of one unit of work as it passes
// through a service's [Middleware]: an endpoint call arriving over HTTP or
// NATS, or an event delivered to a subscription. Middleware reads
// it to decide (authentication, limits) and to report (logs, metrics,
// traces); the typed input is decoded after the middleware, by the
// transport, so a Request carries metadata, not the payload.
//
// A Request belongs to one goroutine: the one running the chain.
type Request struct {
	// Kind is what sort of work this is.
	Kind Kind
	// Service is the name of the service handling it.
	Service string
	// Name is the stable name of the endpoint, or of the subscription's
	// consumer.
	Name string
	// Transport is how it arrived: TransportHTTP or TransportNATS.
	Transport string
	// ID is the request ID: the caller's X-Request-Id when valid, otherwise
	// a fresh one. It is echoed in the response and in every problem body.
	ID string

	header  func(name string) string
	invoke  func(ctx context.Context) error // the transport's innermost step
	outcome *Error                          // the error answered, once known
	logger  *slog.Logger                    // the service's logger
	// Limits (limits.go, overload.go): a streaming endpoint's call, exempt
	// from the write timeout and the concurrency limit; the slot it holds.
	streaming bool
	slot      limitSlot

	principal *Principal // the verified caller, once known (auth.go)
	// linkTrace: the incoming trace context is untrusted (an HTTP request
	// under TraceLink) and is not passed on.
	linkTrace bool
	// endpoint is an endpoint call's Huma side (http.go), which gives the
	// headers and the innermost step instead of header and invoke.
	endpoint *endpointCall
	// calls records the endpoints the handler calls, for the service's
	// AsyncAPI document (asyncapicalls.go).
	calls *callLog
}

// Header returns the value of the named request header (HTTP header or NATS
// message header), matched case-insensitively; "" when absent.
func (r *Request) Header(name string) string {
	switch {
	case r.endpoint != nil:
		return r.endpoint.get(name)
	case r.header == nil:
		return ""
	}
	return r.header(name)
}

// step runs the transport's innermost step.
func (r *Request) step(ctx context.Context) error {
	if r.endpoint != nil {
		return r.endpoint.run(ctx)
	}
	return r.invoke(ctx)
}

type requestKey struct{}

// RequestFromContext returns the Request being handled, or nil outside a
// Ferry handler.
func RequestFromContext(ctx context.Context) *Request {
	r, _ := ctx.Value(requestKey{}).(*Request)
	return r
}

// RequestIDFromContext returns the ID of the request being handled, or "".
func RequestIDFromContext(ctx context.Context) string {
	if r := RequestFromContext(ctx); r != nil {
		return r.ID
	}
	return ""
}

func withRequest(ctx context.Context, r *Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// requestID returns incoming when it is a plausible request ID (1 to 128
// printable ASCII characters without spaces or quotes), otherwise a new
// random 16-hex-digit ID. Request IDs correlate logs; they are not secrets.
func requestID(incoming string) string {
	if validRequestID(incoming) {
		return incoming
	}
	var b [8]byte
	v := rand.Uint64()
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return hex.EncodeToString(b[:])
}

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// propagate passes the request being handled on to an outgoing call or
// event, through set: its request ID, and the W3C trace context of ctx
// (propagateTrace, tracing.go).
func propagate(ctx context.Context, set func(name, value string)) {
	req := RequestFromContext(ctx)
	if req != nil {
		set(HeaderRequestID, req.ID)
	}
	propagateTrace(ctx, req, set)
}
