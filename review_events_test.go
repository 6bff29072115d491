package ferry_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// Found by review: a consumer that disappears with its stream (the stream deleted
// and created again, as docs/events.md "Migrating a stream" step 3 does) is
// recreated by the running subscription at the old stream's ack floor + 1.
// The new stream numbers its events from 1 again, so every event below
// that sequence is skipped: never delivered, never dead-lettered, and the
// consumer reports nothing pending — acknowledged publishes silently lost.
func TestRecreatedStreamEventsAreNotSkipped(t *testing.T) {
	var calls counter
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svc, placed, "ship", func(_ context.Context, e *OrderPlaced) error { calls.add(e.OrderID); return nil }, fast...)
	h := ferrytest.Start(t, svc)
	for i := range 10 {
		publish(t, h, OrderPlaced{OrderID: fmt.Sprintf("old-%d", i), Quantity: 1})
	}
	ferrytest.Eventually(t, func() bool {
		ack, num := pending(t, h, "shipping~ship")
		return calls.distinct() == 10 && ack == 0 && num == 0
	}, "10 events handled and acknowledged")
	time.Sleep(time.Second) // the subscription reads its ack floor every 250ms

	ctx := context.Background()
	js, _ := jetstream.New(h.NATS())
	stream, err := js.Stream(ctx, "ferry-order-placed")
	if err != nil {
		t.Fatal(err)
	}
	cfg := stream.CachedInfo().Config
	if err := js.DeleteStream(ctx, "ferry-order-placed"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the worker notices the consumer is gone
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		publish(t, h, OrderPlaced{OrderID: fmt.Sprintf("new-%d", i), Quantity: 1})
	}
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) && (calls.get("new-0") == 0 || calls.get("new-1") == 0 || calls.get("new-2") == 0) {
		time.Sleep(50 * time.Millisecond)
	}
	for i := range 3 {
		if calls.get(fmt.Sprintf("new-%d", i)) == 0 {
			info := "consumer not found"
			if c, err := js.Consumer(ctx, "ferry-order-placed", "shipping~ship"); err == nil {
				ci, _ := c.Info(ctx)
				info = fmt.Sprintf("deliver policy %v, opt start seq %d, num pending %d, ack pending %d",
					ci.Config.DeliverPolicy, ci.Config.OptStartSeq, ci.NumPending, ci.NumAckPending)
			}
			t.Errorf("event new-%d, published to the recreated stream, was never handled (%s)", i, info)
		}
	}
}

// Found by review: SubscribeTimeout's doc and docs/events.md promise that an event
// whose handler ignores its context and hangs is redelivered after the ack
// wait "and past the delivery limit it is dead-lettered". With
// SubscribeIdempotency, the hung run's claim is renewed for as long as it
// has not returned, so every redelivery is deferred (free, not counted):
// the event is never dead-lettered and is handed around forever.
func TestHungIdempotentHandlerIsDeadLettered(t *testing.T) {
	release := make(chan struct{})
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svc, placed, "ship", func(_ context.Context, e *OrderPlaced) error {
		<-release // ignores its context
		return nil
	}, ferry.SubscribeIdempotency(time.Hour), ferry.SubscribeAckWait(time.Second),
		ferry.SubscribeTimeout(50*time.Millisecond), ferry.SubscribeMaxDeliveries(2))
	h := ferrytest.Start(t, svc)
	t.Cleanup(func() { close(release) }) // before the host's shutdown
	publish(t, h, OrderPlaced{OrderID: "hung", Quantity: 1})
	js, _ := jetstream.New(h.NATS())
	cons, err := js.Consumer(context.Background(), "ferry-order-placed", "shipping~ship")
	if err != nil {
		t.Fatal(err)
	}
	// Max 2 runs, ack wait 1s: the limit is passed after about 2-3 s.
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) && len(deadLetters(t, h, "ship")) == 0 {
		time.Sleep(100 * time.Millisecond)
	}
	if len(deadLetters(t, h, "ship")) == 0 {
		info, _ := cons.Info(context.Background())
		t.Errorf("an event whose handler hangs was not dead-lettered past its limit of 2 runs; delivered %d times so far and still pending",
			info.Delivered.Consumer)
	}
}

// Found by review: docs/events.md says a deleted consumer is recreated "after the
// last acknowledged event it knew ... never from the start of the stream".
// The worker recreates it at the consumer's ack floor + 1, and the ack
// floor stops at the first event still unacknowledged: one event waiting
// out a retry backoff at the head of the stream keeps the floor at 0, so
// the consumer is recreated from the start and every event acknowledged
// after it is handled again.
func TestDeletedConsumerBehindARetryDoesNotRewind(t *testing.T) {
	var calls counter
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svc, placed, "ship", func(_ context.Context, e *OrderPlaced) error {
		calls.add(e.OrderID)
		if e.OrderID == "poison" {
			return fmt.Errorf("downstream refuses %s for now", e.OrderID)
		}
		return nil
	}, ferry.SubscribeBackoff(10*time.Minute, 10*time.Minute), ferry.SubscribeMaxDeliveries(100))
	h := ferrytest.Start(t, svc)
	publish(t, h, OrderPlaced{OrderID: "poison", Quantity: 1})
	ferrytest.Eventually(t, func() bool { return calls.get("poison") == 1 }, "the first event fails once")
	for i := range 10 {
		publish(t, h, OrderPlaced{OrderID: fmt.Sprintf("ok-%d", i), Quantity: 1})
	}
	ferrytest.Eventually(t, func() bool { return calls.distinct() == 11 }, "10 more events handled")
	time.Sleep(time.Second) // the subscription reads its ack floor every 250ms

	js, _ := jetstream.New(h.NATS())
	if err := js.DeleteConsumer(context.Background(), "ferry-order-placed", "shipping~ship"); err != nil {
		t.Fatal(err)
	}
	publish(t, h, OrderPlaced{OrderID: "after-delete", Quantity: 1})
	ferrytest.Eventually(t, func() bool { return calls.get("after-delete") == 1 }, "the subscription resumes after its consumer was deleted")
	time.Sleep(500 * time.Millisecond)
	again := 0
	for i := range 10 {
		if calls.get(fmt.Sprintf("ok-%d", i)) > 1 {
			again++
		}
	}
	if again > 0 {
		c, _ := js.Consumer(context.Background(), "ferry-order-placed", "shipping~ship")
		t.Errorf("%d of 10 acknowledged events were handled again: the consumer was recreated from stream sequence %d, the start of the stream",
			again, c.CachedInfo().Config.OptStartSeq)
	}
}
