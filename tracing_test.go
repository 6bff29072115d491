package ferry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// The three services of the tracing tests: a gateway answers HTTP and
// calls catalog over NATS; catalog publishes an event that shipping
// handles.

type reserveIn struct {
	ID int `path:"id" minimum:"1"`
}

type reserveOut struct {
	Body struct {
		ID int `json:"id"`
	}
}

type reserved struct {
	ID int `json:"id"`
}

var (
	reserveEndpoint = ferry.Endpoint[reserveIn, reserveOut]{Service: "catalog", Name: "reserve", Method: http.MethodPost, Path: "/reserve/{id}"}
	reservedTopic   = ferry.Topic[reserved]{Name: "order-reserved", Subject: "test.orders.reserved"}
)

// seen is what each hop saw of the trace context: the span context in its
// handler's ctx and the traceparent header it received.
type seen struct {
	mu          sync.Mutex
	spans       map[string]trace.SpanContext
	traceparent map[string]string
	handled     chan struct{}
}

func (s *seen) note(ctx context.Context, hop string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spans[hop] = trace.SpanContextFromContext(ctx)
	if req := ferry.RequestFromContext(ctx); req != nil {
		s.traceparent[hop] = req.Header("Traceparent")
	}
}

// threeServices returns the gateway, catalog and shipping services; the
// shipping handler logs with ferry.Logger and closes handled.
func threeServices(t *testing.T, opts ...ferry.Option) (gw, catalog, shipping *ferry.Service, s *seen) {
	t.Helper()
	s = &seen{spans: map[string]trace.SpanContext{}, traceparent: map[string]string{}, handled: make(chan struct{}, 1)}
	catalog = ferry.MustNew("catalog", "1.0.0", append([]ferry.Option{ferry.WithNATS(), ferry.WithoutHTTP()}, opts...)...)
	pub := ferry.NewPublisher(catalog, reservedTopic)
	ferry.Handle(catalog, reserveEndpoint, func(ctx context.Context, in *reserveIn) (*reserveOut, error) {
		s.note(ctx, "catalog")
		if _, err := pub.Publish(ctx, &reserved{ID: in.ID}, ferry.PublishMessageID("reserved-"+strconv.Itoa(in.ID))); err != nil {
			return nil, err
		}
		out := &reserveOut{}
		out.Body.ID = in.ID
		return out, nil
	})
	shipping = ferry.MustNew("shipping", "1.0.0", append([]ferry.Option{ferry.WithoutHTTP()}, opts...)...)
	ferry.Subscribe(shipping, reservedTopic, "ship", func(ctx context.Context, e *reserved) error {
		s.note(ctx, "shipping")
		ferry.Logger(ctx).Info("shipping")
		s.handled <- struct{}{}
		return nil
	})
	gw = ferry.MustNew("gateway", "1.0.0", opts...)
	ferry.Get(gw, "get-order", "/orders/{id}", func(ctx context.Context, in *reserveIn) (*reserveOut, error) {
		s.note(ctx, "gateway")
		return reserveEndpoint.Call(ctx, gw.Client(), in)
	})
	return gw, catalog, shipping, s
}

// getOrder asks the gateway for an order with header and waits for the
// event it leads to.
func getOrder(t *testing.T, gw *ferry.Service, s *seen, header http.Header) {
	t.Helper()
	if status, _, body := callHTTP(t, ferrytest.URL(t, gw), http.MethodGet, "/orders/7", "", header); status != http.StatusOK {
		t.Fatalf("GET /orders/7: %d %s", status, body)
	}
	s.wait(t)
}

// wait waits for the shipping handler to run once.
func (s *seen) wait(t *testing.T) {
	t.Helper()
	select {
	case <-s.handled:
	case <-time.After(10 * time.Second):
		t.Fatal("the event was not handled within 10s")
	}
}

const (
	incomingTraceID   = "4bf92f3577b34da6a3ce929d0e0e4736"
	incomingSpanID    = "00f067aa0ba902b7"
	incomingParent    = "00-" + incomingTraceID + "-" + incomingSpanID + "-01"
	incomingTraceDesc = "an incoming traceparent"
)

