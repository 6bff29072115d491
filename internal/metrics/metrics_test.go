package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferrygo/ferry/internal/telemetry"
)

type traceKey struct{}

// observe runs one outcome through an observer, as an entry point does.
func observe(ob telemetry.Observer, ctx context.Context, o telemetry.Outcome) {
	ctx = ob.Begin(ctx, &o)
	ob.End(ctx, &o)
}

// TestObserverCounts: requests are counted per route, endpoint, status and
// code, and timed per status class; deliveries per result and code; the
// label sets are resolved once and reused.
func TestObserverCounts(t *testing.T) {
	m := New(Config{})
	ob := m.Observer("orders", true)
	ctx := context.Background()
	get := telemetry.Outcome{Kind: telemetry.KindEndpoint, Transport: "http", Route: "GET /orders/{id}", Name: "get-order", Status: 200, Duration: 2 * time.Millisecond}
	for range 3 {
		observe(ob, ctx, get)
	}
	missing := get
	missing.Status, missing.Code = 404, "order_not_found"
	observe(ob, ctx, missing)
	unmatched := telemetry.Outcome{Kind: telemetry.KindEndpoint, Transport: "http", Route: "unmatched", Status: 404, Code: "not_found"}
	observe(ob, ctx, unmatched)
	observe(ob, ctx, unmatched)
	nats := telemetry.Outcome{Kind: telemetry.KindEndpoint, Transport: "nats", Route: "get-order", Name: "get-order", Status: 504, Code: "deadline_exceeded"}
	observe(ob, ctx, nats)

	ev := telemetry.Outcome{Kind: telemetry.KindEvent, Name: "ship", Topic: "order-placed", Result: telemetry.Retried, Code: "internal_server_error", Attempt: 1}
	observe(ob, ctx, ev)
	ev.Attempt, ev.Result = 2, telemetry.DeadLettered
	observe(ob, ctx, ev)
	skipped := telemetry.Outcome{Kind: telemetry.KindEvent, Name: "ship", Topic: "order-placed", Result: telemetry.Skipped, Attempt: 1}
	observe(ob, ctx, skipped)

	counters := []struct {
		labels []string
		want   float64
	}{
		{[]string{"orders", "http", "GET /orders/{id}", "get-order", "200", ""}, 3},
		{[]string{"orders", "http", "GET /orders/{id}", "get-order", "404", "order_not_found"}, 1},
		{[]string{"orders", "http", "unmatched", "", "404", "not_found"}, 2},
		{[]string{"orders", "nats", "get-order", "get-order", "504", "deadline_exceeded"}, 1},
	}
	for _, c := range counters {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(c.labels...)); got != c.want {
			t.Errorf("requests %v = %v, want %v", c.labels, got, c.want)
		}
	}
	// Timed by class: GET /orders/{id} 2xx and 4xx, unmatched 4xx, nats 5xx.
	if n := testutil.CollectAndCount(m.requestDurations); n != 4 {
		t.Errorf("%d duration series, want 4", n)
	}
	for _, c := range []struct {
		result, code string
		want         float64
	}{{telemetry.Retried, "internal_server_error", 1}, {telemetry.DeadLettered, "internal_server_error", 1}, {telemetry.Skipped, "", 1}} {
		if got := testutil.ToFloat64(m.deliveries.WithLabelValues("orders", "ship", "order-placed", c.result, c.code)); got != c.want {
			t.Errorf("deliveries %s = %v", c.result, got)
		}
	}
	if got := testutil.ToFloat64(m.redeliveries.WithLabelValues("orders", "ship", "order-placed")); got != 1 {
		t.Errorf("redeliveries = %v", got)
	}
	if got := testutil.ToFloat64(m.handlersInFlight.WithLabelValues("orders", "ship", "order-placed")); got != 0 {
		t.Errorf("in flight after settling = %v", got)
	}
	// Skipped deliveries are counted but not timed as handler runs.
	if n := testutil.CollectAndCount(m.handlerDurations); n != 2 {
		t.Errorf("%d handler duration series, want 2 (retried, dead_lettered)", n)
	}
}

// TestInFlight: a delivery is in flight between Begin and End.
func TestInFlight(t *testing.T) {
	m := New(Config{})
	ob := m.Observer("orders", true)
	o := &telemetry.Outcome{Kind: telemetry.KindEvent, Name: "ship", Topic: "order-placed", Attempt: 1}
	ctx := ob.Begin(context.Background(), o)
	g := m.handlersInFlight.WithLabelValues("orders", "ship", "order-placed")
	if got := testutil.ToFloat64(g); got != 1 {
		t.Fatalf("in flight = %v, want 1", got)
	}
	o.Result = telemetry.Handled
	ob.End(ctx, o)
	if got := testutil.ToFloat64(g); got != 0 {
		t.Fatalf("in flight = %v, want 0", got)
	}
}

