package ferry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestDeadLetterBulk: one dead letter read by its sequence; a filter's
// dead letters replayed all at once, with progress, each once even when
// it fails again (it is dead-lettered again, not replayed again by the
// same call); the rest purged.
func TestDeadLetterBulk(t *testing.T) {
	var runs atomic.Int64
	svc := ferry.MustNew("billing", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svc, placed, "bill", func(context.Context, *OrderPlaced) error {
		runs.Add(1)
		return ferry.Permanent(errors.New("refused"))
	}, fast...)
	h := ferrytest.Start(t, svc)
	ctx := context.Background()
	if n, err := ferry.ReplayDeadLetters(ctx, h.Client, ferry.DeadLetterFilter{}, nil); n != 0 || err != nil {
		t.Fatalf("replay with no dead letters: %d, %v", n, err)
	}
	const n = 5
	for i := range n {
		publish(t, h, OrderPlaced{OrderID: fmt.Sprintf("o-%d", i), Quantity: 1})
	}
	ferrytest.Eventually(t, func() bool { return len(deadLetters(t, h, "bill")) == n }, "%d dead letters", n)

	first := deadLetters(t, h, "bill")[0]
	got, err := ferry.GetDeadLetter(ctx, h.Client, first.Sequence)
	if err != nil || got.Sequence != first.Sequence || got.Consumer != "bill" || got.Error != first.Error || string(got.Data) != string(first.Data) {
		t.Fatalf("GetDeadLetter = %+v, %v; want %+v", got, err, first)
	}
	var fe *ferry.Error
	if _, err := ferry.GetDeadLetter(ctx, h.Client, 999999); !errors.As(err, &fe) || fe.Status != http.StatusNotFound {
		t.Errorf("GetDeadLetter of none: %v, want a 404", err)
	}

	before := runs.Load()
	var calls, lastDone, lastTotal int
	replayed, err := ferry.ReplayDeadLetters(ctx, h.Client, ferry.DeadLetterFilter{Consumer: "bill"}, func(done, total int) {
		calls, lastDone, lastTotal = calls+1, done, total
	})
	if err != nil || replayed != n || calls != n || lastDone != n || lastTotal != n {
		t.Fatalf("ReplayDeadLetters = %d, %v (progress %d calls, last %d/%d)", replayed, err, calls, lastDone, lastTotal)
	}
	// Each replay runs once more, fails, and is dead-lettered again.
	ferrytest.Eventually(t, func() bool { return runs.Load() == before+n && len(deadLetters(t, h, "bill")) == n },
		"each replay handled once and dead-lettered again")
	for _, dl := range deadLetters(t, h, "bill") {
		if dl.Sequence <= first.Sequence+n-1 {
			t.Errorf("dead letter %d is an old one: the replay did not remove it", dl.Sequence)
		}
	}

	purged, err := ferry.PurgeDeadLetters(ctx, h.Client, ferry.DeadLetterFilter{Consumer: "bill"})
	if err != nil || purged != n {
		t.Fatalf("PurgeDeadLetters = %d, %v", purged, err)
	}
	if dls := deadLetters(t, h, ""); len(dls) != 0 {
		t.Errorf("dead letters after the purge: %d", len(dls))
	}
}
