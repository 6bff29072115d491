// Command duo is two services that call each other over NATS through typed
// clients: catalog answers products with their order count (asking
// orders), and orders prices new orders (asking catalog). Run both in one
// process, or each in its own process against one broker.
//
//	go run ./examples/duo                                   # both; catalog on :8000, orders on :8001
//	go run ./examples/duo -service catalog -nats-listen 127.0.0.1:4333
//	go run ./examples/duo -service orders -addr :8001      # joins the first one's broker (same -data-dir)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sync"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/duo/catalogapi"
	"github.com/ferrygo/ferry/examples/duo/ordersapi"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	return ferry.RunSystem(ctx, flag.NewFlagSet("duo", flag.ContinueOnError), args,
		ferry.Part{Name: "catalog", New: func() (*ferry.Service, error) { return newCatalog(), nil }},
		ferry.Part{Name: "orders", New: func() (*ferry.Service, error) { return newOrders(), nil }})
}

// products is the catalog's stock.
var products = map[string]catalogapi.Product{
	"kettle": {SKU: "kettle", Name: "Kettle", Price: 2900},
	"teapot": {SKU: "teapot", Name: "Teapot", Price: 3500},
}

func newCatalog(opts ...ferry.Option) *ferry.Service {
	svc := ferry.MustNew("catalog", "1.0.0", append(opts, ferry.WithNATS(), ferry.WithDescription("Products and prices."))...)
	ferry.Handle(svc, catalogapi.GetProduct, func(ctx context.Context, in *catalogapi.GetProductInput) (*catalogapi.GetProductOutput, error) {
		p, ok := products[in.SKU]
		if !ok {
			return nil, &ferry.Error{Status: http.StatusNotFound, Code: "unknown_product", Detail: "no product " + in.SKU}
		}
		count, err := ordersapi.CountOrders.Call(ctx, svc.Client(), &ordersapi.CountOrdersInput{SKU: in.SKU})
		if err != nil {
			return nil, err // a failed call answers 502, 503 or 504, never the callee's problem
		}
		p.Orders = count.Body.Orders
		return &catalogapi.GetProductOutput{Body: p}, nil
	})
	return svc
}

func newOrders(opts ...ferry.Option) *ferry.Service {
	svc := ferry.MustNew("orders", "1.0.0", append(opts, ferry.WithNATS(), ferry.WithDescription("Orders, priced by the catalog."))...)
	var mu sync.Mutex
	var placed []ordersapi.Order
	ferry.Handle(svc, ordersapi.PlaceOrder, func(ctx context.Context, in *ordersapi.PlaceOrderInput) (*ordersapi.PlaceOrderOutput, error) {
		product, err := catalogapi.GetProduct.Call(ctx, svc.Client(), &catalogapi.GetProductInput{SKU: in.Body.SKU})
		var call *ferry.CallError
		switch {
		case errors.As(err, &call) && call.Status == http.StatusNotFound:
			// The catalog's 404 is a mistake in the order: say so in the
			// orders' own terms. Returned as it is, the failed call would
			// answer 502 (ferry.PassOn(err) would answer the catalog's 404).
			return nil, &ferry.Error{Status: http.StatusUnprocessableEntity, Code: "unknown_product", Detail: "no product " + in.Body.SKU,
				Errors: []*ferry.FieldError{{Location: "body.sku", Message: "the catalog has no such product", Value: in.Body.SKU}}}
		case err != nil:
			return nil, err // any other failure of the catalog: 502, 503 or 504
		}
		mu.Lock()
		defer mu.Unlock()
		o := ordersapi.Order{ID: len(placed) + 1, SKU: in.Body.SKU, Quantity: in.Body.Quantity, Total: in.Body.Quantity * product.Body.Price}
		placed = append(placed, o)
		return &ordersapi.PlaceOrderOutput{Body: o}, nil
	})
	ferry.Handle(svc, ordersapi.CountOrders, func(ctx context.Context, in *ordersapi.CountOrdersInput) (*ordersapi.CountOrdersOutput, error) {
		mu.Lock()
		defer mu.Unlock()
		out := &ordersapi.CountOrdersOutput{}
		out.Body.SKU = in.SKU
		for _, o := range placed {
			if o.SKU == in.SKU {
				out.Body.Orders++
			}
		}
		return out, nil
	})
	return svc
}
