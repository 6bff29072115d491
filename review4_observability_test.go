package ferry_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// Review of issue 8 (observation, metrics, tracing): tests that break
// what docs/observability.md and docs/tracing.md promise.

// TestReview4_ExemplarsCarryTraceIDWhenTracingIsOn: docs/observability.md
// ("Exemplars") says that with tracing on, the request counters and
// latency histograms carry the request's trace ID as an exemplar in the
// OpenMetrics exposition. Host.exemplarTraceID (metrics.go) always returns
// nil, so no exemplar is ever written.
func TestReview4_ExemplarsCarryTraceIDWhenTracingIsOn(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	svc := ferry.MustNew("ex", "1.0.0", quiet)
	ferry.Get(svc, "ping", "/ping", func(context.Context, *Empty) (*Empty, error) { return &Empty{}, nil })
	startHost(t, []ferry.Option{ferry.WithConfig(ferrytest.Config(t)), ferry.WithTracerProvider(tp)}, svc)
	base := ferrytest.URL(t, svc)
	if status, _, body := callHTTP(t, base, http.MethodGet, "/ping", "", nil); status != http.StatusNoContent {
		t.Fatalf("GET /ping: %d %s", status, body)
	}
	if len(exp.GetSpans()) == 0 {
		t.Fatal("no span: tracing is not on")
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var ping []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "ferry_request") && strings.Contains(line, `endpoint="ping"`) {
			ping = append(ping, line)
		}
	}
	if len(ping) == 0 {
		t.Fatalf("no series of the ping endpoint in:\n%s", body)
	}
	for _, line := range ping {
		if strings.Contains(line, "trace_id=") {
			return
		}
	}
	t.Errorf("tracing is on, yet no series of the ping endpoint carries a trace_id exemplar:\n%s", strings.Join(ping, "\n"))
}

// TestReview4_SpanNameOfUnknownMethodIsBounded: the HTTP server span is
// named after the request's method as the client sent it ("QWERTY123
// unmatched" → "QWERTY123"), and http.request.method carries it too: any
// client mints span names at will (the semantic conventions say an unknown
// method is "_OTHER" and the span is named "HTTP"). Span names feed span
// metrics in most tracing backends, so their cardinality is unbounded.
func TestReview4_SpanNameOfUnknownMethodIsBounded(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	svc := ferry.MustNew("meth", "1.0.0", quiet)
	ferry.Get(svc, "ping", "/ping", func(context.Context, *Empty) (*Empty, error) { return &Empty{}, nil })
	startHost(t, []ferry.Option{ferry.WithConfig(ferrytest.Config(t)), ferry.WithTracerProvider(tp)}, svc)
	base := ferrytest.URL(t, svc)
	for _, m := range []string{"QWERTY123", "ZZZ-secret-token-abc"} {
		callHTTP(t, base, m, "/nothing", "", nil)
		callHTTP(t, base, m, "/ping", "", nil)
	}
	for _, sp := range exp.GetSpans() {
		if strings.Contains(sp.Name, "QWERTY") || strings.Contains(sp.Name, "ZZZ") {
			t.Errorf("span name %q is the client's raw method", sp.Name)
		}
		for _, a := range sp.Attributes {
			if a.Key == "http.request.method" && a.Value.AsString() != "_OTHER" && strings.ContainsAny(a.Value.AsString(), "QZ") {
				t.Errorf("http.request.method %q is the client's raw method, want _OTHER", a.Value.AsString())
			}
		}
	}
}
