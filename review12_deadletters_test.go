package ferry_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
	"github.com/ferrygo/ferry/internal/naming"
)

var review12Retired = ferry.Topic[OrderPlaced]{Name: "review12-retired", Subject: "test.review12.retired"}

// TestReview12ReplayAllNotBlockedByOneDeadLetter: one dead letter that
// cannot be replayed (its topic was retired: its stream deleted) must not
// keep every later dead letter of the system from being replayed by
// ReplayDeadLetters (the dashboard's "Replay all", `ferry dlq replay`).
// Its doc says "calling again goes on", but calling again stops at the
// same dead letter again: the others are never replayed.
//
// Failed before the fix: ReplayDeadLetters stops at the first
// failure, and the unreplayable one is always first.
func TestReview12ReplayAllNotBlockedByOneDeadLetter(t *testing.T) {
	svc := ferry.MustNew("billing", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svc, review12Retired, "old", func(context.Context, *OrderPlaced) error {
		return ferry.Permanent(errors.New("refused"))
	}, fast...)
	ferry.Subscribe(svc, placed, "bill", func(context.Context, *OrderPlaced) error {
		return ferry.Permanent(errors.New("refused"))
	}, fast...)
	h := ferrytest.Start(t, svc)
	ctx := context.Background()

	if _, err := review12Retired.Publish(ctx, h.Client, &OrderPlaced{OrderID: "old-1", Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool { return len(deadLetters(t, h, "old")) == 1 }, "the retired topic's dead letter")
	// The topic is retired: its stream is deleted (its dead letter stays).
	js, _ := jetstream.New(h.NATS())
	if err := js.DeleteStream(ctx, naming.TopicStream(review12Retired.Name)); err != nil {
		t.Fatal(err)
	}
	publish(t, h, OrderPlaced{OrderID: "o-1", Quantity: 1})
	ferrytest.Eventually(t, func() bool { return len(deadLetters(t, h, "bill")) == 1 }, "the live topic's dead letter")
	live := deadLetters(t, h, "bill")[0]

	for try := 1; try <= 2; try++ { // "calling again goes on"
		n, err := ferry.ReplayDeadLetters(ctx, h.Client, ferry.DeadLetterFilter{}, nil)
		t.Logf("ReplayDeadLetters, call %d: %d replayed, %v", try, n, err)
	}
	if _, err := ferry.GetDeadLetter(ctx, h.Client, live.Sequence); err == nil {
		t.Errorf("dead letter %d of the live topic was never replayed: the retired topic's dead letter before it blocks every bulk replay", live.Sequence)
	}
}
