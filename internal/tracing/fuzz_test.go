package tracing

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrygo/ferry/internal/telemetry"
)

// traceparentPattern is the W3C traceparent Ferry writes: version 00,
// a trace ID, a parent ID and flags, lowercase hex.
var traceparentPattern = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

// FuzzTraceContext feeds arbitrary traceparent and tracestate headers,
// under the header names HTTP and NATS callers may use, to the extraction
// of the incoming trace context and to the observer that makes a span of
// it. Neither may panic; a span context extracted is valid and written
// back as a well-formed traceparent with the same trace ID; the span
// continues that trace, sampled as the caller says (or, over HTTP under
// linkHTTP, starts its own).
func FuzzTraceContext(f *testing.F) {
	f.Add("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "Tracestate", "k=v,a@b=c", false)
	f.Add("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "tracestate", "", true)
	f.Add("TRACEPARENT", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "Tracestate", strings.Repeat("k=v,", 100), false)
	f.Add("Traceparent", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-extra", "Tracestate", "=,=,\x00", true)
	f.Add("Traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "tracestate", "k=\xff", false)

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	f.Fuzz(func(t *testing.T, parentKey, parent, stateKey, state string, overHTTP bool) {
		values := map[string]string{parentKey: parent, stateKey: state}
		get := func(k string) string { return values[k] }

		sc := Extract(get)
		if sc.IsValid() {
			if !sc.IsRemote() {
				t.Fatalf("%q: an extracted span context is not remote", parent)
			}
			out := http.Header{}
			if !Inject(trace.ContextWithSpanContext(context.Background(), sc), out.Set) {
				t.Fatalf("%q: a valid span context wrote nothing", parent)
			}
			if got := out.Get("Traceparent"); !traceparentPattern.MatchString(got) || !strings.Contains(got, sc.TraceID().String()) {
				t.Fatalf("%q written back as %q", parent, got)
			}
			if len(out.Get("Tracestate")) > len(state) {
				t.Fatalf("tracestate %q written back as the longer %q", state, out.Get("Tracestate"))
			}
		}

		exp.Reset()
		transport := "nats"
		if overHTTP {
			transport = "http"
		}
		ob := NewObserver(tp, overHTTP)
		o := &telemetry.Outcome{Kind: telemetry.KindEndpoint, Transport: transport, Method: "GET", Route: "r", Status: 200, Header: telemetry.HeaderFunc(get)}
		ob.End(ob.Begin(context.Background(), o), o)
		spans := exp.GetSpans()
		if sc.IsValid() && !sc.IsSampled() && !overHTTP && len(spans) == 0 {
			return // the caller's trace is not sampled: nor is its child
		}
		if len(spans) != 1 {
			t.Fatalf("%d spans", len(spans))
		}
		sp := spans[0]
		switch {
		case !sc.IsValid() && sp.Parent.IsValid():
			t.Fatalf("%q: no trace context, but the span has the parent %v", parent, sp.Parent)
		case sc.IsValid() && !overHTTP && sp.SpanContext.TraceID() != sc.TraceID():
			t.Fatalf("%q: the span left its caller's trace", parent)
		case sc.IsValid() && overHTTP && (sp.Parent.IsValid() || len(sp.Links) != 1):
			t.Fatalf("%q over HTTP: parent %v, %d links; want a new trace linked to it", parent, sp.Parent, len(sp.Links))
		}
	})
}
