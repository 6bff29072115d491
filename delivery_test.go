package ferry_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestDeadLetterStoreFailureKeepsTheEvent: while the dead-letter stream
// cannot take a dead letter, the event stays in its topic, retried well
// past any server-side delivery cap, the handler that failed permanently
// does not run again, and the failure is logged once; once the stream is
// back, the dead letter is stored.
func TestDeadLetterStoreFailureKeepsTheEvent(t *testing.T) {
	var calls counter
	logs := &syncBuffer{}
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), ferry.WithLogger(newLogger(logs)))
	ferry.Subscribe(svc, placed, "ship", func(_ context.Context, e *OrderPlaced) error {
		calls.add(e.OrderID)
		return ferry.Permanent(errors.New("order refused"))
	}, ferry.SubscribeBackoff(10*time.Millisecond, 20*time.Millisecond), ferry.SubscribeMaxDeliveries(2))
	h := ferrytest.Start(t, svc)
	js, _ := jetstream.New(h.NATS())
	ctx := context.Background()
	dlq, err := js.Stream(ctx, "ferry-deadletters")
	if err != nil {
		t.Fatal(err)
	}
	dlqConfig := dlq.CachedInfo().Config
	if err := js.DeleteStream(ctx, "ferry-deadletters"); err != nil {
		t.Fatal(err)
	}

	publish(t, h, OrderPlaced{OrderID: "refused-1", Quantity: 1})
	cons, err := js.Consumer(ctx, "ferry-order-placed", "shipping~ship")
	if err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumRedelivered > 0 && info.Delivered.Consumer >= 10
	}, "the event is redelivered many times while its dead letter cannot be stored")
	if _, err := js.CreateStream(ctx, dlqConfig); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool { return len(deadLetters(t, h, "ship")) == 1 }, "the dead letter is stored once the stream is back")
	ferrytest.Eventually(t, func() bool { ack, num := pending(t, h, "shipping~ship"); return ack == 0 && num == 0 }, "the event is settled")
	if n := calls.get("refused-1"); n != 1 {
		t.Errorf("the handler that failed permanently ran %d times, want 1", n)
	}
	if n := strings.Count(logs.String(), "dead letter not stored"); n != 1 {
		t.Errorf("the failure to store the dead letter was logged %d times, want once:\n%s", n, logs)
	}
}

// TestMiddlewarePanicOnEventPath: a panic in a middleware (or an
// http.ErrAbortHandler panic in a handler) fails the delivery; the process
// goes on.
func TestMiddlewarePanicOnEventPath(t *testing.T) {
	var calls counter
	boom := func(next ferry.Handler) ferry.Handler {
		return func(ctx context.Context, req *ferry.Request) error {
			if req.Kind == ferry.KindEvent && ferry.EventFromContext(ctx) != nil && ferry.EventFromContext(ctx).Delivery == 1 {
				var m map[string]int
				m["x"]++ //lint:ignore SA5000 the panic is the point: a nil-map write in a middleware
			}
			return next(ctx, req)
		}
	}
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet, ferry.WithMiddleware(boom))
	ferry.Subscribe(svc, placed, "ship", func(_ context.Context, e *OrderPlaced) error {
		if calls.add(e.OrderID) == 1 && e.OrderID == "abort" {
			panic(http.ErrAbortHandler)
		}
		return nil
	}, fast...)
	h := ferrytest.Start(t, svc)
	publish(t, h, OrderPlaced{OrderID: "mw", Quantity: 1})
	publish(t, h, OrderPlaced{OrderID: "abort", Quantity: 1})
	ferrytest.Eventually(t, func() bool { return calls.get("mw") == 1 && calls.get("abort") == 2 },
		"the events are handled after the panics (%v)", &calls)
	ferrytest.Eventually(t, func() bool { ack, num := pending(t, h, "shipping~ship"); return ack == 0 && num == 0 }, "every event is settled")
}

// TestSubscribeRefusesBadOptions: options that can be checked when the
// subscription is declared are refused there, not in a worker.
func TestSubscribeRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  ferry.SubscribeOption
	}{
		{"negative backoff", ferry.SubscribeBackoff(-time.Second, time.Second)},
		{"backoff max below initial", ferry.SubscribeBackoff(time.Second, time.Millisecond)},
		{"zero concurrency", ferry.SubscribeConcurrency(0)},
		{"zero deliveries", ferry.SubscribeMaxDeliveries(0)},
		{"negative timeout", ferry.SubscribeTimeout(-time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				v := recover()
				if s, _ := v.(string); !strings.HasPrefix(s, "ferry: ") {
					t.Errorf("Subscribe with %s: recovered %v, want a ferry: panic", tt.name, v)
				}
			}()
			svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
			ferry.Subscribe(svc, placed, "ship", func(context.Context, *OrderPlaced) error { return nil }, tt.opt)
		})
	}
}