// TestOneTraceThroughThreeServices: one HTTP request to a gateway that
// calls a second service over NATS, which publishes an event handled by a
// third, is one trace of correctly parented spans — HTTP server → client
// call → NATS server → producer publish → consumer process — continuing
// the caller's trace when it sent one; every hop's handler runs in its
// span, and the handler's and the access log's lines carry the trace ID.
func TestOneTraceThroughThreeServices(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header http.Header
	}{
		{"a new trace", nil},
		{incomingTraceDesc, http.Header{"Traceparent": {incomingParent}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			logs := &syncBuffer{}
			gw, catalog, shipping, s := threeServices(t)
			cfg := ferrytest.Config(t)
			cfg.AccessLog = true
			startHost(t, []ferry.Option{ferry.WithConfig(cfg), ferry.WithTracerProvider(tp), ferry.WithLogger(newLogger(logs))}, gw, catalog, shipping)

			getOrder(t, gw, s, tc.header)
			ferrytest.Eventually(t, func() bool { return len(exp.GetSpans()) >= 5 }, "five spans")
			if n := len(exp.GetSpans()); n != 5 {
				t.Fatalf("%d spans, want 5: %v", n, names(exp.GetSpans()))
			}
			hops := []struct {
				name, parent string
				kind         trace.SpanKind
				service      string
			}{
				{"GET /orders/{id}", "", trace.SpanKindServer, "gateway"},
				{"catalog/reserve", "GET /orders/{id}", trace.SpanKindClient, ""},
				{"catalog/reserve", "", trace.SpanKindServer, "catalog"},
				{"publish order-reserved", "", trace.SpanKindProducer, ""},
				{"process order-reserved", "", trace.SpanKindConsumer, "shipping"},
			}
			spans := exp.GetSpans()
			// The client and server spans of the call share a name: order
			// the five by kind along the path.
			var path []tracetest.SpanStub
			for _, h := range hops {
				for _, sp := range spans {
					if sp.Name == h.name && sp.SpanKind == h.kind {
						path = append(path, sp)
					}
				}
			}
			if len(path) != len(hops) {
				t.Fatalf("the path has %d spans, want %d: %v", len(path), len(hops), names(spans))
			}
			traceID := path[0].SpanContext.TraceID()
			if tc.header != nil {
				if traceID.String() != incomingTraceID || path[0].Parent.SpanID().String() != incomingSpanID || !path[0].Parent.IsRemote() {
					t.Errorf("the HTTP span is in trace %s under %s, want the caller's %s under %s", traceID, path[0].Parent.SpanID(), incomingTraceID, incomingSpanID)
				}
			} else if path[0].Parent.IsValid() {
				t.Errorf("the HTTP span has a parent: %v", path[0].Parent)
			}
			for i, sp := range path {
				if sp.SpanContext.TraceID() != traceID {
					t.Errorf("span %q is in trace %s, want %s", sp.Name, sp.SpanContext.TraceID(), traceID)
				}
				if i > 0 && sp.Parent.SpanID() != path[i-1].SpanContext.SpanID() {
					t.Errorf("span %q (%s) has parent %s, want %q (%s)", sp.Name, sp.SpanKind, sp.Parent.SpanID(), path[i-1].Name, path[i-1].SpanContext.SpanID())
				}
			}
			wantAttrs := [][]attribute.KeyValue{
				{attribute.String("http.request.method", "GET"), attribute.String("http.route", "/orders/{id}"), attribute.Int("http.response.status_code", 200),
					attribute.String("url.path", "/orders/7"), attribute.String("ferry.service", "gateway")},
				{attribute.String("rpc.system.name", "nats"), attribute.String("rpc.method", "catalog/reserve")},
				{attribute.String("rpc.system.name", "nats"), attribute.String("rpc.method", "catalog/reserve"), attribute.String("rpc.response.status_code", "200"),
					attribute.String("ferry.service", "catalog")},
				{attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", "order-reserved"), attribute.String("messaging.message.id", "reserved-7")},
				{attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", "order-reserved"), attribute.String("messaging.message.id", "reserved-7"),
					attribute.String("messaging.consumer.group.name", "ship"), attribute.String("ferry.result", "handled"), attribute.String("ferry.service", "shipping")},
			}
			for i, want := range wantAttrs {
				have := map[attribute.Key]attribute.Value{}
				for _, kv := range path[i].Attributes {
					have[kv.Key] = kv.Value
				}
				for _, kv := range want {
					if v, ok := have[kv.Key]; !ok || v != kv.Value {
						t.Errorf("span %q (%s): %s = %v, want %v", path[i].Name, path[i].SpanKind, kv.Key, v.String(), kv.Value.String())
					}
				}
			}
			// The request ID crosses every hop with the trace.
			ids := map[string]bool{}
			for _, i := range []int{0, 2, 4} {
				for _, kv := range path[i].Attributes {
					if kv.Key == "ferry.request_id" {
						ids[kv.Value.AsString()] = true
					}
				}
			}
			if len(ids) != 1 {
				t.Errorf("the request IDs of the hops: %v, want one", ids)
			}
			// Each handler runs in its hop's span.
			s.mu.Lock()
			for hop, i := range map[string]int{"gateway": 0, "catalog": 2, "shipping": 4} {
				if sc := s.spans[hop]; sc.SpanID() != path[i].SpanContext.SpanID() {
					t.Errorf("the %s handler runs in span %s, want %s", hop, sc.SpanID(), path[i].SpanContext.SpanID())
				}
			}
			s.mu.Unlock()
			for _, want := range []string{
				"msg=shipping service=shipping request_id=",
				"trace_id=" + traceID.String() + " span_id=" + path[4].SpanContext.SpanID().String(),
				`msg="ferry: request" service=gateway transport=http route="GET /orders/{id}" status=200`,
			} {
				ferrytest.Eventually(t, func() bool { return strings.Contains(logs.String(), want) }, "the log has %q", want)
			}
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, `msg="ferry: request"`) || strings.Contains(line, `msg="ferry: delivery"`) {
					if !strings.Contains(line, "trace_id="+traceID.String()) {
						t.Errorf("an access log line lacks the trace ID: %s", line)
					}
				}
			}
		})
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, sp := range spans {
		out = append(out, sp.Name+" ("+sp.SpanKind.String()+")")
	}
	return out
}

