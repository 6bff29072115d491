package ferry_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
	"github.com/ferrygo/ferry/internal/envelope"
	"github.com/ferrygo/ferry/internal/naming"
	"github.com/ferrygo/ferry/internal/telemetry"
)

// outcomes records what a service's observer sees.
type outcomes struct {
	mu    sync.Mutex
	begun int
	seen  []telemetry.Outcome
}

func (r *outcomes) Begin(ctx context.Context, _ *telemetry.Outcome) context.Context {
	r.mu.Lock()
	r.begun++
	r.mu.Unlock()
	return ctx
}

func (r *outcomes) End(_ context.Context, o *telemetry.Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := *o
	c.Header = nil
	r.seen = append(r.seen, c)
}

// find returns the outcomes for which match holds.
func (r *outcomes) find(match func(o telemetry.Outcome) bool) []telemetry.Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []telemetry.Outcome
	for _, o := range r.seen {
		if match(o) {
			out = append(out, o)
		}
	}
	return out
}

type obsIn struct {
	ID int `path:"id" minimum:"1"`
}

type obsOut struct {
	Body struct {
		ID int `json:"id"`
	}
}

// TestEveryOutcomeIsObserved: the observer sees every request and
// delivery, over each transport, including those that never reach the
// middleware chain — 404, 405, a spent budget, an undecodable NATS request,
// a malformed event, an idempotent skip, a dead letter — with its route,
// status or result, and the request ID the caller was answered with.
func TestEveryOutcomeIsObserved(t *testing.T) {
	rec := &outcomes{}
	svc := ferry.MustNew("obs", "1.0.0", ferry.WithNATS(), ferry.ObserveWith(rec), quiet)
	ep := ferry.Endpoint[obsIn, obsOut]{Service: "obs", Name: "get-thing", Method: http.MethodGet, Path: "/things/{id}"}
	ferry.Handle(svc, ep, func(_ context.Context, in *obsIn) (*obsOut, error) {
		out := &obsOut{}
		out.Body.ID = in.ID
		return out, nil
	})
	ferry.Subscribe(svc, placed, "ship", func(_ context.Context, e *OrderPlaced) error {
		switch e.OrderID {
		case "fail":
			return errors.New("always fails")
		case "permanent":
			return ferry.Permanent(errors.New("cannot ever work"))
		}
		return nil
	}, append(fast, ferry.SubscribeIdempotency(time.Hour))...)
	h := ferrytest.Start(t, svc)
	base := ferrytest.URL(t, svc)

	endpoint := func(transport, route string, status int) func(telemetry.Outcome) bool {
		return func(o telemetry.Outcome) bool {
			return o.Kind == telemetry.KindEndpoint && o.Transport == transport && o.Route == route && o.Status == status
		}
	}
	httpCall := func(method, path string, header http.Header) string {
		t.Helper()
		_, hdr, _ := callHTTP(t, base, method, path, "", header)
		return hdr.Get(ferry.HeaderRequestID)
	}
	natsCall := func(req *envelope.Request) string {
		t.Helper()
		resp := callNATS(t, h.NATS(), "obs", "get-thing", req)
		return resp.Header.Get(ferry.HeaderRequestID)
	}
	spent := http.Header{naming.HeaderTimeout: {"0"}}
	cases := []struct {
		name  string
		do    func() string // returns the request ID answered
		match func(telemetry.Outcome) bool
		code  string
	}{
		{"HTTP 200", func() string { return httpCall("GET", "/things/7", nil) }, endpoint("http", "GET /things/{id}", 200), ""},
		{"HTTP 422", func() string { return httpCall("GET", "/things/0", nil) }, endpoint("http", "GET /things/{id}", 422), "unprocessable_entity"},
		{"HTTP 404", func() string { return httpCall("GET", "/nothing/here", nil) }, endpoint("http", "unmatched", 404), "not_found"},
		{"HTTP 405", func() string { return httpCall("DELETE", "/things/7", nil) }, endpoint("http", "unmatched", 405), "method_not_allowed"},
		{"HTTP spent budget", func() string { return httpCall("GET", "/things/7", spent) }, endpoint("http", "GET /things/{id}", 504), "deadline_exceeded"},
		{"NATS 200", func() string { return natsCall(&envelope.Request{Params: map[string]string{"id": "7"}}) }, endpoint("nats", "get-thing", 200), ""},
		{"NATS 422", func() string { return natsCall(&envelope.Request{Params: map[string]string{"id": "0"}}) }, endpoint("nats", "get-thing", 422), "unprocessable_entity"},
		{"NATS spent budget", func() string {
			return natsCall(&envelope.Request{Header: spent.Clone(), Params: map[string]string{"id": "7"}})
		}, endpoint("nats", "get-thing", 504), "deadline_exceeded"},
		{"NATS undecodable", func() string {
			m := nats.NewMsg(naming.EndpointSubject("obs", "get-thing"))
			m.Header.Set(naming.HeaderPath, "%zz")
			reply, err := h.NATS().RequestMsg(m, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			return reply.Header.Get(ferry.HeaderRequestID)
		}, endpoint("nats", "get-thing", 400), "bad_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.do()
			var got []telemetry.Outcome
			ferrytest.Eventually(t, func() bool {
				got = rec.find(func(o telemetry.Outcome) bool { return o.RequestID == id })
				return len(got) == 1
			}, "one outcome with the request ID answered (%q)", id)
			o := got[0]
			if !tc.match(o) || o.Code != tc.code || o.Service != "obs" || o.Duration <= 0 {
				t.Errorf("observed %+v", o)
			}
			if o.Status < 400 && o.Transport != "http" && o.Name != "get-thing" {
				t.Errorf("observed endpoint %q", o.Name)
			}
		})
	}

	// Events: handled, skipped, retried then dead-lettered, dead-lettered
	// at once, malformed.
	js, _ := jetstream.New(h.NATS())
	kv, err := js.KeyValue(context.Background(), naming.StateBucket("obs"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(context.Background(), "idem.ship.ZG9uZS1iZWZvcmU", []byte("done")); err != nil { // "done-before"
		t.Fatal(err)
	}
	publish(t, h, OrderPlaced{OrderID: "ok", Quantity: 1}, ferry.PublishMessageID("ok"))
	publish(t, h, OrderPlaced{OrderID: "dup", Quantity: 1}, ferry.PublishMessageID("done-before"))
	publish(t, h, OrderPlaced{OrderID: "fail", Quantity: 1}, ferry.PublishMessageID("fail"))
	publish(t, h, OrderPlaced{OrderID: "permanent", Quantity: 1}, ferry.PublishMessageID("permanent"))
	m := nats.NewMsg(placed.Subject)
	m.Header.Set("Nats-Msg-Id", "malformed")
	m.Data = []byte(`{"order_id":`)
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	events := []struct {
		id      string
		results []string
		code    string
	}{
		{"ok", []string{telemetry.Handled}, ""},
		{"done-before", []string{telemetry.Skipped}, ""},
		{"fail", []string{telemetry.Retried, telemetry.Retried, telemetry.DeadLettered}, "internal_server_error"},
		{"permanent", []string{telemetry.DeadLettered}, "internal_server_error"},
		{"malformed", []string{telemetry.DeadLettered}, "malformed_event"},
	}
	for _, ev := range events {
		t.Run("event "+ev.id, func(t *testing.T) {
			var got []telemetry.Outcome
			ferrytest.Eventually(t, func() bool {
				got = rec.find(func(o telemetry.Outcome) bool { return o.Kind == telemetry.KindEvent && o.EventID == ev.id })
				return len(got) == len(ev.results)
			}, "%d outcomes of event %s", len(ev.results), ev.id)
			for i, o := range got {
				if o.Result != ev.results[i] || o.Attempt != uint64(i+1) || o.Topic != placed.Name || o.Name != "ship" {
					t.Errorf("outcome %d: %+v, want result %s", i, o, ev.results[i])
				}
				if o.Result != telemetry.Handled && o.Result != telemetry.Skipped && o.Code != ev.code {
					t.Errorf("outcome %d: code %q, want %q", i, o.Code, ev.code)
				}
			}
		})
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.begun != len(rec.seen) {
		t.Errorf("%d observations begun, %d ended", rec.begun, len(rec.seen))
	}
}
