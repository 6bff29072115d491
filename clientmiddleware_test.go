package ferry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// traced echoes the X-Trace header it was called with.
type traced struct {
	Body struct {
		Trace string `json:"trace"`
	}
}

// traceInput has a body, so a call of traceEcho sends one.
type traceInput struct {
	Body struct {
		Note string `json:"note,omitempty"`
	}
}

var traceEcho = ferry.Endpoint[traceInput, traced]{Service: "tracee", Name: "trace", Method: http.MethodPost, Path: "/trace"}

// newTracee serves traceEcho and counts its calls.
func newTracee(calls *counter) *ferry.Service {
	svc := ferry.MustNew("tracee", "1.0.0", ferry.WithoutHTTP(), ferry.WithNATS(), quiet)
	ferry.Handle(svc, traceEcho, func(ctx context.Context, _ *traceInput) (*traced, error) {
		calls.add("trace")
		out := &traced{}
		out.Body.Trace = ferry.RequestFromContext(ctx).Header("X-Trace")
		return out, nil
	})
	return svc
}

// stamp is client middleware that appends name> to the X-Trace header.
func stamp(name string) ferry.ClientMiddleware {
	return func(next ferry.ClientHandler) ferry.ClientHandler {
		return func(ctx context.Context, m *ferry.OutgoingMessage) error {
			m.Header.Set("X-Trace", m.Header.Get("X-Trace")+name+">")
			return next(ctx, m)
		}
	}
}

// TestClientMiddlewareSetsHeaders: a header set by client middleware
// reaches the callee of a call and the subscriber of an event, whether the
// middleware is the host's, the service's (inside the host's) or a client's
// own; the request ID of the request being handled still travels.
func TestClientMiddlewareSetsHeaders(t *testing.T) {
	tests := []struct {
		name      string
		host, svc []ferry.ClientMiddleware
		client    []ferry.ClientMiddleware // NewClient's: the caller uses it instead of the service's
		want      string
	}{
		{name: "service", svc: []ferry.ClientMiddleware{stamp("a"), stamp("b")}, want: "a>b>"},
		{name: "host and service", host: []ferry.ClientMiddleware{stamp("host")}, svc: []ferry.ClientMiddleware{stamp("svc")}, want: "host>svc>"},
		{name: "host", host: []ferry.ClientMiddleware{stamp("host")}, want: "host>"},
		{name: "NewClient", client: []ferry.ClientMiddleware{stamp("own")}, want: "own>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ferrytest.Config(t)
			var calls counter
			var mu sync.Mutex
			seen := map[string][2]string{} // order ID: X-Trace, request ID
			sub := ferry.MustNew("listener", "1.0.0", ferry.WithConfig(cfg), ferry.WithoutHTTP(), quiet)
			ferry.Subscribe(sub, placed, "listen", func(ctx context.Context, e *OrderPlaced) error {
				req := ferry.RequestFromContext(ctx)
				mu.Lock()
				defer mu.Unlock()
				seen[e.OrderID] = [2]string{req.Header("X-Trace"), req.ID}
				return nil
			})
			callerOpts := []ferry.Option{ferry.WithConfig(cfg), quiet}
			if tt.svc != nil {
				callerOpts = append(callerOpts, ferry.WithClientMiddleware(tt.svc...))
			}
			caller := ferry.MustNew("caller", "1.0.0", callerOpts...)
			pub := ferry.NewPublisher(caller, placed)
			var client *ferry.Client
			got := map[string]string{}
			ferry.Post(caller, "go", "/go", func(ctx context.Context, _ *Empty) (*Empty, error) {
				c := caller.Client()
				if client != nil {
					c = client
				}
				out, err := traceEcho.Call(ctx, c, nil)
				if err != nil {
					return nil, err
				}
				got["call"] = out.Body.Trace
				if client != nil {
					_, err = placed.Publish(ctx, client, &OrderPlaced{OrderID: "one", Quantity: 1})
				} else {
					_, err = pub.Publish(ctx, &OrderPlaced{OrderID: "one", Quantity: 1})
				}
				if err != nil {
					return nil, err
				}
				events := []*OrderPlaced{{OrderID: "b1", Quantity: 1}, {OrderID: "b2", Quantity: 1}}
				if client != nil {
					_, err = placed.PublishBatch(ctx, client, events)
				} else {
					_, err = pub.PublishBatch(ctx, events)
				}
				return nil, err
			})
			hostOpts := []ferry.Option{ferry.WithConfig(cfg)}
			if tt.host != nil {
				hostOpts = append(hostOpts, ferry.WithClientMiddleware(tt.host...))
			}
			h := startHost(t, hostOpts, newTracee(&calls), sub, caller)
			if tt.client != nil {
				client = ferry.NewClient(h.NATS(), ferry.ClientWithMiddleware(tt.client...))
			}

			status, _, body := callHTTP(t, ferrytest.URL(t, caller), http.MethodPost, "/go", "", http.Header{ferry.HeaderRequestID: {"req-1"}})
			if status != http.StatusNoContent && status != http.StatusOK {
				t.Fatalf("%d %s", status, body)
			}
			if got["call"] != tt.want {
				t.Errorf("the callee saw X-Trace %q, want %q", got["call"], tt.want)
			}
			ferrytest.Eventually(t, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(seen) == 3
			}, "the three events are handled")
			for id, s := range seen {
				if s != [2]string{tt.want, "req-1"} {
					t.Errorf("event %s carried X-Trace %q and request ID %q, want %q and req-1", id, s[0], s[1], tt.want)
				}
			}
		})
	}
}

