package tracing

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrygo/ferry/internal/telemetry"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestExporters(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want []string
		err  string
	}{
		{env: nil},
		{env: map[string]string{EnvEndpoint: "http://collector:4318"}, want: []string{"otlp"}},
		{env: map[string]string{EnvTracesEndpoint: "http://collector:4318/v1/traces"}, want: []string{"otlp"}},
		{env: map[string]string{EnvExporter: "otlp"}, want: []string{"otlp"}},
		{env: map[string]string{EnvExporter: "otlp, console"}, want: []string{"otlp", "console"}},
		{env: map[string]string{EnvExporter: "none", EnvEndpoint: "http://collector:4318"}},
		{env: map[string]string{EnvExporter: "otlp", EnvSDKDisabled: "true"}},
		{env: map[string]string{EnvExporter: "otlp", EnvSDKDisabled: "false"}, want: []string{"otlp"}},
		{env: map[string]string{EnvExporter: "otlp", EnvSDKDisabled: "maybe"}, err: "OTEL_SDK_DISABLED"},
		{env: map[string]string{EnvExporter: "jaeger"}, err: `"jaeger" is not an exporter`},
	} {
		got, err := Exporters(env(tc.env))
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: error %v, want one with %q", tc.env, err, tc.err)
			}
		case err != nil:
			t.Errorf("%v: %v", tc.env, err)
		case !slices.Equal(got, tc.want):
			t.Errorf("%v: %v, want %v", tc.env, got, tc.want)
		}
	}
}

func TestProtocol(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
		err  bool
	}{
		{env: nil, want: "http/protobuf"},
		{env: map[string]string{EnvProtocol: "grpc"}, want: "grpc"},
		{env: map[string]string{EnvProtocol: "grpc", EnvTracesProtocol: "http/protobuf"}, want: "http/protobuf"},
		{env: map[string]string{EnvTracesProtocol: "http/json"}, err: true},
	} {
		got, err := Protocol(env(tc.env))
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%v: %q, %v; want %q (error %v)", tc.env, got, err, tc.want, tc.err)
		}
	}
}

// TestNewProvider: each exporter and protocol builds (none connects
// before it exports); without configuration there is no provider.
func TestNewProvider(t *testing.T) {
	for _, e := range []map[string]string{
		{EnvExporter: "otlp", EnvProtocol: "grpc", EnvEndpoint: "http://127.0.0.1:1"},
		{EnvExporter: "otlp", EnvEndpoint: "http://127.0.0.1:1"},
		{EnvExporter: "console"},
		{},
	} {
		tp, err := NewProvider(context.Background(), env(e), "svc", "1.2.3")
		if err != nil {
			t.Fatalf("%v: %v", e, err)
		}
		if (tp == nil) != (len(e) == 0) {
			t.Fatalf("%v: provider %v", e, tp)
		}
		if tp != nil {
			if err := tp.Shutdown(context.Background()); err != nil {
				t.Errorf("%v: shutdown: %v", e, err)
			}
		}
	}
}

func TestHeaderCarrier(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, h := range []map[string]string{
		{"Traceparent": parent}, // HTTP, and NATS as Ferry writes it
		{"traceparent": parent}, // NATS as other clients may write it
	} {
		sc := Extract(func(k string) string { return h[k] })
		if sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || !sc.IsRemote() || !sc.IsSampled() {
			t.Errorf("%v: extracted %v", h, sc)
		}
	}
	if Extract(func(string) string { return "00-garbage" }).IsValid() {
		t.Error("a malformed traceparent gave a span context")
	}
	out := http.Header{}
	if Inject(context.Background(), out.Set) || len(out) > 0 {
		t.Errorf("a context without a span wrote %v", out)
	}
	sc := Extract(func(k string) string { return map[string]string{"Traceparent": parent, "Tracestate": "k=v"}[k] })
	if !Inject(trace.ContextWithSpanContext(context.Background(), sc), func(k, v string) { out[k] = []string{v} }) {
		t.Fatal("a context with a span wrote nothing")
	}
	if out["Traceparent"][0] != parent || out["Tracestate"][0] != "k=v" {
		t.Errorf("injected %v", out)
	}
}

