package metrics

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// fakeJS is a JetStream whose consumer can be read until down is set.
type fakeJS struct {
	jetstream.JetStream // nil: only Consumer and Stream are called
	down                *atomic.Bool
}

var errDown = errors.New("nats: no responders available for request")

func (f fakeJS) Consumer(context.Context, string, string) (jetstream.Consumer, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return fakeConsumer{down: f.down}, nil
}

func (f fakeJS) Stream(context.Context, string) (jetstream.Stream, error) { return nil, errDown }

type fakeConsumer struct {
	jetstream.Consumer
	down *atomic.Bool
}

func (c fakeConsumer) CachedInfo() *jetstream.ConsumerInfo {
	return &jetstream.ConsumerInfo{NumPending: 42, NumAckPending: 1}
}

func (c fakeConsumer) Info(context.Context) (*jetstream.ConsumerInfo, error) {
	if c.down.Load() {
		return nil, errDown
	}
	return c.CachedInfo(), nil
}

// TestReview4_ReadingAgeGrowsWhileJetStreamCannotBeRead: the help of
// ferry_jetstream_reading_age_seconds says "time since JetStream was last
// read successfully", and docs/observability.md says it tells how old the
// figures are while a consumer that cannot be read keeps its last figures.
// But refresh stamps readAt with every reading, failed or not: with the
// broker away, the lag keeps its stale figure and the age says it is
// fresh; with no JetStream at all (never read), the age is reported as 0.
func TestReview4_ReadingAgeGrowsWhileJetStreamCannotBeRead(t *testing.T) {
	down := &atomic.Bool{}
	var js atomic.Pointer[fakeJS]
	js.Store(&fakeJS{down: down})
	c := NewSubscriptionsCollector(SubscriptionsOptions{
		JetStream: func() jetstream.JetStream {
			if p := js.Load(); p != nil {
				return *p
			}
			return nil
		},
		Subscriptions: []Subscription{{Service: "orders", Consumer: "ship", Topic: "order-placed", Stream: "s", Durable: "d"}},
		MaxAge:        time.Nanosecond, Wait: time.Minute,
	})
	r, okAt := c.current()
	if !r.lag[0].known || r.lag[0].pending != 42 {
		t.Fatalf("first reading %+v: the fake consumer was not read", r.lag)
	}
	down.Store(true) // the broker goes away
	for range 3 {
		r, at := c.current()
		if r.lag[0].pending != 42 {
			t.Fatalf("the lag did not keep its last figure: %+v", r.lag)
		}
		if !at.Equal(okAt) {
			t.Errorf("JetStream could not be read, yet the reading is stamped %v (last successful read %v): ferry_jetstream_reading_age_seconds says the stale lag is fresh",
				at.Sub(okAt), okAt.Format(time.RFC3339Nano))
			break
		}
	}

	t.Run("never read", func(t *testing.T) {
		c := NewSubscriptionsCollector(SubscriptionsOptions{
			JetStream:     func() jetstream.JetStream { return nil }, // no broker connection
			Subscriptions: []Subscription{{Service: "orders", Consumer: "ship", Topic: "order-placed", Stream: "s", Durable: "d"}},
			MaxAge:        time.Nanosecond, Wait: time.Minute,
		})
		m := New(Config{})
		if err := m.Register(c); err != nil {
			t.Fatal(err)
		}
		mfs, err := m.Gatherer().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "ferry_jetstream_reading_age_seconds" {
				t.Errorf("JetStream was never read, yet ferry_jetstream_reading_age_seconds = %v", mf.Metric[0].GetGauge().GetValue())
			}
		}
	})
}
