package orders_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/shop/catalog"
	"github.com/ferrygo/ferry/examples/shop/catalog/catalogapi"
	"github.com/ferrygo/ferry/examples/shop/orders"
	"github.com/ferrygo/ferry/examples/shop/orders/ordersapi"
	"github.com/ferrygo/ferry/examples/shop/worker"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestReview15CancelAfterPaidKeepsSale proves that a run cancelled once
// its order is paid — while publish-placed is retried (its
// acknowledgements lost, the event out and the order invoiced), or in
// the moment between the cancel endpoint's look at the order ("placed")
// and its cancel of the run — compensates: hold-stock's compensation
// releases the units the order bought, and the order ends invoiced (or
// paid) with its units back in stock. The shop promises that no order is
// released once paid, and load.Check counts an invoiced order whose
// reservation is not sold a violation.
func TestReview15CancelAfterPaidKeepsSale(t *testing.T) {
	cat, err := catalog.New()
	if err != nil {
		t.Fatal(err)
	}
	ord, err := orders.New(orders.Settings{}, ferry.WithClientMiddleware(lostPlacedAcks(1000)))
	if err != nil {
		t.Fatal(err)
	}
	wrk, err := worker.New(worker.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	h := ferrytest.Start(t, cat, ord, wrk)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := catalogapi.AddStock.Call(ctx, h.Client, &catalogapi.StockInput{SKU: "mug", Name: "Mug", Price: 1250, Quantity: 10}); err != nil {
		t.Fatal(err)
	}
	order, err := ordersapi.Place.Call(ctx, h.Client, &ordersapi.PlaceInput{SKU: "mug", Quantity: 2})
	if err != nil {
		t.Fatal(err)
	}
	// The first publish of order-placed is stored: the worker invoices
	// the order while its run retries the publish.
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := ordersapi.Get.Call(ctx, h.Client, &ordersapi.OrderIDInput{OrderID: order.OrderID})
		if err == nil && got.State == ordersapi.StateInvoiced {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the order was not invoiced: %+v, %v", got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The run is still going (its publish is retried): an operator
	// cancels it, as the cancel endpoint does after seeing it placed.
	if _, err := ordersapi.PlaceOrder.Cancel(ctx, h.Client, order.OrderID); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if _, err := ordersapi.PlaceOrder.Wait(wctx, h.Client, order.OrderID); err != nil {
		t.Fatal(err)
	}
	final, err := ordersapi.Get.Call(ctx, h.Client, &ordersapi.OrderIDInput{OrderID: order.OrderID})
	if err != nil {
		t.Fatal(err)
	}
	mug, err := catalogapi.GetProduct.Call(ctx, h.Client, &catalogapi.SKUInput{SKU: "mug"})
	if err != nil {
		t.Fatal(err)
	}
	if (final.State == ordersapi.StateInvoiced || final.State == ordersapi.StatePaid) && mug.Sold != 2 {
		t.Fatalf("order %s is %s (invoice %q) but its units were released: %+v", final.OrderID, final.State, final.Invoice, mug)
	}
}
