package ferry_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// hangBound is how long past its deadline a shutdown may take before the
// test calls it hung: generous, since a hang is forever.
const hangBound = 5 * time.Second

// TestShutdownReturnsWhateverHandlersDo: an event handler and an endpoint
// that ignore their contexts do not hold Shutdown past its deadline; the
// broker is still stopped (its data directory can be used again).
func TestShutdownReturnsWhateverHandlersDo(t *testing.T) {
	cfg := ferrytest.Config(t)
	entered := make(chan struct{}, 2)
	never := make(chan struct{})
	t.Cleanup(func() { close(never) })
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithConfig(cfg), ferry.WithNATS(), quiet)
	ferry.Subscribe(svc, placed, "ship", func(context.Context, *OrderPlaced) error {
		entered <- struct{}{}
		<-never // ignores its context
		return nil
	})
	ferry.Get(svc, "hang", "/hang", func(context.Context, *Empty) (*Empty, error) {
		entered <- struct{}{}
		<-never
		return &Empty{}, nil
	})
	h := hostWith(t, cfg, svc)
	client := ferry.NewClient(h.NATS())
	if _, err := placed.Publish(context.Background(), client, &OrderPlaced{OrderID: "o", Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = hangEndpoint.Call(context.Background(), client, &Empty{}) }()
	<-entered
	<-entered

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.Shutdown(ctx) }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("Shutdown abandoned running handlers without saying so")
		}
	case <-time.After(hangBound):
		t.Fatalf("Shutdown still blocked %v after its deadline", hangBound)
	}
	if h.NATS() != nil {
		t.Errorf("the broker connection is still open after Shutdown")
	}
	again, err := ferry.NewHost(ferry.WithConfig(cfg), quiet)
	if err != nil {
		t.Fatal(err)
	}
	_ = again.Add(ferry.MustNew("other", "1.0.0", ferry.WithoutHTTP(), ferry.WithNATS(), quiet))
	if err := again.Start(context.Background()); err != nil {
		t.Fatalf("the data directory is still held after Shutdown: %v", err)
	}
	_ = again.Shutdown(context.Background())
}

var hangEndpoint = ferry.Endpoint[Empty, Empty]{Service: "shipping", Name: "hang", Method: "GET", Path: "/hang"}

// TestFailedStartCleansUpPromptly: a start that fails after a
// subscription started (a later subscription cannot create its consumer)
// stops what it started at once, without waiting for a handler that may
// already run and ignores its context, and releases the broker.
func TestFailedStartCleansUpPromptly(t *testing.T) {
	cfg := ferrytest.Config(t)
	other := ferry.Topic[OrderPlaced]{Name: "work", Subject: "test.work"}
	// Store an event before the subscriber exists, and make the second
	// topic's stream a work queue whose existing consumer takes every
	// subject: JetStream refuses a second consumer on it.
	producer := ferry.MustNew("orders", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.NewPublisher(producer, placed)
	first := ferrytest.StartWith(t, cfg, producer)
	if _, err := placed.Publish(context.Background(), first.Client, &OrderPlaced{OrderID: "o", Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(first.NATS())
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "ferry-work",
		Subjects: []string{"test.work", "ferry.replay.work.>"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateConsumer(context.Background(), "ferry-work", jetstream.ConsumerConfig{Durable: "all", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	if err := first.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	entered := make(chan struct{}, 1)
	never := make(chan struct{})
	t.Cleanup(func() { close(never) })
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svc, placed, "ship", func(context.Context, *OrderPlaced) error {
		entered <- struct{}{}
		<-never
		return nil
	})
	ferry.Subscribe(svc, other, "work", func(context.Context, *OrderPlaced) error { return nil })
	h, _ := ferry.NewHost(ferry.WithConfig(cfg), quiet)
	_ = h.Add(svc)
	done := make(chan error, 1)
	go func() { done <- h.Start(context.Background()) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Start succeeded with a consumer JetStream refuses")
		}
	case <-time.After(hangBound):
		t.Fatal("a failed Start did not return")
	}
	again, _ := ferry.NewHost(ferry.WithConfig(cfg), quiet)
	if err := again.Add(ferry.MustNew("orders", "1.0.0", ferry.WithoutHTTP(), ferry.WithNATS(), quiet)); err != nil {
		t.Fatal(err)
	}
	if err := again.Start(context.Background()); err != nil {
		t.Fatalf("the broker of the failed start still holds the data directory: %v", err)
	}
	_ = again.Shutdown(context.Background())
}

// TestStreamingResponsesLearnTheDrain: a long-lived response (an event
// stream, a long poll) waiting on ferry.Draining ends when the shutdown
// starts — during the drain delay — instead of holding the shutdown until
// its grace period is cut off.
func TestStreamingResponsesLearnTheDrain(t *testing.T) {
	var inside atomic.Int32
	svc := ferry.MustNew("stream", "1.0.0", quiet)
	ferry.Get(svc, "watch", "/watch", func(ctx context.Context, _ *Empty) (*Empty, error) {
		inside.Add(1)
		select {
		case <-ferry.Draining(ctx):
			return &Empty{}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	cfg := ferrytest.Config(t)
	cfg.ShutdownGrace = time.Minute
	cfg.DrainDelay = 200 * time.Millisecond
	h := hostWith(t, cfg, svc)
	if ferry.Draining(context.Background()) != nil {
		t.Error("Draining outside a request is not nil")
	}
	status := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + svc.Addr().String() + "/watch")
		if err != nil {
			status <- -1
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	eventually(t, "the request waits in the handler", func() bool { return inside.Load() == 1 })
	done := make(chan error, 1)
	go func() { done <- h.Shutdown(context.Background()) }()
	select {
	case code := <-status:
		if code != http.StatusNoContent {
			t.Errorf("the streaming request answered %d, want 204", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the streaming request did not end when the drain started")
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
