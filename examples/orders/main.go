// Command orders places orders with a durable workflow: each order
// reserves stock, charges a card, waits for a reviewer's approval when it
// is large, holds a cooling-off period (a durable sleep) and ships. Kill
// the process at any point and start it again: every order goes on from
// its last completed step. A declined card or a rejected order undoes
// what was done — the charge refunded, the stock released — in reverse.
//
//	go run ./examples/orders                     # http://localhost:8000, embedded broker
//	curl -si localhost:8000/orders -H 'Content-Type: application/json' -d '{"sku":"mug","quantity":2,"card":"4242"}'
//	curl -N localhost:8000/runs/<run_id>/events  # the run at each change, until it ends
//	curl -si localhost:8000/orders -H 'Content-Type: application/json' -d '{"sku":"mug","quantity":20,"card":"4242"}'
//	curl -si localhost:8000/orders/<run_id>/approval -H 'Content-Type: application/json' -d '{"approved":true,"by":"ann"}'
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/orders/ordersapi"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("orders", flag.ContinueOnError)
	cooling := fs.Duration("cooling", 5*time.Second, "the cooling-off period before an order ships (a durable sleep)")
	review := fs.Duration("review", 10*time.Minute, "how long a large order waits for approval before it is rejected")
	cfg, err := ferry.LoadConfig(fs, args)
	if err != nil {
		return err
	}
	svc, err := newService(settings{cooling: *cooling, review: *review}, newWarehouse(), ferry.WithConfig(cfg))
	if err != nil {
		return err
	}
	return ferry.Run(ctx, svc)
}

// settings are the workflow's timings.
type settings struct {
	cooling, review time.Duration
}

// largeOrder is the quantity from which an order waits for approval.
const largeOrder = 10

// priceCents is every product's price, in cents.
const priceCents = 1250

// newService builds the orders service: the endpoints that start and
// approve orders, and the worker of the workflow.
func newService(s settings, w *warehouse, opts ...ferry.Option) (*ferry.Service, error) {
	svc, err := ferry.New("orders", "1.0.0", append([]ferry.Option{
		ferry.WithDescription("Places orders in durable workflows: 202 Accepted, then follow the run."),
	}, opts...)...)
	if err != nil {
		return nil, err
	}
	ferry.AcceptWorkflow(svc, ordersapi.StartOrder, ordersapi.PlaceOrder)
	ferry.Handle(svc, ordersapi.Approve, func(ctx context.Context, in *ordersapi.ApproveInput) (*struct{}, error) {
		return nil, ferry.Send(ctx, svc.Client(), in.RunID, "approval", in.Body)
	})
	ferry.HandleWorkflow(svc, ordersapi.PlaceOrder, placeOrder(s, w))
	return svc, nil
}

// placeOrder is the workflow. Every effect is a step; each step's effect
// is idempotent by its step key, so a step run again after a crash does
// not reserve, charge or ship twice.
func placeOrder(s settings, w *warehouse) ferry.WorkflowFunc[ordersapi.OrderRequest, ordersapi.Order] {
	return func(ctx ferry.WorkflowContext, in *ordersapi.OrderRequest) (*ordersapi.Order, error) {
		_, err := ferry.StepWithCompensation(ctx, "reserve-stock",
			func(ctx context.Context) (int, error) { return w.reserve(ferry.StepKey(ctx), in.SKU, in.Quantity) },
			func(ctx context.Context, _ int) error { w.release(ferry.StepKey(ctx), in.SKU, in.Quantity); return nil })
		if err != nil {
			return nil, err
		}
		total := in.Quantity * priceCents
		payment, err := ferry.StepWithCompensation(ctx, "charge-card",
			func(ctx context.Context) (string, error) { return w.charge(ferry.StepKey(ctx), in.Card, total) },
			func(ctx context.Context, payment string) error { w.refund(payment); return nil })
		if err != nil {
			return nil, err
		}
		if in.Quantity >= largeOrder {
			approval, err := ferry.Receive[ordersapi.Approval](ctx, "approval", s.review)
			switch {
			case errors.Is(err, ferry.ErrReceiveTimeout):
				return nil, ferry.NewError(http.StatusConflict, "the order was not approved in time")
			case err != nil:
				return nil, err
			case !approval.Approved:
				return nil, ferry.NewError(http.StatusConflict, "the order was rejected by "+approval.By)
			}
		}
		if err := ferry.Sleep(ctx, s.cooling); err != nil {
			return nil, err
		}
		shipment, err := ferry.Step(ctx, "ship", func(ctx context.Context) (string, error) { return w.ship(ferry.StepKey(ctx), in.SKU, in.Quantity), nil })
		if err != nil {
			return nil, err
		}
		return &ordersapi.Order{SKU: in.SKU, Quantity: in.Quantity, Total: total, Payment: payment, Shipment: shipment}, nil
	}
}

// warehouse simulates the stock, payment and shipping systems the
// workflow's steps call; each operation is idempotent by its key.
type warehouse struct {
	mu       sync.Mutex
	stock    map[string]int
	done     map[string]string // idempotency key → result
	refunded map[string]bool
}

func newWarehouse() *warehouse {
	return &warehouse{stock: map[string]int{"mug": 100, "shirt": 40, "poster": 5}, done: map[string]string{}, refunded: map[string]bool{}}
}

func (w *warehouse) reserve(key, sku string, n int) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.done[key]; ok {
		return w.stock[sku], nil
	}
	left, known := w.stock[sku]
	switch {
	case !known:
		return 0, ferry.NewError(http.StatusNotFound, "no product "+sku)
	case left < n:
		return 0, ferry.NewError(http.StatusConflict, fmt.Sprintf("only %d of %s left", left, sku))
	}
	w.stock[sku] = left - n
	w.done[key] = "reserved"
	return w.stock[sku], nil
}

func (w *warehouse) release(key, sku string, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.done[key]; !ok {
		w.stock[sku] += n
		w.done[key] = "released"
	}
}

func (w *warehouse) charge(key, card string, cents int) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if id, ok := w.done[key]; ok {
		return id, nil
	}
	if card == "declined" {
		return "", ferry.NewError(http.StatusPaymentRequired, "the card was declined")
	}
	id := "pay-" + key
	w.done[key] = id
	return id, nil
}

func (w *warehouse) refund(payment string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.refunded[payment] = true
}

func (w *warehouse) ship(key, sku string, n int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if id, ok := w.done[key]; ok {
		return id
	}
	id := "ship-" + key
	w.done[key] = id
	return id
}

func (w *warehouse) left(sku string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stock[sku]
}