// TestObserverStatus: End names each kind of work's span and sets its
// status: a server's 5xx and a failed delivery are errors, a 4xx, a skip
// and a hand-back are not. A delivery's span starts when the worker
// received it; a request's when Begin is called.
func TestObserverStatus(t *testing.T) {
	start := time.Now()
	for _, tc := range []struct {
		o      telemetry.Outcome
		name   string
		kind   trace.SpanKind
		status codes.Code
	}{
		{telemetry.Outcome{Kind: telemetry.KindEndpoint, Transport: "http", Method: "GET", Path: "/items/1", Route: "GET /items/{id}", Status: 200}, "GET /items/{id}", trace.SpanKindServer, codes.Unset},
		{telemetry.Outcome{Kind: telemetry.KindEndpoint, Transport: "http", Method: "GET", Path: "/nope", Route: "unmatched", Status: 404}, "GET", trace.SpanKindServer, codes.Unset},
		{telemetry.Outcome{Kind: telemetry.KindEndpoint, Transport: "http", Method: "POST", Path: "/x", Route: "POST /x", Status: 500, Code: "internal_server_error"}, "POST /x", trace.SpanKindServer, codes.Error},
		{telemetry.Outcome{Kind: telemetry.KindEndpoint, Transport: "nats", Service: "shop", Name: "get", Route: "get", Status: 422}, "shop/get", trace.SpanKindServer, codes.Unset},
		{telemetry.Outcome{Kind: telemetry.KindEndpoint, Transport: "nats", Service: "shop", Route: "get", Status: 400}, "shop/get", trace.SpanKindServer, codes.Unset},
		{telemetry.Outcome{Kind: telemetry.KindEndpoint, Transport: "nats", Service: "shop", Name: "get", Route: "get", Status: 504, Code: "deadline_exceeded"}, "shop/get", trace.SpanKindServer, codes.Error},
		{telemetry.Outcome{Kind: telemetry.KindEvent, Transport: "nats", Topic: "placed", Result: telemetry.Handled}, "process placed", trace.SpanKindConsumer, codes.Unset},
		{telemetry.Outcome{Kind: telemetry.KindEvent, Transport: "nats", Topic: "placed", Result: telemetry.Skipped}, "process placed", trace.SpanKindConsumer, codes.Unset},
		{telemetry.Outcome{Kind: telemetry.KindEvent, Transport: "nats", Topic: "placed", Result: telemetry.HandedBack}, "process placed", trace.SpanKindConsumer, codes.Unset},
		{telemetry.Outcome{Kind: telemetry.KindEvent, Transport: "nats", Topic: "placed", Result: telemetry.Retried, Code: "internal_server_error"}, "process placed", trace.SpanKindConsumer, codes.Error},
		{telemetry.Outcome{Kind: telemetry.KindEvent, Transport: "nats", Topic: "placed", Result: telemetry.DeadLettered, Code: "malformed_event"}, "process placed", trace.SpanKindConsumer, codes.Error},
	} {
		exp := tracetest.NewInMemoryExporter()
		ob := NewObserver(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)), false)
		o := tc.o
		o.Start = start
		ob.End(ob.Begin(context.Background(), &o), &o)
		spans := exp.GetSpans()
		if len(spans) != 1 {
			t.Fatalf("%+v: %d spans", tc.o, len(spans))
		}
		sp := spans[0]
		if sp.Name != tc.name || sp.SpanKind != tc.kind || sp.Status.Code != tc.status || (o.Kind == telemetry.KindEvent) != sp.StartTime.Equal(start) {
			t.Errorf("%+v: span %q %s status %s start %v; want %q %s %s %v", tc.o, sp.Name, sp.SpanKind, sp.Status.Code, sp.StartTime, tc.name, tc.kind, tc.status, start)
		}
	}
}

// TestObserverParent: a span ctx already carries (an HTTP middleware's
// around the service's handler) is the parent, before any header; the
// incoming header is otherwise the parent, or under linkHTTP a link.
func TestObserverParent(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	header := func(k string) string { return map[string]string{"Traceparent": parent}[k] }
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	outer, local := tp.Tracer("test").Start(context.Background(), "outer")
	defer local.End()
	for _, tc := range []struct {
		name      string
		ctx       context.Context
		link      bool
		transport string
		parent    trace.SpanID
		links     int
	}{
		{"header", context.Background(), false, "http", Extract(header).SpanID(), 0},
		{"local span first", outer, false, "http", local.SpanContext().SpanID(), 0},
		{"untrusted http", context.Background(), true, "http", trace.SpanID{}, 1},
		{"nats is trusted", context.Background(), true, "nats", Extract(header).SpanID(), 0},
	} {
		exp.Reset()
		ob := NewObserver(tp, tc.link)
		o := &telemetry.Outcome{Kind: telemetry.KindEndpoint, Transport: tc.transport, Method: "GET", Header: telemetry.HeaderFunc(header)}
		ob.End(ob.Begin(tc.ctx, o), o)
		sp := exp.GetSpans()[0]
		if sp.Parent.SpanID() != tc.parent || len(sp.Links) != tc.links {
			t.Errorf("%s: parent %s with %d links, want %s with %d", tc.name, sp.Parent.SpanID(), len(sp.Links), tc.parent, tc.links)
		}
	}
}

// TestClientSpans: calls and publishes start a child of the span in ctx,
// and none without one; a failed call is an error with its code.
func TestClientSpans(t *testing.T) {
	if ctx, span := StartCall(context.Background(), "shop", "get"); span != nil || ctx != context.Background() {
		t.Error("a call without a span in its context started one")
	}
	if _, span := StartPublish(context.Background(), "placed", 1); span != nil {
		t.Error("a publish without a span in its context started one")
	}
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	ctx, parent := tp.Tracer("test").Start(context.Background(), "handler")
	_, call := StartCall(ctx, "shop", "get")
	EndClient(call, true, 503, "no_responders")
	_, pub := StartPublish(ctx, "placed", 3)
	EndClient(pub, false, 0, "")
	parent.End()
	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("%d spans", len(spans))
	}
	for i, want := range []struct {
		name   string
		kind   trace.SpanKind
		status codes.Code
	}{{"shop/get", trace.SpanKindClient, codes.Error}, {"publish placed", trace.SpanKindProducer, codes.Unset}} {
		sp := spans[i]
		if sp.Name != want.name || sp.SpanKind != want.kind || sp.Status.Code != want.status || sp.Parent.SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %d: %q %s %s under %s; want %q %s %s under the handler's", i, sp.Name, sp.SpanKind, sp.Status.Code, sp.Parent.SpanID(), want.name, want.kind, want.status)
		}
	}
}

func TestHTTPRoute(t *testing.T) {
	for in, want := range map[string]string{
		"GET /items/{id}": "/items/{id}",
		"/items/":         "/items/",
		"unmatched":       "",
		"":                "",
	} {
		if got := httpRoute(in); got != want {
			t.Errorf("httpRoute(%q) = %q, want %q", in, got, want)
		}
	}
}