// TestUntrustedTraceContextStartsANewTrace: under FERRY_TRACE_INCOMING=link
// an HTTP request's incoming trace context starts a new trace linked to
// it; a NATS call's (internal traffic) is still continued.
func TestUntrustedTraceContextStartsANewTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	gw, catalog, shipping, s := threeServices(t)
	cfg := ferrytest.Config(t)
	cfg.TraceIncoming = ferry.TraceLink
	startHost(t, []ferry.Option{ferry.WithConfig(cfg), ferry.WithTracerProvider(tp)}, gw, catalog, shipping)

	t.Run("http", func(t *testing.T) {
		exp.Reset()
		getOrder(t, gw, s, http.Header{"Traceparent": {incomingParent}})
		ferrytest.Eventually(t, func() bool { return len(exp.GetSpans()) >= 5 }, "five spans")
		var root tracetest.SpanStub
		for _, sp := range exp.GetSpans() {
			if sp.Name == "GET /orders/{id}" {
				root = sp
			}
			if sp.SpanContext.TraceID().String() == incomingTraceID {
				t.Errorf("span %q continues the untrusted trace", sp.Name)
			}
		}
		if root.Parent.IsValid() {
			t.Errorf("the HTTP span has a parent: %v", root.Parent)
		}
		if len(root.Links) != 1 || root.Links[0].SpanContext.TraceID().String() != incomingTraceID || root.Links[0].SpanContext.SpanID().String() != incomingSpanID {
			t.Errorf("the HTTP span's links: %+v, want one to the incoming %s", root.Links, incomingParent)
		}
	})
	t.Run("nats", func(t *testing.T) {
		exp.Reset()
		remote := trace.ContextWithRemoteSpanContext(context.Background(), spanContext(t, incomingTraceID, incomingSpanID))
		if _, err := reserveEndpoint.Call(remote, gw.Client(), &reserveIn{ID: 8}); err != nil {
			t.Fatal(err)
		}
		s.wait(t)
		ferrytest.Eventually(t, func() bool { return len(exp.GetSpans()) >= 3 }, "three spans")
		for _, sp := range exp.GetSpans() {
			if sp.SpanContext.TraceID().String() != incomingTraceID {
				t.Errorf("span %q is in trace %s, want the caller's %s", sp.Name, sp.SpanContext.TraceID(), incomingTraceID)
			}
			if sp.SpanKind == trace.SpanKindServer && sp.Parent.SpanID().String() != incomingSpanID {
				t.Errorf("the NATS server span's parent is %s, want the caller's %s", sp.Parent.SpanID(), incomingSpanID)
			}
		}
	})
}

