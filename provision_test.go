package ferry_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestSubscriberDoesNotRewriteTheStream: a subscriber built against an
// older declaration of a topic (a shorter MaxAge) leaves the stream its
// publisher provisioned as it is, and says it differs.
func TestSubscriberDoesNotRewriteTheStream(t *testing.T) {
	cfg := ferrytest.Config(t)
	current := ferry.Topic[OrderPlaced]{Name: "order-placed", Subject: "test.orders.placed", MaxAge: time.Hour}
	older := ferry.Topic[OrderPlaced]{Name: "order-placed", Subject: "test.orders.placed", MaxAge: time.Minute}
	producer := ferry.MustNew("orders", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.NewPublisher(producer, current)
	first := ferrytest.StartWith(t, cfg, producer)
	_ = first.Shutdown(context.Background())

	logs := &syncBuffer{}
	consumer := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), ferry.WithLogger(newLogger(logs)))
	ferry.Subscribe(consumer, older, "ship", func(context.Context, *OrderPlaced) error { return nil })
	h, _ := ferry.NewHost(ferry.WithConfig(cfg), ferry.WithLogger(newLogger(logs)))
	_ = h.Add(consumer)
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	js, _ := jetstream.New(h.NATS())
	s, err := js.Stream(context.Background(), "ferry-order-placed")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != time.Hour {
		t.Errorf("the subscriber changed the stream's MaxAge to %v", got)
	}
	if !strings.Contains(logs.String(), "differs from this service's declaration") || !strings.Contains(logs.String(), "max age") {
		t.Errorf("no drift warning:\n%s", logs)
	}
}

// TestProvisionNone: with provisioning off, nothing is created and a
// missing stream fails the start with a message naming it; what exists is
// used as it is.
func TestProvisionNone(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.Provision = "none"
	producer := ferry.MustNew("orders", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.NewPublisher(producer, placed)
	h, _ := ferry.NewHost(ferry.WithConfig(cfg), quiet)
	_ = h.Add(producer)
	err := h.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "ferry-order-placed") || !strings.Contains(err.Error(), "FERRY_PROVISION=none") {
		t.Fatalf("start with provisioning off and no stream: %v", err)
	}

	owner := cfg
	owner.Provision = ""
	made := ferry.MustNew("orders", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.NewPublisher(made, placed)
	first := ferrytest.StartWith(t, owner, made)
	_ = first.Shutdown(context.Background())

	again := ferry.MustNew("orders", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.NewPublisher(again, placed)
	h2 := ferrytest.StartWith(t, cfg, again)
	if _, err := placed.Publish(context.Background(), h2.Client, &OrderPlaced{OrderID: "o", Quantity: 1}); err != nil {
		t.Fatalf("publish on a stream made beforehand: %v", err)
	}
}

// TestStateBucketPerService: each service with subscriptions has its own
// bounded state bucket.
func TestStateBucketPerService(t *testing.T) {
	a := ferry.MustNew("billing", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(a, placed, "bill", func(context.Context, *OrderPlaced) error { return nil }, ferry.SubscribeIdempotency(time.Hour))
	b := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(b, placed, "ship", func(context.Context, *OrderPlaced) error { return nil })
	h := ferrytest.Start(t, a, b)
	js, _ := jetstream.New(h.NATS())
	for _, name := range []string{"ferry-state-billing", "ferry-state-shipping"} {
		kv, err := js.KeyValue(context.Background(), name)
		if err != nil {
			t.Fatalf("bucket %s: %v", name, err)
		}
		st, err := kv.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if cfg := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config; cfg.MaxBytes <= 0 {
			t.Errorf("bucket %s is unbounded", name)
		}
	}
}