// TestShutdownDoesNotSpendDeliveries: events interrupted or fetched but
// not started when a replica shuts down are redelivered without counting
// toward the delivery limit.
func TestShutdownDoesNotSpendDeliveries(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.ShutdownGrace = time.Second
	var calls counter
	var block atomic.Bool
	block.Store(true)
	// The broker restarts with each host: JetStream redelivers what was
	// pending after the ack wait (a nak is not kept across a restart),
	// hence the short ack wait.
	run := func() *ferry.Host {
		svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
		ferry.Subscribe(svc, placed, "ship", func(ctx context.Context, e *OrderPlaced) error {
			calls.add(e.OrderID)
			if block.Load() {
				<-ctx.Done() // interrupted by the shutdown
				return ctx.Err()
			}
			return nil
		}, ferry.SubscribeMaxDeliveries(1), ferry.SubscribeConcurrency(1), ferry.SubscribeAckWait(time.Second))
		h := hostWith(t, cfg, svc)
		return h
	}
	h := run()
	client := ferry.NewClient(h.NATS())
	for _, id := range []string{"a", "b", "c", "d"} {
		if _, err := placed.Publish(context.Background(), client, &OrderPlaced{OrderID: id, Quantity: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 3 {
		ferrytest.Eventually(t, func() bool { return calls.total() == round+1 }, "round %d: a handler runs", round)
		ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
		_ = h.Shutdown(ctx)
		cancel()
		if round < 2 {
			h = run()
		}
	}
	block.Store(false)
	h = run()
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	th := &ferrytest.Host{Host: h, Client: ferry.NewClient(h.NATS())}
	ferrytest.Eventually(t, func() bool { ack, num := pending(t, th, "shipping~ship"); return ack == 0 && num == 0 }, "every event is settled")
	if dls := deadLetters(t, th, "ship"); len(dls) != 0 {
		t.Errorf("events interrupted by shutdowns were dead-lettered: %+v", dls)
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		if calls.get(id) == 0 {
			t.Errorf("event %s never handled", id)
		}
	}
}

// TestDeletedConsumerDoesNotRewind: a durable consumer deleted behind
// Ferry's back is recreated after the last event it acknowledged, not from
// the start of the stream.
func TestDeletedConsumerDoesNotRewind(t *testing.T) {
	var calls counter
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svc, placed, "ship", func(_ context.Context, e *OrderPlaced) error { calls.add(e.OrderID); return nil }, fast...)
	h := ferrytest.Start(t, svc)
	for i := range 20 {
		publish(t, h, OrderPlaced{OrderID: "o-" + string(rune('a'+i)), Quantity: 1})
	}
	ferrytest.Eventually(t, func() bool {
		ack, num := pending(t, h, "shipping~ship")
		return calls.distinct() == 20 && ack == 0 && num == 0
	},
		"20 events are handled and acknowledged")
	time.Sleep(time.Second) // the subscription reads its ack floor every 250ms while it acknowledges

	js, _ := jetstream.New(h.NATS())
	if err := js.DeleteConsumer(context.Background(), "ferry-order-placed", "shipping~ship"); err != nil {
		t.Fatal(err)
	}
	publish(t, h, OrderPlaced{OrderID: "after-delete", Quantity: 1})
	ferrytest.Eventually(t, func() bool { return calls.get("after-delete") == 1 }, "the subscription resumes after its consumer was deleted")
	ferrytest.Eventually(t, func() bool { ack, num := pending(t, h, "shipping~ship"); return ack == 0 && num == 0 }, "the new event is settled")
	for i := range 20 {
		if n := calls.get("o-" + string(rune('a'+i))); n != 1 {
			t.Errorf("event %d handled %d times: the recreated consumer rewound", i, n)
		}
	}
}

// TestIdempotencyClaimsBeforeTheHandler: a second delivery of a message
// ID whose handler is still running (a republish after the de-duplication
// window) does not run the handler a second time at once; it waits, and is
// acknowledged without running once the first run succeeded.
func TestIdempotencyClaimsBeforeTheHandler(t *testing.T) {
	cfg := ferrytest.Config(t)
	// A stream made beforehand with a short de-duplication window, so the
	// same message ID can be stored twice; the subscriber leaves it as is.
	first := ferrytest.StartWith(t, cfg, ferry.MustNew("nobody", "1.0.0", ferry.WithoutHTTP(), ferry.WithNATS(), quiet))
	js, _ := jetstream.New(first.NATS())
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "ferry-order-placed",
		Subjects: []string{"test.orders.placed", "ferry.replay.order-placed.>"}, Duplicates: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	_ = first.Shutdown(context.Background())

	var calls counter
	entered, release := make(chan struct{}, 1), make(chan struct{})
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svc, placed, "ship", func(_ context.Context, e *OrderPlaced) error {
		if calls.add(e.OrderID) == 1 {
			entered <- struct{}{}
			<-release
		}
		return nil
	}, ferry.SubscribeIdempotency(time.Hour), ferry.SubscribeAckWait(time.Second))
	h := ferrytest.StartWith(t, cfg, svc)
	publish(t, h, OrderPlaced{OrderID: "slow", Quantity: 1}, ferry.PublishMessageID("same"))
	<-entered
	time.Sleep(200 * time.Millisecond) // past the de-duplication window
	publish(t, h, OrderPlaced{OrderID: "slow", Quantity: 1}, ferry.PublishMessageID("same"))
	jsh, _ := jetstream.New(h.NATS())
	c, err := jsh.Consumer(context.Background(), "ferry-order-placed", "shipping~ship")
	if err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool {
		info, err := c.Info(context.Background())
		return err == nil && info.Delivered.Consumer >= 2
	}, "the second copy is delivered while the first run holds its claim")
	time.Sleep(100 * time.Millisecond)
	if n := calls.get("slow"); n != 1 {
		t.Errorf("the handler ran %d times while its first run was still going, want 1", n)
	}
	close(release)
	ferrytest.Eventually(t, func() bool { ack, num := pending(t, h, "shipping~ship"); return ack == 0 && num == 0 }, "both copies are settled")
	if n := calls.get("slow"); n != 1 {
		t.Errorf("the handler ran %d times, want 1", n)
	}
}
