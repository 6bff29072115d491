// Package tracing is Ferry's OpenTelemetry tracing: an observer
// (internal/telemetry) that starts a span for each HTTP request, NATS call
// and event delivery a service takes, the client and producer spans of
// outgoing calls and publishes, W3C trace context in and out of headers
// through the SDK's TraceContext propagator, and the tracer provider
// configured by the standard OTEL_* environment variables.
//
// Tracing is off unless configured: without a tracer provider the root
// package joins no tracing observer, and the client side finds no span in
// its context and starts none.
package tracing

import (
	"context"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrygo/ferry/internal/telemetry"
)

// Scope is the instrumentation scope of Ferry's spans.
const Scope = "github.com/ferrygo/ferry"

// Attributes Ferry adds to the semantic conventions' own.
const (
	AttrRequestID = attribute.Key("ferry.request_id")
	AttrService   = attribute.Key("ferry.service")
	AttrResult    = attribute.Key("ferry.result")
	AttrAttempt   = attribute.Key("ferry.delivery.attempt")
	// A workflow step's span: its workflow, step name and run ID.
	AttrWorkflow = attribute.Key("ferry.workflow")
	AttrStep     = attribute.Key("ferry.workflow.step")
	AttrRun      = attribute.Key("ferry.workflow.run")
)

// RPCSystem is the rpc.system.name of calls over NATS request/reply.
const RPCSystem = "nats"

// MessagingSystem is the messaging.system of events (JetStream).
const MessagingSystem = "nats"

// propagator is the W3C trace context propagator (traceparent and
// tracestate); baggage is not propagated.
var propagator propagation.TextMapPropagator = propagation.TraceContext{}

// header is a propagation.TextMapCarrier over incoming headers. Keys are
// matched as canonical MIME keys ("Traceparent"), then as given
// ("traceparent"), since NATS headers are matched exactly (an http.Header
// matches canonical keys only).
type header struct {
	h telemetry.Header
}

func (h header) Get(key string) string {
	if h.h == nil {
		return ""
	}
	ck := canonicalKey(key)
	if v := h.h.Get(ck); v != "" {
		return v
	}
	if _, ok := h.h.(http.Header); ok || ck == key {
		return ""
	}
	return h.h.Get(key)
}

// canonicalKey is textproto.CanonicalMIMEHeaderKey without an allocation
// for the keys the propagator reads.
func canonicalKey(key string) string {
	switch key {
	case "traceparent":
		return "Traceparent"
	case "tracestate":
		return "Tracestate"
	}
	return textproto.CanonicalMIMEHeaderKey(key)
}

func (header) Set(string, string) {}

func (h header) Keys() []string { return nil }

// Extract returns the span context of the W3C trace context that get reads
// (invalid when there is none or it is malformed).
func Extract(get func(string) string) trace.SpanContext {
	if get == nil {
		return trace.SpanContext{}
	}
	return extract(header{telemetry.HeaderFunc(get)})
}

func extract(h header) trace.SpanContext {
	if h.Get("traceparent") == "" {
		return trace.SpanContext{} // the common case, without the propagator
	}
	ctx := propagator.Extract(context.Background(), h)
	return trace.SpanContextFromContext(ctx)
}

// Inject writes the trace context of the span in ctx through set, as
// canonical header names (Traceparent, Tracestate). It reports whether ctx
// carries a span to write; when it does not, nothing is written.
func Inject(ctx context.Context, set func(name, value string)) bool {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return false
	}
	// Through a map, so that set does not escape: a caller passing a
	// method value (req.Header.Set) then allocates nothing with tracing off.
	carrier := make(propagation.MapCarrier, 2)
	propagator.Inject(ctx, carrier)
	for k, v := range carrier {
		set(textproto.CanonicalMIMEHeaderKey(k), v)
	}
	return true
}

