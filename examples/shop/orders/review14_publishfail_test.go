package orders_test

import (
	"context"
	"errors"
	"sync/atomic"
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

// lostPlacedAcks makes the first n publishes of order-placed fail after
// the stream stored them: what the orders service sees when the broker's
// acknowledgements are lost for a while (a node dying, a partition).
func lostPlacedAcks(n int32) ferry.ClientMiddleware {
	var lost atomic.Int32
	return func(next ferry.ClientHandler) ferry.ClientHandler {
		return func(ctx context.Context, msg *ferry.OutgoingMessage) error {
			err := next(ctx, msg)
			if msg.Kind == ferry.KindEvent && msg.Topic == ordersapi.Placed.Name && err == nil && lost.Add(1) <= n {
				return errors.New("the publish's acknowledgement was lost")
			}
			return err
		}
	}
}

// TestReview14LostPlacedAckInvoicesAReleasedOrder proves that an order
// whose publish-placed step fails its five attempts — each publish
// stored, each acknowledgement lost — is compensated (its payment
// refunded, its sold units released) although order-placed went out: the
// worker invoices it, and the order ends invoiced with its units back in
// stock. The shop promises that an invoiced order sold its units (and
// load.Check counts this a violation).
func TestReview14LostPlacedAckInvoicesAReleasedOrder(t *testing.T) {
	cat, err := catalog.New()
	if err != nil {
		t.Fatal(err)
	}
	ord, err := orders.New(orders.Settings{}, ferry.WithClientMiddleware(lostPlacedAcks(5)))
	if err != nil {
		t.Fatal(err)
	}
	wrk, err := worker.New(worker.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	h := ferrytest.Start(t, cat, ord, wrk)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := catalogapi.AddStock.Call(ctx, h.Client, &catalogapi.StockInput{SKU: "mug", Name: "Mug", Price: 1250, Quantity: 10}); err != nil {
		t.Fatal(err)
	}
	order, err := ordersapi.Place.Call(ctx, h.Client, &ordersapi.PlaceInput{SKU: "mug", Quantity: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Five attempts take about 15s of backoff, a sixth 16s more; the
	// order is checked once its run ended and the worker had time to
	// invoice it.
	deadline := time.Now().Add(60 * time.Second)
	ended := time.Time{}
	for time.Now().Before(deadline) {
		run, err := ordersapi.PlaceOrder.Get(ctx, h.Client, order.OrderID)
		if err == nil && run.State.Final() && ended.IsZero() {
			ended = time.Now()
		}
		if !ended.IsZero() && time.Since(ended) > 3*time.Second {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if ended.IsZero() {
		t.Fatal("the order's run did not end")
	}
	final, err := ordersapi.Get.Call(ctx, h.Client, &ordersapi.OrderIDInput{OrderID: order.OrderID})
	if err != nil {
		t.Fatal(err)
	}
	mug, err := catalogapi.GetProduct.Call(ctx, h.Client, &catalogapi.SKUInput{SKU: "mug"})
	if err != nil {
		t.Fatal(err)
	}
	if final.State == ordersapi.StateInvoiced && mug.Sold != 2 {
		t.Fatalf("order %s is invoiced (%s) but its units were released: %+v", final.OrderID, final.Invoice, mug)
	}
}
