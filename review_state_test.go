package ferry_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestHandbackWithoutItsRecordIsLogged: a delivery handed back at
// shutdown is free only if its record reaches the state bucket; when the
// bucket cannot take it (full, or unavailable) the handback is counted as
// a run on the next replica — the documented degradation — and the log
// says so. (Found by review: the failure used to be silent.)
func TestHandbackWithoutItsRecordIsLogged(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.ShutdownGrace = time.Second
	var calls counter
	var block atomic.Bool
	block.Store(true)
	entered := make(chan struct{}, 1)
	logs := &syncBuffer{}
	run := func() *ferry.Host {
		svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), ferry.WithLogger(newLogger(logs)))
		ferry.Subscribe(svc, placed, "ship", func(ctx context.Context, e *OrderPlaced) error {
			calls.add(e.OrderID)
			if block.Load() {
				select {
				case entered <- struct{}{}:
				default:
				}
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
	if _, err := placed.Publish(context.Background(), client, &OrderPlaced{OrderID: "a", Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	<-entered
	// The state bucket fills up (simulated: its limit lowered below its use).
	js, _ := jetstream.New(h.NATS())
	ctx := context.Background()
	st, err := js.Stream(ctx, "KV_ferry-state-shipping")
	if err != nil {
		t.Fatal(err)
	}
	full := st.CachedInfo().Config
	full.MaxBytes = 1
	if _, err := js.UpdateStream(ctx, full); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, cfg.ShutdownGrace)
	_ = h.Shutdown(sctx)
	cancel()

	block.Store(false)
	h = run() // provisioning restores the bucket's limit
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	th := &ferrytest.Host{Host: h, Client: ferry.NewClient(h.NATS())}
	ferrytest.Eventually(t, func() bool { ack, num := pending(t, th, "shipping~ship"); return ack == 0 && num == 0 }, "the event is settled")
	if !strings.Contains(logs.String(), "delivery record not written") {
		t.Errorf("the lost free record is not logged:\n%s", logs)
	}
}

// Found by review: the dead-letter stream is "created when missing, never
// rewritten", with the MaxMsgSize of whichever host created it. Raise
// FERRY_MAX_BODY and restart: the topic's owner updates its stream to the
// new size, but the dead-letter stream keeps the old one, so an event
// larger than the old limit can never be dead-lettered — it stays
// unacknowledged in its topic, redelivered every minute forever (none of
// the causes docs/events.md lists for a dead letter that cannot be stored,
// and one that never clears by itself).
func TestDeadLetterStreamFollowsTheBodyLimit(t *testing.T) {
	cfg := ferrytest.Config(t)
	run := func(maxBody int64) *ferrytest.Host {
		c := cfg
		c.MaxBody = maxBody
		svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
		ferry.NewPublisher(svc, placed) // the owner of the topic
		ferry.Subscribe(svc, placed, "ship", func(_ context.Context, e *OrderPlaced) error {
			return ferry.Permanent(errors.New("refused"))
		}, fast...)
		h, err := ferry.NewHost(ferry.WithConfig(c), quiet, ferry.WithRetryScale(ferrytest.RetryScale))
		if err != nil {
			t.Fatal(err)
		}
		_ = h.Add(svc)
		if err := h.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return &ferrytest.Host{Host: h, Client: ferry.NewClient(h.NATS())}
	}
	h := run(1 << 20)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = h.Shutdown(ctx)
	cancel()

	h = run(8 << 20) // the operator raises the body limit
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
	})
	publish(t, h, OrderPlaced{OrderID: "big", Quantity: 1, Note: strings.Repeat("x", 2<<20)})
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && len(deadLetters(t, h, "ship")) == 0 {
		time.Sleep(100 * time.Millisecond)
	}
	if len(deadLetters(t, h, "ship")) == 0 {
		ack, _ := pending(t, h, "shipping~ship")
		t.Errorf("a 2 MiB event refused permanently under an 8 MiB body limit was not dead-lettered (ack pending %d): the dead-letter stream keeps the 1 MiB limit it was created with", ack)
	}
}
