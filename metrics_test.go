package ferry_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
	"github.com/ferrygo/ferry/internal/envelope"
	"github.com/ferrygo/ferry/internal/latency"
	"github.com/ferrygo/ferry/internal/naming"
)

// scrape GETs a /metrics page and parses it; it returns nil unless the
// page answered 200.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return mfs
}

// sample is the value of one series: a counter, a gauge, or a histogram's
// count; found is false when no series of the family has the labels.
func sample(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) (v float64, found bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, want := range labels {
			if have[k] != want {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			v += m.Counter.GetValue()
		case m.Gauge != nil:
			v += m.Gauge.GetValue()
		case m.Histogram != nil:
			v += float64(m.Histogram.GetSampleCount())
		}
		found = true
	}
	return v, found
}

// labelsOf lists the label sets of a family, for failure messages.
func labelsOf(mfs map[string]*dto.MetricFamily, name string) string {
	var out []string
	if mf := mfs[name]; mf != nil {
		for _, m := range mf.Metric {
			var ls []string
			for _, l := range m.Label {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			out = append(out, "{"+strings.Join(ls, ",")+"}")
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// TestMetricsMove: the counters and histograms of /metrics move for every
// outcome over HTTP, NATS and events — 404 (route "unmatched"), 422, spent
// budgets, malformed events and dead letters included — and the consumer
// lag, dead-letter depth, overdue handlers and runtime metrics are there.
func TestMetricsMove(t *testing.T) {
	svc := ferry.MustNew("obs", "1.0.0", ferry.WithNATS(), quiet)
	ep := ferry.Endpoint[obsIn, obsOut]{Service: "obs", Name: "get-thing", Method: http.MethodGet, Path: "/things/{id}"}
	ferry.Handle(svc, ep, func(_ context.Context, in *obsIn) (*obsOut, error) {
		out := &obsOut{}
		out.Body.ID = in.ID
		return out, nil
	})
	ferry.Subscribe(svc, placed, "ship", func(_ context.Context, e *OrderPlaced) error {
		if e.OrderID == "fail" {
			return errors.New("always fails")
		}
		return nil
	}, fast...)
	release := make(chan struct{})
	ferry.Subscribe(svc, placed, "hang", func(_ context.Context, e *OrderPlaced) error {
		if e.OrderID == "hang" {
			<-release // ignores its context, past its timeout
		}
		return nil
	}, ferry.SubscribeTimeout(50*time.Millisecond), ferry.SubscribeAckWait(time.Minute))
	h := ferrytest.Start(t, svc)
	t.Cleanup(func() { close(release) }) // before the host stops
	base := ferrytest.URL(t, svc)

	spent := http.Header{naming.HeaderTimeout: {"0"}}
	for _, r := range []struct {
		path   string
		header http.Header
	}{{"/things/7", nil}, {"/things/0", nil}, {"/nothing/here", nil}, {"/things/7", spent}} {
		callHTTP(t, base, http.MethodGet, r.path, "", r.header)
	}
	callNATS(t, h.NATS(), "obs", "get-thing", &envelope.Request{Params: map[string]string{"id": "7"}})
	callNATS(t, h.NATS(), "obs", "get-thing", &envelope.Request{Params: map[string]string{"id": "0"}})
	callNATS(t, h.NATS(), "obs", "get-thing", &envelope.Request{Header: spent.Clone(), Params: map[string]string{"id": "7"}})
	publish(t, h, OrderPlaced{OrderID: "ok", Quantity: 1})
	publish(t, h, OrderPlaced{OrderID: "fail", Quantity: 1})
	publish(t, h, OrderPlaced{OrderID: "hang", Quantity: 1})
	js, _ := jetstream.New(h.NATS())
	m := nats.NewMsg(placed.Subject)
	m.Data = []byte(`{"order_id":`)
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}

	route := "GET /things/{id}"
	type labels = map[string]string
	cases := []struct {
		name   string
		metric string
		labels labels
		min    float64
	}{
		{"HTTP 200", "ferry_requests_total", labels{"transport": "http", "route": route, "endpoint": "get-thing", "status": "200", "code": ""}, 1},
		{"HTTP 422", "ferry_requests_total", labels{"transport": "http", "route": route, "status": "422", "code": "unprocessable_entity"}, 1},
		{"HTTP 404", "ferry_requests_total", labels{"transport": "http", "route": "unmatched", "endpoint": "", "status": "404", "code": "not_found"}, 1},
		{"HTTP spent budget", "ferry_requests_total", labels{"transport": "http", "route": route, "status": "504", "code": "deadline_exceeded"}, 1},
		{"HTTP latency", "ferry_request_duration_seconds", labels{"transport": "http", "route": route, "class": "2xx"}, 1},
		{"HTTP 404 latency", "ferry_request_duration_seconds", labels{"transport": "http", "route": "unmatched", "class": "4xx"}, 1},
		{"NATS 200", "ferry_requests_total", labels{"transport": "nats", "route": "get-thing", "endpoint": "get-thing", "status": "200"}, 1},
		{"NATS 422", "ferry_requests_total", labels{"transport": "nats", "route": "get-thing", "status": "422", "code": "unprocessable_entity"}, 1},
		{"NATS spent budget", "ferry_requests_total", labels{"transport": "nats", "route": "get-thing", "status": "504", "code": "deadline_exceeded"}, 1},
		{"NATS latency", "ferry_request_duration_seconds", labels{"transport": "nats", "route": "get-thing"}, 3},
		{"event handled", "ferry_event_deliveries_total", labels{"consumer": "ship", "topic": "order-placed", "result": "handled"}, 2},
		{"event retried", "ferry_event_deliveries_total", labels{"consumer": "ship", "result": "retried", "code": "internal_server_error"}, 2},
		{"event dead-lettered", "ferry_event_deliveries_total", labels{"consumer": "ship", "result": "dead_lettered", "code": "internal_server_error"}, 1},
		{"malformed event", "ferry_event_deliveries_total", labels{"consumer": "ship", "result": "dead_lettered", "code": "malformed_event"}, 1},
		{"redeliveries", "ferry_event_redeliveries_total", labels{"consumer": "ship"}, 2},
		{"handler latency", "ferry_event_handler_duration_seconds", labels{"consumer": "ship", "result": "handled"}, 2},
		{"handlers in flight", "ferry_event_handlers_in_flight", labels{"consumer": "hang"}, 1},
		{"handlers overdue", "ferry_event_handlers_overdue", labels{"consumer": "hang"}, 1},
		{"consumer pending", "ferry_consumer_pending_messages", labels{"consumer": "ship", "topic": "order-placed"}, 0},
		{"consumer ack pending", "ferry_consumer_ack_pending_messages", labels{"consumer": "hang"}, 1},
		{"dead letters", "ferry_dead_letters", labels{"service": "obs", "consumer": "ship", "topic": "order-placed"}, 2},
		{"dead-letter stream", "ferry_dead_letter_stream_messages", nil, 2},
		{"runtime", "go_goroutines", nil, 1},
		{"process", "process_resident_memory_bytes", nil, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.labels != nil && tc.metric != "ferry_dead_letter_stream_messages" {
				if _, ok := tc.labels["service"]; !ok && strings.HasPrefix(tc.metric, "ferry_") {
					tc.labels["service"] = "obs"
				}
			}
			var mfs map[string]*dto.MetricFamily
			var got float64
			var found bool
			ferrytest.Eventually(t, func() bool {
				mfs = scrape(t, base+"/metrics")
				got, found = sample(mfs, tc.metric, tc.labels)
				return found && got >= tc.min
			}, "%s%v ≥ %v", tc.metric, tc.labels, tc.min)
		})
	}
	t.Run("bounded labels", func(t *testing.T) {
		mfs := scrape(t, base+"/metrics")
		for _, m := range mfs["ferry_requests_total"].Metric {
			for _, l := range m.Label {
				if l.GetName() == "route" && strings.Contains(l.GetValue(), "/nothing") {
					t.Errorf("a raw path as a route label:\n%s", labelsOf(mfs, "ferry_requests_total"))
				}
			}
		}
	})
}

// TestStatsLatency: after some calls, each endpoint's $SRV.STATS entry
// has its latency percentiles and rates in data, per transport; the
// counters of micro's own fields still count NATS calls.
func TestStatsLatency(t *testing.T) {
	svc := ferry.MustNew("obs", "1.0.0", ferry.WithNATS(), quiet)
	ep := ferry.Endpoint[obsIn, obsOut]{Service: "obs", Name: "get-thing", Method: http.MethodGet, Path: "/things/{id}"}
	ferry.Handle(svc, ep, func(_ context.Context, in *obsIn) (*obsOut, error) {
		out := &obsOut{}
		out.Body.ID = in.ID
		return out, nil
	})
	h := ferrytest.Start(t, svc)
	base := ferrytest.URL(t, svc)
	for range 5 {
		callHTTP(t, base, http.MethodGet, "/things/7", "", nil)
		callNATS(t, h.NATS(), "obs", "get-thing", &envelope.Request{Params: map[string]string{"id": "7"}})
	}
	callHTTP(t, base, http.MethodGet, "/things/0", "", nil) // 422: a request, not an error
	var e *micro.EndpointStats
	var data latency.Data
	// A call is observed once answered: the last ones may be counted a
	// moment after their caller has the answer.
	ferrytest.Eventually(t, func() bool {
		reply, err := h.NATS().Request("$SRV.STATS.obs", nil, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var stats micro.Stats
		if err := json.Unmarshal(reply.Data, &stats); err != nil {
			t.Fatal(err)
		}
		if len(stats.Endpoints) != 1 {
			t.Fatalf("%d endpoints in STATS", len(stats.Endpoints))
		}
		e = stats.Endpoints[0]
		if err := json.Unmarshal(e.Data, &data); err != nil {
			t.Fatalf("data %s: %v", e.Data, err)
		}
		return e.NumRequests == 5 && data.NATS.Requests == 5 && data.HTTP.Requests == 6
	}, "STATS counts the 5 NATS calls and 6 HTTP requests")
	for _, tc := range []struct {
		transport string
		s         latency.Summary
		requests  uint64
	}{{"http", data.HTTP, 6}, {"nats", data.NATS, 5}} {
		s := tc.s
		if s.Requests != tc.requests || s.Errors != 0 || s.Rate <= 0 || s.P50 <= 0 || s.P99 < s.P50 {
			t.Errorf("%s: %+v", tc.transport, s)
		}
	}
	if data.Window != time.Minute {
		t.Errorf("window %v", data.Window)
	}
}

// TestAdminListener: with FERRY_ADMIN_ADDR the admin listener serves
// /metrics for the host, /healthz, /readyz and (FERRY_DOCS=admin) each
// service's documents under /services/<name>/; the service's listener
// no longer serves /metrics nor the documents, and still /healthz.
func TestAdminListener(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.Docs = "admin"
	svc := ferry.MustNew("items", "1.0.0", quiet)
	ferry.Get(svc, "ping", "/ping", func(context.Context, *Empty) (*Empty, error) { return &Empty{}, nil })
	other := ferry.MustNew("other", "1.0.0", quiet)
	ferry.Get(other, "pong", "/pong", func(context.Context, *Empty) (*Empty, error) { return &Empty{}, nil })
	h := ferrytest.StartWith(t, cfg, svc, other)
	admin := "http://" + h.AdminAddr().String()
	base := ferrytest.URL(t, svc)
	callHTTP(t, base, http.MethodGet, "/ping", "", nil)
	callHTTP(t, ferrytest.URL(t, other), http.MethodGet, "/pong", "", nil)

	cases := []struct {
		url    string
		status int
		has    string
	}{
		{admin + "/metrics", 200, `ferry_requests_total{code="",endpoint="ping"`},
		{admin + "/metrics", 200, `endpoint="pong"`},
		{admin + "/healthz", 200, `"ok"`},
		{admin + "/readyz", 200, `"ready"`},
		{admin + "/services/items/docs", 200, "/services/items/openapi.json"},
		{admin + "/services/items/openapi.json", 200, `"title":"items"`},
		{admin + "/services/other/openapi.yaml", 200, "title: other"},
		{admin + "/services/items/asyncapi.json", 200, `"asyncapi"`},
		{admin + "/services/items/docs/asyncapi", 200, `data-spec-url="/services/items/asyncapi.json"`},
		{admin + "/docs", 404, "not_found"},
		{admin + "/nothing", 404, "not_found"},
		{base + "/metrics", 404, "not_found"},
		{base + "/docs", 404, "not_found"},
		{base + "/docs/asyncapi", 404, "not_found"},
		{base + "/openapi.json", 404, "not_found"},
		{base + "/asyncapi.yaml", 404, "not_found"},
		{base + "/healthz", 200, `"ok"`},
		{base + "/ping", 204, ""},
	}
	for _, tc := range cases {
		t.Run(strings.TrimPrefix(strings.TrimPrefix(tc.url, admin), base), func(t *testing.T) {
			code, body := get(t, tc.url)
			if code != tc.status || !strings.Contains(body, tc.has) {
				if len(body) > 300 {
					body = body[:300]
				}
				t.Errorf("GET %s: %d %s; want %d with %q", tc.url, code, body, tc.status, tc.has)
			}
		})
	}
}

// TestExposureSettings: FERRY_DOCS=off hides the documents (404, counted
// under route "unmatched"); FERRY_METRICS=off serves no /metrics and no
// latency data; a bad combination fails at configuration.
func TestExposureSettings(t *testing.T) {
	t.Run("docs off", func(t *testing.T) {
		cfg := ferrytest.Config(t)
		cfg.Docs = "off"
		svc := ferry.MustNew("items", "1.0.0", quiet)
		ferry.Get(svc, "ping", "/ping", func(context.Context, *Empty) (*Empty, error) { return &Empty{}, nil })
		ferrytest.StartWith(t, cfg, svc)
		base := ferrytest.URL(t, svc)
		for _, path := range []string{"/docs", "/docs/init.js", "/openapi.json", "/openapi-3.0.yaml", "/asyncapi.json", "/docs/asyncapi", "/docs/asyncapi-standalone.js"} {
			if code, body := get(t, base+path); code != http.StatusNotFound || !strings.Contains(body, "not_found") {
				t.Errorf("GET %s: %d %s", path, code, body)
			}
		}
		mfs := scrape(t, base+"/metrics")
		if v, _ := sample(mfs, "ferry_requests_total", map[string]string{"route": "unmatched", "status": "404"}); v != 7 {
			t.Errorf("%v hidden documents counted as unmatched:\n%s", v, labelsOf(mfs, "ferry_requests_total"))
		}
	})
	t.Run("metrics off", func(t *testing.T) {
		cfg := ferrytest.Config(t)
		cfg.Metrics = "off"
		svc := ferry.MustNew("obs", "1.0.0", ferry.WithNATS(), quiet)
		ferry.Get(svc, "ping", "/ping", func(context.Context, *Empty) (*Empty, error) { return &Empty{}, nil })
		h := ferrytest.StartWith(t, cfg, svc)
		if code, _ := get(t, ferrytest.URL(t, svc)+"/metrics"); code != http.StatusNotFound {
			t.Errorf("/metrics answered %d", code)
		}
		for _, path := range []string{"/docs", "/docs/asyncapi"} {
			if code, _ := get(t, ferrytest.URL(t, svc)+path); code != http.StatusOK {
				t.Errorf("%s answered %d", path, code)
			}
		}
		callNATS(t, h.NATS(), "obs", "ping", &envelope.Request{})
		// The call is counted as its handler returns, which may be just
		// after its reply arrived.
		var reply *nats.Msg
		ferrytest.Eventually(t, func() bool {
			var err error
			reply, err = h.NATS().Request("$SRV.STATS.obs", nil, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var stats micro.Stats
			if err := json.Unmarshal(reply.Data, &stats); err != nil {
				t.Fatal(err)
			}
			return len(stats.Endpoints) == 1 && stats.Endpoints[0].Data == nil && stats.Endpoints[0].NumRequests == 1
		}, "STATS with metrics off counts the call, without data (last: %s)", lazyData{&reply})
	})
	t.Run("docs admin without admin listener", func(t *testing.T) {
		_, err := ferry.New("items", "1.0.0", ferry.WithConfig(ferry.Config{Docs: "admin"}))
		if err == nil || !strings.Contains(err.Error(), "FERRY_ADMIN_ADDR") {
			t.Errorf("got %v", err)
		}
	})
}

// TestPanickingMiddlewareIsCounted: a middleware that panics (outside the
// recovery around the handler) is answered 500 by the last-resort
// recovery, and counted as the 500 it was.
func TestPanickingMiddlewareIsCounted(t *testing.T) {
	boom := func(next ferry.Handler) ferry.Handler {
		return func(ctx context.Context, req *ferry.Request) error { panic("boom") }
	}
	svc := ferry.MustNew("items", "1.0.0", quiet, ferry.WithMiddleware(boom))
	ferry.Get(svc, "ping", "/ping", func(context.Context, *Empty) (*Empty, error) { return &Empty{}, nil })
	ferrytest.Start(t, svc)
	base := ferrytest.URL(t, svc)
	if code, _, _ := callHTTP(t, base, http.MethodGet, "/ping", "", nil); code != http.StatusInternalServerError {
		t.Fatalf("answered %d", code)
	}
	mfs := scrape(t, base+"/metrics")
	if v, _ := sample(mfs, "ferry_requests_total", map[string]string{"route": "GET /ping", "status": "500"}); v != 1 {
		t.Errorf("not counted as a 500:\n%s", labelsOf(mfs, "ferry_requests_total"))
	}
}

// TestExemplarsCarryTheTraceID: with tracing on, a request's counter and
// latency histogram carry its trace ID as an exemplar, in the OpenMetrics
// exposition.
func TestExemplarsCarryTheTraceID(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	svc := ferry.MustNew("items", "1.0.0", quiet)
	ferry.Get(svc, "ping", "/ping", func(context.Context, *Empty) (*Empty, error) { return &Empty{}, nil })
	startHost(t, []ferry.Option{ferry.WithConfig(ferrytest.Config(t)), ferry.WithTracerProvider(tp)}, svc)
	base := ferrytest.URL(t, svc)
	callHTTP(t, base, http.MethodGet, "/ping", "", nil)
	var traceID string
	ferrytest.Eventually(t, func() bool {
		for _, s := range exp.GetSpans() {
			if s.Name == "GET /ping" {
				traceID = s.SpanContext.TraceID().String()
			}
		}
		return traceID != ""
	}, "the request's span is exported")
	req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var counter, bucket bool
	for _, l := range strings.Split(string(body), "\n") {
		if !strings.Contains(l, `route="GET /ping"`) || !strings.Contains(l, `# {trace_id="`+traceID+`"}`) {
			continue
		}
		counter = counter || strings.HasPrefix(l, "ferry_requests_total")
		bucket = bucket || strings.HasPrefix(l, "ferry_request_duration_seconds_bucket")
	}
	if !counter || !bucket {
		t.Errorf("exemplars with trace %s: counter %v, histogram %v\n%s", traceID, counter, bucket, body)
	}
}

// lazyData prints a message's data when a failure message is formatted.
type lazyData struct{ m **nats.Msg }

func (l lazyData) String() string {
	if *l.m == nil {
		return "none"
	}
	return string((*l.m).Data)
}