// Observer is the telemetry.Observer that traces a service's work: Begin
// starts a server span (a consumer span for an event delivery) whose
// parent is the incoming trace context, End names it and sets its
// attributes and status.
type Observer struct {
	tracer trace.Tracer
	// linkHTTP: the trace context of HTTP requests is not trusted; their
	// spans start a new trace, linked to the incoming one.
	linkHTTP bool
}

var _ telemetry.Observer = (*Observer)(nil)

// NewObserver returns the observer that traces with tp. With linkHTTP,
// an HTTP request's incoming trace context starts a new trace with a link
// to it instead of being its parent; NATS calls and events (internal
// traffic) always continue their caller's trace.
func NewObserver(tp trace.TracerProvider, linkHTTP bool) *Observer {
	return &Observer{tracer: Tracer(tp), linkHTTP: linkHTTP}
}

// Tracer returns Ferry's tracer of tp.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	return tp.Tracer(Scope, trace.WithSchemaURL(semconv.SchemaURL))
}

// Begin implements telemetry.Observer: it starts the work's span, the
// child of the incoming trace context (or of a span ctx already carries,
// such as one of an HTTP middleware around the service's handler).
func (ob *Observer) Begin(ctx context.Context, o *telemetry.Outcome) context.Context {
	opts := serverStart // shared: the common case allocates no options
	if o.Kind == telemetry.KindStep {
		opts = internalKind
	} else if o.Delivery() {
		// A delivery began when the worker received it, before Begin.
		opts = []trace.SpanStartOption{consumerKind, trace.WithTimestamp(o.Start)}
	}
	if !trace.SpanContextFromContext(ctx).IsValid() && o.Header != nil {
		remote := extract(header{o.Header})
		switch {
		case !remote.IsValid():
		case ob.linkHTTP && o.Transport == "http":
			opts = append(opts[:len(opts):len(opts)], trace.WithNewRoot(), trace.WithLinks(trace.Link{
				SpanContext: remote,
				Attributes:  []attribute.KeyValue{attribute.String("ferry.link", "incoming")},
			}))
		default:
			ctx = trace.ContextWithRemoteSpanContext(ctx, remote)
		}
	}
	ctx, _ = ob.tracer.Start(ctx, beginName(o), opts...)
	return ctx
}

// Span start options, made once.
var (
	consumerKind = trace.WithSpanKind(trace.SpanKindConsumer)
	internalKind = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}
	serverStart  = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
)

// beginName is a span's name on arrival; End renames it once the route is
// known.
func beginName(o *telemetry.Outcome) string {
	switch {
	case o.Kind == telemetry.KindStep:
		return "step " + o.Route
	case o.Kind == telemetry.KindJob:
		return "run " + o.Topic
	case o.Kind == telemetry.KindEvent:
		return "process " + o.Topic
	case o.Method != "":
		return httpSpanName(o.Method, "")
	case o.Name != "":
		return o.Service + "/" + o.Name
	}
	return o.Service
}

// httpSpanName is "{method} {route}" as the semantic conventions name HTTP
// server spans; an unknown method (observed as "_OTHER") is named "HTTP".
func httpSpanName(method, route string) string {
	if method == "_OTHER" {
		method = "HTTP"
	}
	if route == "" {
		return method
	}
	return method + " " + route
}

