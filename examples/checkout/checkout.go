package main

import (
	"context"
	"errors"

	"github.com/nats-io/nuid"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/checkout/checkoutapi"
	"github.com/ferrygo/ferry/examples/checkout/inventoryapi"
)

// newCheckout checks orders out: it reserves their stock with the
// inventory over NATS, then publishes checkout-completed.
func newCheckout() *ferry.Service {
	svc := ferry.MustNew("checkout", "1.0.0", ferry.WithNATS(), ferry.WithDescription("Checks orders out."))
	completed := ferry.NewPublisher(svc, checkoutapi.Completed)
	ferry.Handle(svc, checkoutapi.Checkout, func(ctx context.Context, in *checkoutapi.Order) (*checkoutapi.CheckoutCompleted, error) {
		_, err := inventoryapi.Reserve.Call(ctx, svc.Client(), &inventoryapi.Reservation{SKU: in.SKU, Qty: in.Qty})
		var call *ferry.CallError
		switch {
		case errors.As(err, &call) && call.Code == "insufficient_stock":
			return nil, ferry.PassOn(err) // the customer's to know: answered as the inventory's 409
		case err != nil:
			return nil, err // any other failure of the inventory: 502, 503 or 504
		}
		order := &checkoutapi.CheckoutCompleted{OrderID: nuid.Next(), SKU: in.SKU, Qty: in.Qty}
		if _, err := completed.Publish(ctx, order, ferry.PublishMessageID(order.OrderID)); err != nil {
			return nil, err
		}
		return order, nil
	})
	return svc
}
