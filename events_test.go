package ferry_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// OrderPlaced is the payload of the test topic.
type OrderPlaced struct {
	OrderID  string `json:"order_id" minLength:"1"`
	Quantity int    `json:"quantity" minimum:"1"`
	Note     string `json:"note,omitempty"`
}

var placed = ferry.Topic[OrderPlaced]{Name: "order-placed", Subject: "test.orders.placed", Description: "An order was placed."}

// fast makes retries quick in tests.
var fast = []ferry.SubscribeOption{ferry.SubscribeBackoff(10*time.Millisecond, 50*time.Millisecond), ferry.SubscribeMaxDeliveries(3)}

// counter counts handler calls per order ID.
type counter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *counter) add(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[id]++
	return c.calls[id]
}

func (c *counter) get(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[id]
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.calls {
		n += v
	}
	return n
}

func (c *counter) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls)
}

func deadLetters(t *testing.T, h *ferrytest.Host, consumer string) []ferry.DeadLetter {
	t.Helper()
	dls, err := ferry.ListDeadLetters(context.Background(), h.Client, ferry.DeadLetterFilter{Consumer: consumer}, 100)
	if err != nil {
		t.Fatal(err)
	}
	return dls
}

func publish(t *testing.T, h *ferrytest.Host, e OrderPlaced, opts ...ferry.PublishOption) {
	t.Helper()
	if _, err := placed.Publish(context.Background(), h.Client, &e, opts...); err != nil {
		t.Fatal(err)
	}
}

// pending returns the consumer's unacknowledged and undelivered counts.
func pending(t *testing.T, h *ferrytest.Host, durable string) (ackPending int, numPending uint64) {
	t.Helper()
	js, _ := jetstream.New(h.NATS())
	c, err := js.Consumer(context.Background(), "ferry-order-placed", durable)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.NumAckPending, info.NumPending
}

func TestEventDelivery(t *testing.T) {
	var calls counter
	release := make(chan struct{})
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	handler := func(ctx context.Context, e *OrderPlaced) error {
		n := calls.add(e.OrderID)
		switch {
		case strings.HasPrefix(e.OrderID, "flaky") && n <= 2:
			return errors.New("warehouse busy")
		case strings.HasPrefix(e.OrderID, "broken"):
			return errors.New("warehouse on fire")
		case strings.HasPrefix(e.OrderID, "refused"):
			return ferry.Permanent(errors.New("order refused"))
		case strings.HasPrefix(e.OrderID, "panics"):
			panic("handler bug")
		case strings.HasPrefix(e.OrderID, "hangs"):
			<-release // ignores its context: hangs past every deadline
		}
		if ev := ferry.EventFromContext(ctx); ev == nil || ev.Delivery != uint64(n) || ev.Topic != "order-placed" {
			t.Errorf("event metadata %+v on call %d", ev, n)
		}
		return nil
	}
	ferry.Subscribe(svc, placed, "ship", handler, append(fast, ferry.SubscribeAckWait(time.Second), ferry.SubscribeTimeout(50*time.Millisecond))...)
	h := ferrytest.Start(t, svc)
	t.Cleanup(func() { close(release) }) // runs before the host's shutdown

	for _, id := range []string{"ok-1", "flaky-1", "broken-1", "refused-1", "panics-1", "hangs-1"} {
		publish(t, h, OrderPlaced{OrderID: id, Quantity: 1})
	}
	publish(t, h, OrderPlaced{OrderID: "dup-1", Quantity: 1}, ferry.PublishMessageID("same-id"))
	publish(t, h, OrderPlaced{OrderID: "dup-2", Quantity: 1}, ferry.PublishMessageID("same-id")) // a retried publish

	ferrytest.Eventually(t, func() bool { return len(deadLetters(t, h, "ship")) == 4 }, "four events are dead-lettered (%d: %+v; calls %v)",
		len(deadLetters(t, h, "ship")), deadLetters(t, h, "ship"), &calls)
	tests := []struct {
		id       string
		calls    int
		deadErr  string // "" when not dead-lettered
		attempts uint64
	}{
		{"ok-1", 1, "", 0},
		{"flaky-1", 3, "", 0},
		{"broken-1", 3, "warehouse on fire", 3},
		{"refused-1", 1, "order refused", 1},
		{"panics-1", 3, "panic: handler bug", 3},
		{"hangs-1", 3, "without an acknowledgement", 4},
		{"dup-1", 1, "", 0},
		{"dup-2", 0, "", 0},
	}
	dead := map[string]ferry.DeadLetter{}
	for _, dl := range deadLetters(t, h, "ship") {
		dead[strings.Split(strings.Split(string(dl.Data), `"order_id":"`)[1], `"`)[0]] = dl
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := calls.get(tt.id); got != tt.calls {
				t.Errorf("handler ran %d times, want %d", got, tt.calls)
			}
			dl, isDead := dead[tt.id]
			if (tt.deadErr != "") != isDead {
				t.Fatalf("dead-lettered: %v, want %v", isDead, tt.deadErr != "")
			}
			if isDead {
				if !strings.Contains(dl.Error, tt.deadErr) || dl.Deliveries != tt.attempts || dl.Topic != "order-placed" ||
					dl.Service != "shipping" || dl.Consumer != "ship" || dl.Subject != "test.orders.placed" || dl.MessageID == "" {
					t.Errorf("dead letter %+v", dl)
				}
				if dl.Header.Get("Content-Type") != "application/json" {
					t.Errorf("original headers lost: %v", dl.Header)
				}
			}
		})
	}
	ferrytest.Eventually(t, func() bool { ack, num := pending(t, h, "shipping~ship"); return ack == 0 && num == 0 },
		"every event is settled")
}

