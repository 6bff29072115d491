package ferry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// idLog records the event IDs a handler saw, per order ID.
type idLog struct {
	mu  sync.Mutex
	ids map[string][]string
}

func (l *idLog) add(order, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ids == nil {
		l.ids = map[string][]string{}
	}
	l.ids[order] = append(l.ids[order], id)
}

func (l *idLog) get(order string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ids[order]...)
}

// TestReplayDeadLetter: a dead-lettered event, replayed, reaches the
// consumer that gave up on it again — not the topic's other consumers —
// under a new message ID, and leaves the dead-letter stream.
func TestReplayDeadLetter(t *testing.T) {
	var billed, shipped idLog
	var broken atomic.Bool
	broken.Store(true)
	billing := ferry.MustNew("billing", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(billing, placed, "bill", func(ctx context.Context, e *OrderPlaced) error {
		billed.add(e.OrderID, ferry.EventFromContext(ctx).ID)
		if broken.Load() {
			return ferry.Permanent(errors.New("billing is broken"))
		}
		return nil
	}, fast...)
	shipping := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(shipping, placed, "ship", func(ctx context.Context, e *OrderPlaced) error {
		shipped.add(e.OrderID, ferry.EventFromContext(ctx).ID)
		return nil
	}, fast...)
	h := ferrytest.Start(t, billing, shipping)
	ctx := context.Background()

	publish(t, h, OrderPlaced{OrderID: "o-1", Quantity: 1}, ferry.PublishMessageID("m-1"))
	ferrytest.Eventually(t, func() bool { return len(deadLetters(t, h, "bill")) == 1 && len(shipped.get("o-1")) == 1 },
		"billing dead-letters the event, shipping handles it")
	dl := deadLetters(t, h, "bill")[0]
	if dl.MessageID != "m-1" {
		t.Fatalf("dead letter %+v", dl)
	}

	broken.Store(false)
	res, err := ferry.ReplayDeadLetter(ctx, h.Client, dl.Sequence)
	if err != nil || res.ID == "" || res.ID == "m-1" || res.Sequence == 0 || res.Duplicate {
		t.Fatalf("replay: %+v, %v", res, err)
	}
	ferrytest.Eventually(t, func() bool { return len(billed.get("o-1")) == 2 }, "the replay reaches billing")
	if ids := billed.get("o-1"); ids[1] != res.ID {
		t.Errorf("billing saw the replay as %q, want the replay's ID %q", ids[1], res.ID)
	}
	if dls := deadLetters(t, h, ""); len(dls) != 0 {
		t.Errorf("dead letters after the replay: %+v", dls)
	}
	publish(t, h, OrderPlaced{OrderID: "o-2", Quantity: 1})
	ferrytest.Eventually(t, func() bool { return len(shipped.get("o-2")) == 1 }, "shipping is still consuming")
	if ids := shipped.get("o-1"); len(ids) != 1 {
		t.Errorf("shipping saw the event %d times (%v): the replay reached it", len(ids), ids)
	}

	// The dead letter is gone: replaying or deleting it again is a 404.
	for name, op := range map[string]func() error{
		"replay": func() error { _, err := ferry.ReplayDeadLetter(ctx, h.Client, dl.Sequence); return err },
		"delete": func() error { return ferry.DeleteDeadLetter(ctx, h.Client, dl.Sequence) },
	} {
		var fe *ferry.Error
		if err := op(); !errors.As(err, &fe) || fe.Status != http.StatusNotFound {
			t.Errorf("%s a dead letter that is gone: %v, want a 404", name, err)
		}
	}
}

// TestDeadLetterCursorAndDelete: dead letters are listed page by page
// after a sequence, and deleted one by one.
func TestDeadLetterCursorAndDelete(t *testing.T) {
	svc := ferry.MustNew("billing", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svc, placed, "bill", func(context.Context, *OrderPlaced) error {
		return ferry.Permanent(errors.New("refused"))
	}, fast...)
	h := ferrytest.Start(t, svc)
	ctx := context.Background()
	// Before any dead letter, even the stream may be missing: a 404.
	var fe *ferry.Error
	if err := ferry.DeleteDeadLetter(ctx, h.Client, 1); !errors.As(err, &fe) || fe.Status != http.StatusNotFound {
		t.Errorf("delete with no dead letters: %v", err)
	}
	const n = 7
	for i := range n {
		publish(t, h, OrderPlaced{OrderID: fmt.Sprintf("o-%d", i), Quantity: 1})
	}
	ferrytest.Eventually(t, func() bool { return len(deadLetters(t, h, "bill")) == n }, "%d dead letters", n)

	tests := []struct {
		limit int
		pages []int
	}{
		{limit: 3, pages: []int{3, 3, 1, 0}},
		{limit: n, pages: []int{n, 0}},
		{limit: 100, pages: []int{n, 0}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("limit=%d", tt.limit), func(t *testing.T) {
			var after uint64
			seen := map[string]bool{}
			for _, want := range tt.pages {
				page, err := ferry.ListDeadLetters(ctx, h.Client, ferry.DeadLetterFilter{Consumer: "bill", After: after}, tt.limit)
				if err != nil || len(page) != want {
					t.Fatalf("page after %d: %d dead letters, want %d (%v)", after, len(page), want, err)
				}
				for _, dl := range page {
					if dl.Sequence <= after {
						t.Errorf("sequence %d after %d", dl.Sequence, after)
					}
					after = dl.Sequence
					seen[strings.Split(string(dl.Data), `"`)[3]] = true
				}
			}
			if len(seen) != n {
				t.Errorf("listed %v, want each of the %d once", seen, n)
			}
		})
	}

	all := deadLetters(t, h, "bill")
	if err := ferry.DeleteDeadLetter(ctx, h.Client, all[2].Sequence); err != nil {
		t.Fatal(err)
	}
	left := deadLetters(t, h, "bill")
	if len(left) != n-1 || left[2].Sequence == all[2].Sequence {
		t.Errorf("after deleting one: %d dead letters", len(left))
	}
}