// End implements telemetry.Observer: it names the span, sets its
// attributes and status, and ends it.
func (ob *Observer) End(ctx context.Context, o *telemetry.Outcome) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		span.End()
		return
	}
	buf := attrPool.Get().(*[]attribute.KeyValue)
	defer func() {
		clear(*buf)
		attrPool.Put(buf)
	}()
	attrs := append((*buf)[:0], AttrService.String(o.Service))
	if o.RequestID != "" {
		attrs = append(attrs, AttrRequestID.String(o.RequestID))
	}
	switch {
	case o.Kind == telemetry.KindStep:
		attrs = append(attrs, AttrWorkflow.String(o.Name), AttrStep.String(o.Route), AttrRun.String(o.EventID),
			AttrAttempt.Int64(int64(min(o.Attempt, 1<<62))), AttrResult.String(o.Result))
		if o.Result != telemetry.Handled {
			attrs = append(attrs, semconv.ErrorTypeKey.String(o.Code))
			span.SetStatus(codes.Error, o.Code)
		}
	case o.Delivery():
		span.SetName(beginName(o))
		attrs = append(attrs,
			semconv.MessagingSystemKey.String(MessagingSystem),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingOperationNameKey.String("process"),
			semconv.MessagingDestinationNameKey.String(o.Topic),
			semconv.MessagingConsumerGroupNameKey.String(o.Name),
			semconv.MessagingMessageIDKey.String(o.EventID),
			AttrResult.String(o.Result),
			AttrAttempt.Int64(int64(min(o.Attempt, 1<<62))),
		)
		switch o.Result {
		case telemetry.Retried, telemetry.DeadLettered, telemetry.DeadLetterFailed:
			code := o.Code
			if code == "" {
				code = o.Result
			}
			attrs = append(attrs, semconv.ErrorTypeKey.String(code))
			span.SetStatus(codes.Error, code)
		}
	case o.Transport == "http":
		route := httpRoute(o.Route)
		if route != "" {
			attrs = append(attrs, semconv.HTTPRouteKey.String(route))
		}
		if patternIsName(o.Route, o.Method, route) {
			span.SetName(o.Route) // no allocation
		} else {
			span.SetName(httpSpanName(o.Method, route))
		}
		attrs = append(attrs,
			semconv.HTTPRequestMethodKey.String(o.Method),
			semconv.URLPathKey.String(o.Path),
			semconv.URLSchemeKey.String("http"),
			semconv.HTTPResponseStatusCodeKey.Int(o.Status),
		)
		if o.Status >= 500 { // a server span's 4xx is the client's error
			attrs = append(attrs, semconv.ErrorTypeKey.String(strconv.Itoa(o.Status)))
			span.SetStatus(codes.Error, o.Code)
		}
	default: // a call over NATS, or in memory
		method := o.Service + "/" + o.Name
		if o.Name == "" {
			method = o.Service + "/" + o.Route
		}
		span.SetName(method)
		attrs = append(attrs,
			semconv.RPCSystemNameKey.String(o.Transport), // "nats" (or "memory", in tests)
			semconv.RPCMethodKey.String(method),
			semconv.RPCResponseStatusCodeKey.String(strconv.Itoa(o.Status)),
		)
		if o.Status >= 500 {
			attrs = append(attrs, semconv.ErrorTypeKey.String(errorType(o.Code, o.Status)))
			span.SetStatus(codes.Error, o.Code)
		}
	}
	span.SetAttributes(attrs...) // the SDK copies them
	*buf = attrs
	span.End()
}

// attrPool holds the attribute slices of End: a span's attributes are
// copied by SetAttributes, so the slice is reused.
var attrPool = sync.Pool{New: func() any {
	s := make([]attribute.KeyValue, 0, 10)
	return &s
}}

// httpRoute is the http.route of a ServeMux pattern: without its method
// ("GET /items/{item_id}" → "/items/{item_id}"); "" for a request no
// pattern matched.
func httpRoute(pattern string) string {
	if pattern == "" || pattern == "unmatched" {
		return ""
	}
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		return strings.TrimSpace(pattern[i+1:])
	}
	return pattern
}

// patternIsName reports whether pattern is "{method} {route}", the span
// name httpSpanName would make.
func patternIsName(pattern, method, route string) bool {
	return route != "" && len(pattern) == len(method)+1+len(route) &&
		strings.HasPrefix(pattern, method) && pattern[len(method)] == ' ' && strings.HasSuffix(pattern, route)
}

func errorType(code string, status int) string {
	if code != "" {
		return code
	}
	return strconv.Itoa(status)
}