func TestMalformedEventsAreDeadLettered(t *testing.T) {
	var calls counter
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svc, placed, "ship", func(_ context.Context, e *OrderPlaced) error {
		calls.add(e.OrderID)
		return nil
	}, fast...)
	h := ferrytest.Start(t, svc)
	js, _ := jetstream.New(h.NATS())
	raw := func(id, data string) {
		t.Helper()
		m := nats.NewMsg("test.orders.placed")
		m.Header.Set("Nats-Msg-Id", id)
		m.Data = []byte(data)
		if _, err := js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	raw("not-json", `{"order_id":`)
	raw("wrong-type", `{"order_id":"w","quantity":"two"}`)
	raw("breaks-minimum", `{"order_id":"b","quantity":0}`)
	raw("missing-field", `{"quantity":1}`)
	raw("unknown-field", `{"order_id":"u","quantity":1,"gift_wrap":true,"extra":{"nested":[1]}}`)

	ferrytest.Eventually(t, func() bool { return len(deadLetters(t, h, "ship")) == 4 }, "the malformed events are dead-lettered")
	for _, dl := range deadLetters(t, h, "ship") {
		if !strings.HasPrefix(dl.Error, "malformed event") || dl.Deliveries != 1 {
			t.Errorf("dead letter %s: %q after %d deliveries", dl.MessageID, dl.Error, dl.Deliveries)
		}
	}
	ferrytest.Eventually(t, func() bool { return calls.get("u") == 1 }, "the event with unknown fields is handled")
	if calls.distinct() != 1 {
		t.Errorf("the handler saw %d events, want only the valid one", calls.distinct())
	}
}

