package ferry

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// deadlineKV records whether each request's context had a deadline.
type deadlineKV struct {
	jetstream.KeyValue
	had []bool
}

func (d *deadlineKV) note(ctx context.Context) {
	_, ok := ctx.Deadline()
	d.had = append(d.had, ok)
}

func (d *deadlineKV) Get(ctx context.Context, _ string) (jetstream.KeyValueEntry, error) {
	d.note(ctx)
	return nil, nil
}

func (d *deadlineKV) Update(ctx context.Context, _ string, _ []byte, _ uint64) (uint64, error) {
	d.note(ctx)
	return 0, nil
}

// TestBoundedKV: a bucket request without a deadline gets one; one with
// its own keeps it.
func TestBoundedKV(t *testing.T) {
	inner := &deadlineKV{}
	kv := boundedKV{inner}
	_, _ = kv.Get(context.Background(), "k")
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_, _ = kv.Update(ctx, "k", nil, 1)
	if len(inner.had) != 2 || !inner.had[0] || !inner.had[1] {
		t.Fatalf("deadlines seen: %v", inner.had)
	}
}
