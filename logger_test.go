package ferry_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestLoggerCarriesTheRequest: ferry.Logger(ctx) in an endpoint and in an
// event handler carries the request ID and what is being handled.
func TestLoggerCarriesTheRequest(t *testing.T) {
	logs := &syncBuffer{}
	svc := ferry.MustNew("shop", "1.0.0", ferry.WithNATS(), ferry.WithLogger(newLogger(logs)))
	ferry.Get(svc, "ping", "/ping", func(ctx context.Context, _ *Empty) (*Empty, error) {
		ferry.Logger(ctx).Info("pinged")
		return &Empty{}, nil
	})
	ferry.Subscribe(svc, placed, "ship", func(ctx context.Context, e *OrderPlaced) error {
		ferry.Logger(ctx).Info("shipped")
		return nil
	})
	h := ferrytest.Start(t, svc)
	ping := ferry.Endpoint[Empty, Empty]{Service: "shop", Name: "ping", Method: "GET", Path: "/ping"}
	if _, err := ping.Call(context.Background(), h.Client, &Empty{}); err != nil {
		t.Fatal(err)
	}
	publish(t, h, OrderPlaced{OrderID: "o", Quantity: 1}, ferry.PublishMessageID("evt-1"))
	ferrytest.Eventually(t, func() bool { return strings.Contains(logs.String(), "shipped") }, "the event is handled")
	for _, want := range []string{
		"msg=pinged service=shop request_id=",
		"endpoint=ping",
		"msg=shipped service=shop request_id=",
		"consumer=ship topic=order-placed event_id=evt-1",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, logs)
		}
	}
	if ferry.Logger(context.Background()) == nil {
		t.Error("Logger outside a handler is nil")
	}
}

// TestAccessLog: with the access log on, every request and delivery is one
// INFO line, over each transport, 404s and events included.
func TestAccessLog(t *testing.T) {
	logs := &syncBuffer{}
	svc := ferry.MustNew("shop", "1.0.0", ferry.WithNATS(), ferry.WithLogger(newLogger(logs)))
	ferry.Get(svc, "ping", "/ping", func(ctx context.Context, _ *Empty) (*Empty, error) { return &Empty{}, nil })
	ferry.Subscribe(svc, placed, "ship", func(ctx context.Context, e *OrderPlaced) error { return nil })
	cfg := ferrytest.Config(t)
	cfg.AccessLog = true
	h := ferrytest.StartWith(t, cfg, svc)
	ping := ferry.Endpoint[Empty, Empty]{Service: "shop", Name: "ping", Method: "GET", Path: "/ping"}
	if _, err := ping.Call(context.Background(), h.Client, &Empty{}); err != nil {
		t.Fatal(err)
	}
	callHTTP(t, ferrytest.URL(t, svc), "GET", "/missing", "", nil)
	publish(t, h, OrderPlaced{OrderID: "o", Quantity: 1}, ferry.PublishMessageID("evt-1"))
	wants := []string{
		`level=INFO msg="ferry: request" service=shop transport=nats route=ping status=204 endpoint=ping duration=`,
		`level=INFO msg="ferry: request" service=shop transport=http route=unmatched status=404 code=not_found duration=`,
		`level=INFO msg="ferry: delivery" service=shop transport=nats consumer=ship topic=order-placed event_id=evt-1 result=handled attempt=1 duration=`,
	}
	ferrytest.Eventually(t, func() bool { return strings.Contains(logs.String(), wants[2]) }, "the delivery is logged")
	for _, want := range wants {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, logs)
		}
	}
}