// TestReplayReachesOneConsumer: an event published on a consumer's replay
// subject reaches that consumer only, whatever its message ID.
func TestReplayReachesOneConsumer(t *testing.T) {
	var a, b counter
	cfg := ferrytest.Config(t)
	svcA := ferry.MustNew("billing", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svcA, placed, "bill", func(_ context.Context, e *OrderPlaced) error { a.add(e.OrderID); return nil }, fast...)
	svcB := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svcB, placed, "ship", func(_ context.Context, e *OrderPlaced) error { b.add(e.OrderID); return nil }, fast...)
	h := ferrytest.StartWith(t, cfg, svcA, svcB)

	publish(t, h, OrderPlaced{OrderID: "o-1", Quantity: 1}, ferry.PublishMessageID("m-1"))
	ferrytest.Eventually(t, func() bool { return a.get("o-1") == 1 && b.get("o-1") == 1 }, "both consumers get the event")

	js, _ := jetstream.New(h.NATS())
	m := nats.NewMsg("ferry.replay.order-placed.billing.bill")
	m.Header.Set("Nats-Msg-Id", "replay-1")
	m.Data = []byte(`{"order_id":"o-1","quantity":1}`)
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool { return a.get("o-1") == 2 }, "the replay reaches billing")
	publish(t, h, OrderPlaced{OrderID: "o-2", Quantity: 1})
	ferrytest.Eventually(t, func() bool { return b.get("o-2") == 1 }, "shipping is still consuming")
	if b.get("o-1") != 1 {
		t.Errorf("shipping saw the replay meant for billing")
	}
}

// TestIdempotencyAcrossConsumerReset: the consumer is deleted behind
// Ferry's back; the subscription recreates it, and whatever is delivered
// again, the idempotency records keep the handler from running twice for
// any event.
func TestIdempotencyAcrossConsumerReset(t *testing.T) {
	var calls counter
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svc, placed, "ship", func(_ context.Context, e *OrderPlaced) error { calls.add(e.OrderID); return nil },
		append(fast, ferry.SubscribeIdempotency(time.Hour))...)
	h := ferrytest.Start(t, svc)
	for i := range 20 {
		publish(t, h, OrderPlaced{OrderID: "o-" + string(rune('a'+i)), Quantity: 1})
	}
	ferrytest.Eventually(t, func() bool { return calls.distinct() == 20 }, "20 events are handled")

	js, _ := jetstream.New(h.NATS())
	if err := js.DeleteConsumer(context.Background(), "ferry-order-placed", "shipping~ship"); err != nil {
		t.Fatal(err)
	}
	publish(t, h, OrderPlaced{OrderID: "after-reset", Quantity: 1})
	ferrytest.Eventually(t, func() bool { return calls.get("after-reset") == 1 }, "the subscription resumes after its consumer was deleted")
	ferrytest.Eventually(t, func() bool { ack, num := pending(t, h, "shipping~ship"); return ack == 0 && num == 0 }, "the redelivered events are settled")
	for i := range 20 {
		if n := calls.get("o-" + string(rune('a'+i))); n != 1 {
			t.Errorf("event %d handled %d times", i, n)
		}
	}
}

func TestTopicFull(t *testing.T) {
	small := ferry.Topic[OrderPlaced]{Name: "tiny", Subject: "test.tiny", MaxBytes: 2048}
	svc := ferry.MustNew("producer", "1.0.0", ferry.WithoutHTTP(), quiet)
	pub := ferry.NewPublisher(svc, small)
	ferrytest.Start(t, svc)
	var err error
	for i := 0; i < 200 && err == nil; i++ {
		_, err = pub.Publish(context.Background(), &OrderPlaced{OrderID: strings.Repeat("x", 100), Quantity: 1})
	}
	var fe *ferry.Error
	if !errors.Is(err, ferry.ErrTopicFull) || !errors.As(err, &fe) || fe.Code != "topic_full" {
		t.Fatalf("publishing into a full topic: %v", err)
	}
}

func TestPublishBatch(t *testing.T) {
	var calls atomic.Int32
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svc, placed, "ship", func(context.Context, *OrderPlaced) error { calls.Add(1); return nil }, ferry.SubscribeConcurrency(64))
	h := ferrytest.Start(t, svc)
	events := make([]*OrderPlaced, 1000)
	for i := range events {
		events[i] = &OrderPlaced{OrderID: "b", Quantity: i + 1}
	}
	if _, err := placed.PublishBatch(context.Background(), h.Client, events); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool { return calls.Load() == 1000 }, "1000 events are handled (%d)", calls.Load())
}

