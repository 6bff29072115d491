package ferry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// Found by review: WithRetryScale accepts any positive scale, and the scaled delay
// is time.Duration(float64(d) * scale) with no bound: a large scale (or
// +Inf) overflows int64, the conversion yields a negative duration, and
// NakWithDelay with a negative delay is a plain nak. A host asked to
// retry *later* retries at once, in a tight loop, until the event is
// dead-lettered.
func TestHugeRetryScaleDoesNotRetryAtOnce(t *testing.T) {
	var calls counter
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svc, placed, "ship", func(_ context.Context, e *OrderPlaced) error {
		calls.add(e.OrderID)
		return errors.New("downstream down")
	}, ferry.SubscribeBackoff(time.Second, time.Minute), ferry.SubscribeMaxDeliveries(5))
	h, err := ferry.NewHost(ferry.WithConfig(ferrytest.Config(t)), quiet, ferry.WithRetryScale(1e12))
	if err != nil {
		return // refused where it is given: fine
	}
	_ = h.Add(svc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
	})
	if _, err := placed.Publish(context.Background(), ferry.NewClient(h.NATS()), &OrderPlaced{OrderID: "later", Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if n := calls.get("later"); n > 1 {
		t.Errorf("with retries scaled up 1e12 times (1s backoff), the handler ran %d times within 2s: the overflowed delay is negative, a plain nak", n)
	}
}
