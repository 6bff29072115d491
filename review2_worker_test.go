package ferry_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// Found by review: a consumer deleted while no pull is open (every slot busy) is
// never recreated. The next FetchNoWait to a consumer that no longer exists
// ends with a 503 no-responders status (nats.ErrNoResponders), which the
// pull treats as "connection down, retry in 100ms" rather than as a deleted
// consumer, so the worker retries the dead consumer forever and no event is
// delivered again.
func TestDeletedConsumerWhileSlotsBusyIsRecreated(t *testing.T) {
	var calls counter
	entered, release := make(chan struct{}, 1), make(chan struct{})
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svc, placed, "ship", func(ctx context.Context, e *OrderPlaced) error {
		calls.add(e.OrderID)
		if e.OrderID == "busy" {
			entered <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}, ferry.SubscribeConcurrency(1), ferry.SubscribeTimeout(20*time.Second))
	h := ferrytest.Start(t, svc)
	publish(t, h, OrderPlaced{OrderID: "busy", Quantity: 1})
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first event never ran")
	}
	// The only slot is busy: no pull is open. Delete the consumer now.
	js, _ := jetstream.New(h.NATS())
	if err := js.DeleteConsumer(context.Background(), "ferry-order-placed", "shipping~ship"); err != nil {
		t.Fatal(err)
	}
	close(release)
	publish(t, h, OrderPlaced{OrderID: "after-delete", Quantity: 1})
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) && calls.get("after-delete") == 0 {
		time.Sleep(20 * time.Millisecond)
	}
	if calls.get("after-delete") == 0 {
		_, err := js.Consumer(context.Background(), "ferry-order-placed", "shipping~ship")
		t.Errorf("8s after its consumer was deleted while every slot was busy, the subscription still receives nothing (consumer lookup: %v)", err)
	}
}
