package ferry_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// Found by review: SubscribeConcurrency promises "Ferry fetches only as many as it
// can start, so events do not wait in a local buffer while their ack wait
// runs" (and internal/worker: "takes messages ... only when one of its
// slots is free"). The pull (PullMaxMessages(concurrency), refilled at half)
// asks for more as soon as half the slots have taken a message, so with
// every slot busy up to concurrency-1 more events sit in the iterator's
// buffer, their ack wait running and no progress reported for them. A
// handler slower than the ack wait then gets events redelivered that never
// ran: JetStream's count rises, Ferry counts those as runs, and events are
// dead-lettered ("delivered N times without an acknowledgement") or run
// twice at once although no handler failed or hung.
func TestBusySlotsDoNotPrefetch(t *testing.T) {
	const concurrency = 4
	var running, maxAckPending atomic.Int64
	var calls counter
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svc, placed, "ship", func(ctx context.Context, e *OrderPlaced) error {
		running.Add(1)
		defer running.Add(-1)
		calls.add(e.OrderID)
		select { // a handler slower than the ack wait, as progress reports allow
		case <-time.After(1500 * time.Millisecond):
		case <-ctx.Done():
		}
		return nil
	}, ferry.SubscribeConcurrency(concurrency), ferry.SubscribeAckWait(time.Second), ferry.SubscribeMaxDeliveries(1))
	h := ferrytest.Start(t, svc)
	js, _ := jetstream.New(h.NATS())
	const n = 12
	for i := range n {
		publish(t, h, OrderPlaced{OrderID: fmt.Sprintf("o-%d", i), Quantity: 1})
	}
	cons, err := js.Consumer(context.Background(), "ferry-order-placed", "shipping~ship")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		info, err := cons.Info(context.Background())
		if err == nil {
			maxAckPending.Store(max(maxAckPending.Load(), int64(info.NumAckPending)))
			if calls.distinct() == n && info.NumAckPending == 0 && info.NumPending == 0 {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	// An acknowledgement and the next pull travel separately inside the
	// server, so the count can show one more than the slots for an
	// instant; a prefetch showed up to twice as many.
	if got := maxAckPending.Load(); got > concurrency+1 {
		t.Errorf("up to %d events were delivered to the replica at once with %d slots: %d waited in the local buffer with their ack wait running",
			got, concurrency, got-concurrency)
	}
	if dls := deadLetters(t, h, "ship"); len(dls) != 0 {
		t.Errorf("%d events were dead-lettered although every run succeeded; first: %s", len(dls), dls[0].Error)
	}
	for i := range n {
		if c := calls.get(fmt.Sprintf("o-%d", i)); c != 1 {
			t.Errorf("event o-%d ran %d times, want 1 (no run failed)", i, c)
		}
	}
}
