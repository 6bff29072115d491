// Command events is two services that exchange events through JetStream:
// orders publishes order-placed for each POST /orders; shipping subscribes
// and ships — except the SKU "reject-me", which it refuses, so the event
// lands in the dead-letter stream with the reason.
//
//	go run ./examples/events                                     # both, on the embedded broker
//	curl -s localhost:8000/orders -H 'Content-Type: application/json' -d '{"sku":"kettle","quantity":1}'
//	curl -s localhost:8001/shipments
//	curl -s localhost:8000/orders -H 'Content-Type: application/json' -d '{"sku":"reject-me","quantity":1}'
//	curl -s localhost:8001/dead-letters
//
// Separate processes: -service orders -nats-listen 127.0.0.1:4333, then
// -service shipping -addr :8001 (it joins through the shared -data-dir),
// or set FERRY_NATS_URL for both.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nuid"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/events/ordersapi"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	return ferry.RunSystem(ctx, flag.NewFlagSet("events", flag.ContinueOnError), args,
		ferry.Part{Name: "orders", New: func() (*ferry.Service, error) { return newOrders(), nil }},
		ferry.Part{Name: "shipping", New: func() (*ferry.Service, error) { return newShipping(), nil }})
}

func newOrders(opts ...ferry.Option) *ferry.Service {
	svc := ferry.MustNew("orders", "1.0.0", append(opts, ferry.WithDescription("Takes orders and announces them."))...)
	placed := ferry.NewPublisher(svc, ordersapi.Placed)
	ferry.Handle(svc, ordersapi.PlaceOrder, func(ctx context.Context, in *ordersapi.PlaceOrderInput) (*ordersapi.PlaceOrderOutput, error) {
		event := ordersapi.OrderPlaced{OrderID: orderID(in.IdempotencyKey), SKU: in.Body.SKU, Quantity: in.Body.Quantity}
		// The order ID is the message ID. With an Idempotency-Key it derives
		// from the key, so a retried request (the client sends the same key
		// and body again) publishes the same message ID: JetStream stores
		// it once if the retry comes within the topic's duplicate window
		// (2 minutes), and past it, shipping's idempotency records (24
		// hours) keep it from being shipped twice. A real service would
		// scope the key to the caller's account.
		res, err := placed.Publish(ctx, &event, ferry.PublishMessageID(event.OrderID))
		if err != nil {
			return nil, err
		}
		out := &ordersapi.PlaceOrderOutput{Body: event}
		if res.Duplicate {
			out.Replayed = "true"
		}
		return out, nil
	})
	return svc
}

// orderID returns a new order ID, or the one an idempotency key stands for.
func orderID(idempotencyKey string) string {
	if idempotencyKey == "" {
		return nuid.Next()
	}
	sum := sha256.Sum256([]byte(idempotencyKey))
	return "k" + base64.RawURLEncoding.EncodeToString(sum[:16])
}

// Shipment is an order shipping has handled.
type Shipment struct {
	OrderID  string `json:"order_id"`
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
	Delivery uint64 `json:"delivery" doc:"Which delivery of the event was handled."`
}

type shipmentsOutput struct {
	Body []Shipment
}

type deadLettersOutput struct {
	Body []deadLetter
}

type deadLetter struct {
	Topic    string `json:"topic"`
	Consumer string `json:"consumer"`
	Error    string `json:"error"`
	Payload  string `json:"payload"`
}

func newShipping(opts ...ferry.Option) *ferry.Service {
	svc := ferry.MustNew("shipping", "1.0.0", append(opts, ferry.WithDescription("Ships placed orders."))...)
	var mu sync.Mutex
	var shipped []Shipment
	ferry.Subscribe(svc, ordersapi.Placed, "ship", func(ctx context.Context, e *ordersapi.OrderPlaced) error {
		if e.SKU == "reject-me" {
			return ferry.Permanent(fmt.Errorf("sku %s cannot be shipped", e.SKU))
		}
		mu.Lock()
		defer mu.Unlock()
		shipped = append(shipped, Shipment{OrderID: e.OrderID, SKU: e.SKU, Quantity: e.Quantity, Delivery: ferry.EventFromContext(ctx).Delivery})
		return nil
	}, ferry.SubscribeIdempotency(24*time.Hour))
	ferry.Get(svc, "list-shipments", "/shipments", func(context.Context, *struct{}) (*shipmentsOutput, error) {
		mu.Lock()
		defer mu.Unlock()
		return &shipmentsOutput{Body: append([]Shipment{}, shipped...)}, nil
	})
	// GET /dead-letters shows the error texts of failed handlers, which may
	// say more about the service's internals than its API does, to anyone
	// who can reach its port: fine for a local example; a real service
	// serves this on an admin listener or behind authorisation.
	ferry.Get(svc, "list-dead-letters", "/dead-letters", func(ctx context.Context, _ *struct{}) (*deadLettersOutput, error) {
		dls, err := ferry.ListDeadLetters(ctx, svc.Client(), ferry.DeadLetterFilter{Service: "shipping"}, 100)
		if err != nil {
			return nil, &ferry.Error{Status: http.StatusServiceUnavailable, Detail: "dead letters unavailable"}
		}
		out := &deadLettersOutput{Body: []deadLetter{}}
		for _, dl := range dls {
			out.Body = append(out.Body, deadLetter{Topic: dl.Topic, Consumer: dl.Consumer, Error: dl.Error, Payload: string(dl.Data)})
		}
		return out, nil
	})
	return svc
}