func TestStreamChangeJetStreamCannotApply(t *testing.T) {
	cfg := ferrytest.Config(t)
	logs := &syncBuffer{}
	// A stream made earlier as a work queue: Ferry asks for limits
	// retention, which JetStream cannot change in place.
	first := ferrytest.StartWith(t, cfg, ferry.MustNew("nobody", "1.0.0", ferry.WithoutHTTP(), quiet))
	js, _ := jetstream.New(first.NATS())
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "ferry-order-placed",
		Subjects: []string{"test.orders.placed", "ferry.replay.order-placed.>"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	_ = first.Shutdown(context.Background())

	var calls atomic.Int32
	svc := ferry.MustNew("orders", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.NewPublisher(svc, placed) // the owner: it provisions the stream
	ferry.Subscribe(svc, placed, "ship", func(context.Context, *OrderPlaced) error { calls.Add(1); return nil })
	h, _ := ferry.NewHost(ferry.WithConfig(cfg), ferry.WithLogger(newLogger(logs)))
	_ = h.Add(svc)
	if err := h.Start(context.Background()); err != nil {
		t.Fatalf("start with a stream JetStream cannot update: %v", err)
	}
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	if !strings.Contains(logs.String(), "cannot apply in place") || !strings.Contains(logs.String(), "docs/events.md") {
		t.Errorf("no migration warning in the logs:\n%s", logs)
	}
}

// TestLongHandlerKeepsItsEvent: a handler that runs for more than twice
// the ack wait is not given a second delivery: progress reports keep the
// event.
func TestLongHandlerKeepsItsEvent(t *testing.T) {
	var calls counter
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svc, placed, "ship", func(ctx context.Context, e *OrderPlaced) error {
		calls.add(e.OrderID)
		select {
		case <-time.After(2500 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, ferry.SubscribeAckWait(time.Second))
	h := ferrytest.Start(t, svc)
	publish(t, h, OrderPlaced{OrderID: "slow-1", Quantity: 1})
	ferrytest.Eventually(t, func() bool {
		ack, num := pending(t, h, "shipping~ship")
		return calls.get("slow-1") == 1 && ack == 0 && num == 0
	},
		"the slow event is handled and acknowledged")
	if n := calls.get("slow-1"); n != 1 {
		t.Errorf("the handler ran %d times, want 1", n)
	}
}

// TestExistingConsumerKeepsItsStart: a subscription restarted with
// SubscribeDeliverNew finds its consumer made with deliver-all; an existing
// consumer keeps where it starts (the option applies to a new one), and
// the service starts and consumes.
func TestExistingConsumerKeepsItsStart(t *testing.T) {
	cfg := ferrytest.Config(t)
	first := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(first, placed, "ship", func(context.Context, *OrderPlaced) error { return nil })
	h1 := ferrytest.StartWith(t, cfg, first)
	if err := h1.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	var calls counter
	logs := &syncBuffer{}
	again := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), ferry.WithLogger(newLogger(logs)))
	ferry.Subscribe(again, placed, "ship", func(_ context.Context, e *OrderPlaced) error { calls.add(e.OrderID); return nil }, ferry.SubscribeDeliverNew())
	h, _ := ferry.NewHost(ferry.WithConfig(cfg), quiet)
	_ = h.Add(again)
	if err := h.Start(context.Background()); err != nil {
		t.Fatalf("start with an existing consumer: %v", err)
	}
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	if strings.Contains(logs.String(), "level=WARN") || strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("warnings in the logs:\n%s", logs)
	}
	client := ferry.NewClient(h.NATS())
	if _, err := placed.Publish(context.Background(), client, &OrderPlaced{OrderID: "still-consumed", Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool { return calls.get("still-consumed") == 1 }, "events are still handled")
}
