package main

import (
	"context"
	"net/http"

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
		if _, err := inventoryapi.Reserve.Call(ctx, svc.Client(), &inventoryapi.Reservation{SKU: in.SKU, Qty: in.Qty}); err != nil {
			// The inventory's 409 is the customer's to know; any other failure answers 502, 503 or 504.
			return nil, ferry.PassOn(err, http.StatusConflict)
		}
		order := &checkoutapi.CheckoutCompleted{OrderID: nuid.Next(), SKU: in.SKU, Qty: in.Qty}
		if _, err := completed.Publish(ctx, order, ferry.PublishMessageID(order.OrderID)); err != nil {
			return nil, err
		}
		return order, nil
	})
	return svc
}