// outcomeOf names the outcome a client middleware observes.
func outcomeOf(err error) string {
	var ce *ferry.CallError
	var fe *ferry.Error
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ce):
		return fmt.Sprintf("%d %s", ce.Status, ce.Code)
	case errors.As(err, &fe):
		return fmt.Sprintf("%d %s", fe.GetStatus(), fe.Code)
	}
	return "error"
}

// recorder is client middleware that records every message's outcome.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *recorder) middleware(next ferry.ClientHandler) ferry.ClientHandler {
	return func(ctx context.Context, m *ferry.OutgoingMessage) error {
		err := next(ctx, m)
		what := m.Service + "." + m.Endpoint
		if m.Kind == ferry.KindEvent {
			what = m.Topic + "@" + m.Subject
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.seen = append(r.seen, fmt.Sprintf("%s %s body=%v: %s", m.Kind, what, len(m.Body) > 0, outcomeOf(err)))
		return err
	}
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.seen
	r.seen = nil
	return s
}

// TestClientMiddlewareObservesOutcomes: client middleware sees the outcome
// of every call (success, the callee's problem, no answer) and of every
// publish (one event, each event of a batch, a refusal by the broker), and
// a batch through middleware is still stored in order.
func TestClientMiddlewareObservesOutcomes(t *testing.T) {
	var calls counter
	pub := ferry.MustNew("pub", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.NewPublisher(pub, placed) // the topic's stream exists
	h := ferrytest.Start(t, newTracee(&calls), newCallee(), pub)
	rec := &recorder{}
	client := ferry.NewClient(h.NATS(), ferry.ClientWithMiddleware(rec.middleware))
	ctx := context.Background()
	orphan := ferry.Topic[OrderPlaced]{Name: "orphan", Subject: "test.orphan"}

	tests := []struct {
		name string
		do   func() error
		want []string
	}{
		{"call", func() error { _, err := traceEcho.Call(ctx, client, nil); return err },
			[]string{"endpoint tracee.trace body=true: ok"}},
		{"callee's 404", func() error { _, err := answer.Call(ctx, client, &answerInput{Case: "404"}); return err },
			[]string{"endpoint callee.answer body=false: 404 not_found"}},
		{"no responders", func() error { _, err := Absent.Call(ctx, client, nil); return err },
			[]string{"endpoint absent.nothing body=false: 503 no_responders"}},
		{"publish", func() error {
			_, err := placed.Publish(ctx, client, &OrderPlaced{OrderID: "p", Quantity: 1})
			return err
		},
			[]string{"event order-placed@test.orders.placed body=true: ok"}},
		{"no stream", func() error {
			_, err := orphan.Publish(ctx, client, &OrderPlaced{OrderID: "o", Quantity: 1})
			return err
		},
			[]string{"event orphan@test.orphan body=true: 503 no_stream"}},
		{"batch", func() error {
			events := []*OrderPlaced{{OrderID: "b1", Quantity: 1}, {OrderID: "b2", Quantity: 1}, {OrderID: "b3", Quantity: 1}}
			results, err := placed.PublishBatch(ctx, client, events)
			for i := 1; i < len(results); i++ {
				if results[i].Sequence <= results[i-1].Sequence {
					t.Errorf("the batch is stored out of order: %+v", results)
				}
			}
			return err
		}, []string{"event order-placed@test.orders.placed body=true: ok", "event order-placed@test.orders.placed body=true: ok", "event order-placed@test.orders.placed body=true: ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			got := rec.take()
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("observed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if (tt.want[0][len(tt.want[0])-2:] == "ok") != (err == nil) {
				t.Errorf("the caller got %v", err)
			}
		})
	}
}

// TestClientMiddlewareRefuses: a client middleware that refuses returns
// its error to the caller as it is, and nothing is sent; in a batch, only
// the refused event fails (and one whose middleware panicked), the others
// are stored in order.
func TestClientMiddlewareRefuses(t *testing.T) {
	var calls counter
	pub := ferry.MustNew("pub", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.NewPublisher(pub, placed)
	h := ferrytest.Start(t, newTracee(&calls), pub)
	refused := &ferry.Error{Status: http.StatusUnauthorized, Code: "no_credentials", Detail: "no token for this call"}
	guard := func(next ferry.ClientHandler) ferry.ClientHandler {
		return func(ctx context.Context, m *ferry.OutgoingMessage) error {
			switch {
			case m.Header.Get("X-Refuse") != "" || strings.Contains(string(m.Body), "refuse"):
				return refused
			case strings.Contains(string(m.Body), "panic"):
				panic("a middleware bug")
			case strings.Contains(string(m.Body), "swallow"):
				return nil // success, without sending
			}
			return next(ctx, m)
		}
	}
	client := ferry.NewClient(h.NATS(), ferry.ClientWithMiddleware(guard))
	ctx := context.Background()

	_, err := traceEcho.Call(ctx, client, nil, ferry.CallHeader("X-Refuse", "yes"))
	var ce *ferry.CallError
	if !errors.Is(err, refused) || errors.As(err, &ce) {
		t.Errorf("a refused call: %v, want the middleware's error as it is", err)
	}
	if calls.get("trace") != 0 {
		t.Error("a refused call reached the callee")
	}

	js, _ := jetstream.New(h.NATS())
	stored := func() uint64 {
		s, err := js.Stream(ctx, "ferry-order-placed")
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	before := stored()
	if _, err := placed.Publish(ctx, client, &OrderPlaced{OrderID: "refuse", Quantity: 1}); !errors.Is(err, refused) {
		t.Errorf("a refused publish: %v", err)
	}
	if _, err := placed.Publish(ctx, client, &OrderPlaced{OrderID: "swallow", Quantity: 1}); err == nil || !strings.Contains(err.Error(), "without publishing") {
		t.Errorf("a publish swallowed by a middleware: %v", err)
	}
	if n := stored(); n != before {
		t.Errorf("%d events stored by refused publishes", n-before)
	}

	events := []*OrderPlaced{{OrderID: "a", Quantity: 1}, {OrderID: "refuse", Quantity: 1}, {OrderID: "b", Quantity: 1}, {OrderID: "panic", Quantity: 1}, {OrderID: "c", Quantity: 1}}
	results, err := placed.PublishBatch(ctx, client, events)
	if err == nil || !strings.Contains(err.Error(), "2 of 5") {
		t.Errorf("batch error %v, want 2 of 5 not stored", err)
	}
	var last uint64
	for i, r := range results {
		switch events[i].OrderID {
		case "refuse":
			if !errors.Is(r.Err, refused) {
				t.Errorf("refused event: %v", r.Err)
			}
		case "panic":
			if r.Err == nil || !strings.Contains(r.Err.Error(), "panicked") {
				t.Errorf("event whose middleware panicked: %v", r.Err)
			}
		default:
			if r.Err != nil || r.Sequence <= last {
				t.Errorf("event %d: sequence %d after %d, %v", i, r.Sequence, last, r.Err)
			}
			last = r.Sequence
		}
	}
	if n := stored(); n != before+3 {
		t.Errorf("%d events stored by the batch, want 3", n-before)
	}
}

// BenchmarkClientCall measures one call at a time through a client
// without middleware and through one with a pass-through middleware: the
// seam's cost per call (allocs/op counts the callee's work too).
//
//	go test -run '^$' -bench ClientCall -benchtime 2000x .
func BenchmarkClientCall(b *testing.B) {
	var calls counter
	h := ferrytest.Start(b, newTracee(&calls))
	observe := func(next ferry.ClientHandler) ferry.ClientHandler {
		return func(ctx context.Context, m *ferry.OutgoingMessage) error { return next(ctx, m) }
	}
	for _, bc := range []struct {
		name string
		mws  []ferry.ClientMiddleware
	}{
		{"none", nil},
		{"one", []ferry.ClientMiddleware{observe}},
	} {
		b.Run("middleware="+bc.name, func(b *testing.B) {
			client := ferry.NewClient(h.NATS(), ferry.ClientWithMiddleware(bc.mws...))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := traceEcho.Call(ctx, client, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
