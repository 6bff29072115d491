package orders_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/shop/catalog"
	"github.com/ferrygo/ferry/examples/shop/catalog/catalogapi"
	"github.com/ferrygo/ferry/examples/shop/orders"
	"github.com/ferrygo/ferry/examples/shop/orders/ordersapi"
	"github.com/ferrygo/ferry/ferrytest"
)

// lostReserveAnswers makes every reserve call fail after the catalog
// answered it: what the orders service sees when the answer is lost (a
// broker node dying, a partition, the call's deadline) after the catalog
// reserved.
func lostReserveAnswers() ferry.ClientMiddleware {
	return func(next ferry.ClientHandler) ferry.ClientHandler {
		return func(ctx context.Context, msg *ferry.OutgoingMessage) error {
			err := next(ctx, msg)
			if msg.Endpoint == "reserve" && err == nil {
				return errors.New("the reserve call's answer was lost")
			}
			return err
		}
	}
}

// TestReview14FailedReserveHoldsNothing proves that an accepted order
// whose reserve-stock step fails after its retries — each call reserved
// on the catalog, each answer lost — ends failed with its units still
// reserved for good: the step failed, so no compensation was registered,
// and nothing releases what the catalog holds for the order. The shop
// promises that a failed order holds nothing (ordersapi.StateFailed:
// "whatever it held is released"; load.Check counts it a violation).
func TestReview14FailedReserveHoldsNothing(t *testing.T) {
	cat, err := catalog.New()
	if err != nil {
		t.Fatal(err)
	}
	ord, err := orders.New(orders.Settings{}, ferry.WithClientMiddleware(lostReserveAnswers()))
	if err != nil {
		t.Fatal(err)
	}
	h := ferrytest.Start(t, cat, ord)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := catalogapi.AddStock.Call(ctx, h.Client, &catalogapi.StockInput{SKU: "mug", Name: "Mug", Price: 1250, Quantity: 10}); err != nil {
		t.Fatal(err)
	}
	order, err := ordersapi.Place.Call(ctx, h.Client, &ordersapi.PlaceInput{SKU: "mug", Quantity: 2})
	if err != nil {
		t.Fatal(err)
	}
	var final *ordersapi.Order
	deadline := time.Now().Add(60 * time.Second) // five attempts: about 15s of backoff
	for time.Now().Before(deadline) {
		o, err := ordersapi.Get.Call(ctx, h.Client, &ordersapi.OrderIDInput{OrderID: order.OrderID})
		if err == nil && o.Terminal() {
			final = o
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if final == nil {
		run, _ := ordersapi.PlaceOrder.Get(ctx, h.Client, order.OrderID)
		steps, _ := ordersapi.PlaceOrder.Steps(ctx, h.Client, order.OrderID)
		t.Fatalf("the order did not end: run %+v, steps %+v", run, steps)
	}
	mug, err := catalogapi.GetProduct.Call(ctx, h.Client, &catalogapi.SKUInput{SKU: "mug"})
	if err != nil {
		t.Fatal(err)
	}
	if final.State != ordersapi.StateInvoiced && (mug.Reserved != 0 || mug.Stock != 10) {
		t.Fatalf("order %s ended %s (%q) holding stock: %+v", final.OrderID, final.State, final.Reason, mug)
	}
	// Its run was compensated, so it is not kept for an operator to
	// resume: it expires with the others (a failed run that compensated
	// nothing would be kept until resumed or discarded).
	var fe *ferry.Error
	if err := ordersapi.PlaceOrder.Resume(ctx, h.Client, order.OrderID); !errors.As(err, &fe) || fe.Code != "not_resumable" {
		t.Fatalf("the failed order's run can be resumed (%v): it would be kept for good", err)
	}
}