// TestExemplars: with a TraceID hook, counters and histograms carry the
// trace ID as an exemplar in the OpenMetrics exposition.
func TestExemplars(t *testing.T) {
	m := New(Config{TraceID: func(ctx context.Context) string { id, _ := ctx.Value(traceKey{}).(string); return id }})
	ob := m.Observer("orders", true)
	ctx := context.WithValue(context.Background(), traceKey{}, "4bf92f3577b34da6a3ce929d0e0e4736")
	observe(ob, ctx, telemetry.Outcome{Kind: telemetry.KindEndpoint, Transport: "http", Route: "GET /x", Name: "x", Status: 200, Duration: time.Millisecond})
	observe(ob, context.Background(), telemetry.Outcome{Kind: telemetry.KindEndpoint, Transport: "http", Route: "GET /x", Name: "x", Status: 200, Duration: time.Millisecond})
	// A service that is not traced asks for no trace ID.
	observe(m.Observer("billing", false), ctx, telemetry.Outcome{Kind: telemetry.KindEndpoint, Transport: "http", Route: "GET /y", Name: "y", Status: 200})
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, req)
	body := rec.Body.String()
	if !strings.Contains(body, `status="200",transport="http"} 2.0 # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 1.0`) {
		t.Errorf("no exemplar on the counter:\n%s", grep(body, "ferry_requests_total"))
	}
	if !strings.Contains(body, `# {trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 0.001`) {
		t.Errorf("no exemplar on the histogram:\n%s", grep(body, "ferry_request_duration_seconds_bucket"))
	}
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, `service="billing"`) && strings.Contains(l, "trace_id") {
			t.Errorf("an exemplar on an untraced service's series: %s", l)
		}
	}
}

// TestExemplarInterval: a counter, and each histogram bucket, takes a
// new exemplar at most once per ExemplarInterval; work without a trace
// does not use up a slot.
func TestExemplarInterval(t *testing.T) {
	m := New(Config{TraceID: func(ctx context.Context) string { id, _ := ctx.Value(traceKey{}).(string); return id }})
	ob := m.Observer("orders", true)
	t0 := time.Unix(1_700_000_000, 0)
	for _, c := range []struct {
		trace string
		start time.Time
	}{
		{"", t0}, // no trace: no exemplar, and the next one is not held back
		{"11111111111111111111111111111111", t0},
		{"22222222222222222222222222222222", t0.Add(ExemplarInterval / 2)}, // too soon
		{"33333333333333333333333333333333", t0.Add(2 * ExemplarInterval)},
	} {
		ctx := context.Background()
		if c.trace != "" {
			ctx = context.WithValue(ctx, traceKey{}, c.trace)
		}
		observe(ob, ctx, telemetry.Outcome{Kind: telemetry.KindEndpoint, Transport: "http", Route: "GET /x", Name: "x",
			Status: 200, Start: c.start, Duration: time.Millisecond})
	}
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, req)
	body := rec.Body.String()
	for _, tc := range []struct {
		prefix, want string
	}{
		{"ferry_requests_total", `} 4.0 # {trace_id="33333333333333333333333333333333"} 1.0`},
		{"ferry_request_duration_seconds_bucket", `le="0.001"} 4 # {trace_id="33333333333333333333333333333333"} 0.001`},
	} {
		if got := grep(body, tc.prefix); !strings.Contains(got, tc.want) {
			t.Errorf("want %s, got:\n%s", tc.want, got)
		}
	}
	if strings.Contains(body, "2222") {
		t.Errorf("an exemplar within the interval of the previous one:\n%s", body)
	}
}

func grep(body, prefix string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestServiceHandler: a service's handler serves its own series and the
// process's, not another service's.
func TestServiceHandler(t *testing.T) {
	m := New(Config{})
	for _, svc := range []string{"orders", "billing"} {
		observe(m.Observer(svc, false), context.Background(), telemetry.Outcome{Kind: telemetry.KindEndpoint, Transport: "http", Route: "GET /x", Status: 200})
	}
	rec := httptest.NewRecorder()
	m.ServiceHandler("orders").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	switch s := string(body); {
	case !strings.Contains(s, `service="orders"`):
		t.Error("orders' series missing")
	case strings.Contains(s, `service="billing"`):
		t.Error("billing's series served on orders' handler")
	case !strings.Contains(s, "go_goroutines") || !strings.Contains(s, "process_cpu_seconds_total"):
		t.Error("runtime or process metrics missing")
	}
}

// TestCollectorNeverHoldsAScrape: a JetStream reading that hangs does not
// hold a scrape longer than Wait; the scrape answers with the last
// reading, and the next reading is not started while one is under way.
func TestCollectorNeverHoldsAScrape(t *testing.T) {
	c := NewSubscriptionsCollector(SubscriptionsOptions{
		Subscriptions: []Subscription{{Service: "orders", Consumer: "ship", Topic: "order-placed", Overdue: func() int { return 2 }}},
		MaxAge:        time.Nanosecond, Wait: 50 * time.Millisecond,
	})
	release := make(chan struct{})
	var mu sync.Mutex
	reads := 0
	c.read = func(ctx context.Context) reading {
		mu.Lock()
		reads++
		n := reads
		mu.Unlock()
		if n > 1 {
			<-release
		}
		return reading{lag: []lag{{known: true, pending: uint64(10 * n), ackPending: 1}}, dlq: []uint64{3}, dlqTotal: 7, hasDLQ: true, fresh: true}
	}
	m := New(Config{})
	if err := m.Register(c); err != nil {
		t.Fatal(err)
	}
	want := func(name string, v float64) {
		t.Helper()
		mfs, err := m.Gatherer().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				if got := mf.Metric[0].GetGauge().GetValue(); got != v {
					t.Errorf("%s = %v, want %v", name, got, v)
				}
				return
			}
		}
		t.Errorf("%s missing", name)
	}
	want("ferry_consumer_pending_messages", 10) // the first reading is quick
	want("ferry_event_handlers_overdue", 2)
	want("ferry_dead_letters", 3)
	want("ferry_dead_letter_stream_messages", 7)
	done := make(chan struct{})
	go func() {
		defer close(done)
		want("ferry_consumer_pending_messages", 10) // the second hangs: the first is answered
		want("ferry_consumer_pending_messages", 10)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("a scrape waited for a hanging reading")
	}
	close(release)
	mu.Lock()
	defer mu.Unlock()
	if reads != 2 {
		t.Errorf("%d readings started, want 2 (one at a time)", reads)
	}
}