func spanContext(t *testing.T, traceID, spanID string) trace.SpanContext {
	t.Helper()
	tid, err := trace.TraceIDFromHex(traceID)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex(spanID)
	if err != nil {
		t.Fatal(err)
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
}

// TestTracingOff: without a tracer provider nothing is traced (no handler
// runs in a span), and the incoming trace context is passed on to calls
// and events as it came, so tracers around the process still join —
// unless FERRY_TRACE_INCOMING=link marks it untrusted.
func TestTracingOff(t *testing.T) {
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED"} {
		t.Setenv(k, "")
	}
	for _, tc := range []struct {
		incoming string
		want     string // the traceparent catalog and shipping receive
	}{
		{ferry.TraceTrust, incomingParent},
		{ferry.TraceLink, ""},
	} {
		t.Run(tc.incoming, func(t *testing.T) {
			gw, catalog, shipping, s := threeServices(t)
			cfg := ferrytest.Config(t)
			cfg.TraceIncoming = tc.incoming
			startHost(t, []ferry.Option{ferry.WithConfig(cfg)}, gw, catalog, shipping)
			getOrder(t, gw, s, http.Header{"Traceparent": {incomingParent}})
			s.mu.Lock()
			defer s.mu.Unlock()
			for hop, sc := range s.spans {
				if sc.IsValid() {
					t.Errorf("the %s handler runs in a span: %v", hop, sc)
				}
			}
			for _, hop := range []string{"catalog", "shipping"} {
				if got := s.traceparent[hop]; got != tc.want {
					t.Errorf("%s received traceparent %q, want %q", hop, got, tc.want)
				}
			}
		})
	}
}

// otlpReceiver is an OTLP/HTTP trace receiver: it records the service
// name and span names of every export.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []string // "service.name/version: span name"
	posts int
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "not an OTLP/HTTP protobuf export", http.StatusBadRequest)
		return
	}
	var export coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &export); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.posts++
	for _, rs := range export.ResourceSpans {
		var name, version string
		for _, kv := range rs.Resource.Attributes {
			switch kv.Key {
			case "service.name":
				name = kv.Value.GetStringValue()
			case "service.version":
				version = kv.Value.GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				r.spans = append(r.spans, name+"/"+version+": "+sp.Name)
			}
		}
	}
	r.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// TestTracingFromTheEnvironment: the standard OTEL_* variables configure
// the exporter — an OTLP endpoint alone turns tracing on, each service's
// spans name it and its version as their resource and reach the endpoint
// when the host stops; OTEL_SDK_DISABLED and OTEL_TRACES_EXPORTER=none turn
// it off; an exporter Ferry does not know fails the start.
func TestTracingFromTheEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		want     []string // spans received, sorted
		startErr string
	}{
		{name: "endpoint", env: map[string]string{}, want: []string{
			"catalog/1.0.0: catalog/reserve", "catalog/1.0.0: publish order-reserved",
			"gateway/1.0.0: GET /orders/{id}", "gateway/1.0.0: catalog/reserve",
			"shipping/1.0.0: process order-reserved",
		}},
		{name: "otlp", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, want: []string{
			"catalog/1.0.0: catalog/reserve", "catalog/1.0.0: publish order-reserved",
			"gateway/1.0.0: GET /orders/{id}", "gateway/1.0.0: catalog/reserve",
			"shipping/1.0.0: process order-reserved",
		}},
		{name: "disabled", env: map[string]string{"OTEL_SDK_DISABLED": "true"}},
		{name: "none", env: map[string]string{"OTEL_TRACES_EXPORTER": "none"}},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, startErr: `OTEL_TRACES_EXPORTER="zipkin"`},
		{name: "unknown protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, startErr: `OTEL_EXPORTER_OTLP_PROTOCOL="http/json"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &otlpReceiver{}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED",
				"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"} {
				t.Setenv(k, "")
			}
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			gw, catalog, shipping, s := threeServices(t)
			h, err := ferry.NewHost(quiet, ferry.WithConfig(ferrytest.Config(t)))
			if err != nil {
				t.Fatal(err)
			}
			if err := h.Add(gw, catalog, shipping); err != nil {
				t.Fatal(err)
			}
			err = h.Start(context.Background())
			if tc.startErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.startErr) {
					_ = h.Shutdown(context.Background())
					t.Fatalf("Start: %v, want an error naming %s", err, tc.startErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			getOrder(t, gw, s, nil)
			if err := h.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			slices.Sort(rec.spans)
			if !slices.Equal(rec.spans, tc.want) {
				t.Errorf("spans received:\n%s\nwant:\n%s", strings.Join(rec.spans, "\n"), strings.Join(tc.want, "\n"))
			}
			if tc.want == nil && rec.posts > 0 {
				t.Errorf("%d exports, want none", rec.posts)
			}
		})
	}
}
