package ferry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"go.opentelemetry.io/otel/trace"

	"github.com/ferrygo/ferry/internal/telemetry"
	"github.com/ferrygo/ferry/internal/tracing"
)

// Tracing (docs/tracing.md): with a tracer provider —
// given in code with WithTracerProvider, or configured by the standard
// OTEL_* environment variables — every HTTP request, NATS call and event
// delivery a service takes is a span (internal/tracing's observer), and
// every call and publish it makes is a child span whose W3C trace context
// goes out in the message's headers. Without one, no observer is joined
// and nothing is traced; the incoming trace context is then passed on as
// it came (see propagate), so tracers around the process still join.

// Values of Config.TraceIncoming.
const (
	// TraceTrust continues the trace of an HTTP request's incoming
	// traceparent: the request's span is its child.
	TraceTrust = "trust"
	// TraceLink treats the trace context of HTTP requests as untrusted:
	// each request starts a new trace, linked to the incoming one; with
	// tracing off, the incoming context is not passed on. NATS calls and
	// events always continue their caller's trace.
	TraceLink = "link"
)

// WithTracerProvider traces the service's work with tp instead of the
// tracer provider the OTEL_* environment variables configure, or of none:
// for programs that set up OpenTelemetry themselves, and for tests (an
// in-memory exporter of go.opentelemetry.io/otel/sdk/trace/tracetest).
// The caller owns tp: the host flushes it when it stops, and does not shut
// it down. Service and Host; a service given none takes its host's.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) error {
		if tp == nil {
			return errors.New("ferry: WithTracerProvider: nil tracer provider")
		}
		o.tracerProvider = tp
		return nil
	}
}

// tracingObserver returns the tracing observer of s, building the tracer
// provider the environment configures when s and its host were given
// none; nil when tracing is off. A provider built here is appended to
// built, to be shut down when the host closes.
func (c *observability) tracingObserver(ctx context.Context, s *Service) (telemetry.Observer, error) {
	tp := s.tracerProvider
	if tp == nil {
		tp = c.h.tracerProvider
	}
	if tp == nil {
		sdk, err := tracing.NewProvider(ctx, os.Getenv, s.name, s.version)
		if err != nil {
			return nil, fmt.Errorf("ferry: tracing of service %s: %w", s.name, err)
		}
		if sdk == nil {
			return nil, nil
		}
		c.built = append(c.built, sdk)
		tp = sdk
	}
	return tracing.NewObserver(tp, s.config.TraceIncoming == TraceLink), nil
}

// closeTracing shuts down the tracer providers built from the environment,
// which flushes their spans, and flushes the ones given in code.
func (c *observability) closeTracing(ctx context.Context) error {
	var errs []error
	for _, tp := range c.built {
		if err := tp.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	c.built = nil
	seen := map[trace.TracerProvider]bool{}
	flush := func(tp trace.TracerProvider) {
		f, ok := tp.(interface{ ForceFlush(context.Context) error })
		if !ok || seen[tp] {
			return
		}
		seen[tp] = true
		if err := f.ForceFlush(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if c.h.tracerProvider != nil {
		flush(c.h.tracerProvider)
	}
	for _, s := range c.h.services {
		if s.tracerProvider != nil {
			flush(s.tracerProvider)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ferry: tracing: flushing spans: %w", err)
	}
	return nil
}

// noEnd ends no span.
func noEnd(error) {}

// startCallSpan starts the client span of a call of service's endpoint,
// the child of the span ctx carries (none when it carries none); end ends
// it with the call's error.
func startCallSpan(ctx context.Context, service, endpoint string) (_ context.Context, end func(err error)) {
	ctx, span := tracing.StartCall(ctx, service, endpoint)
	if span == nil {
		return ctx, noEnd
	}
	return ctx, func(err error) {
		status, code := 0, ""
		if err != nil {
			fe := errorFrom(err)
			status, code = fe.Status, fe.code()
		}
		tracing.EndClient(span, err != nil, status, code)
	}
}

// startPublishSpan starts the producer span of publishing n events to
// topic (id is the message ID of a single event), the child of the span
// ctx carries (none when it carries none); end ends it with the publish's
// error.
func startPublishSpan(ctx context.Context, topic string, n int, id string) (_ context.Context, end func(err error)) {
	ctx, span := tracing.StartPublish(ctx, topic, n)
	if span == nil {
		return ctx, noEnd
	}
	if n == 1 {
		tracing.SetMessageID(span, id)
	}
	return ctx, func(err error) {
		code := ""
		if err != nil {
			code = errorFrom(err).code()
		}
		tracing.EndClient(span, err != nil, 0, code)
	}
}

// propagateTrace writes the trace context of an outgoing call or event:
// the context of the span ctx carries (the call's client span, the
// publish's producer span); without one — tracing off — the incoming
// trace context of the request being handled as it came, unless it
// arrived over HTTP under TraceLink.
func propagateTrace(ctx context.Context, req *Request, set func(name, value string)) {
	if tracing.Inject(ctx, set) || req == nil || req.linkTrace {
		return
	}
	for _, h := range [...]string{"Traceparent", "Tracestate"} {
		if v := req.Header(h); v != "" {
			set(h, v)
		}
	}
}

// traceAttrs returns the trace and span IDs of the span ctx carries, as
// log attributes; none without a span.
func traceAttrs(ctx context.Context) (traceID, spanID slog.Attr, ok bool) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return slog.Attr{}, slog.Attr{}, false
	}
	return slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()), true
}
