package jsbound

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// deadlines records the deadline each request's context had.
type deadlines struct {
	jetstream.KeyValue
	seen []time.Duration
}

// deadlinesJS is the same for publishes.
type deadlinesJS struct {
	jetstream.JetStream
	d *deadlines
}

func (j deadlinesJS) PublishMsg(ctx context.Context, _ *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	j.d.note(ctx)
	return nil, nil
}

func (d *deadlines) note(ctx context.Context) {
	dl, ok := ctx.Deadline()
	if !ok {
		d.seen = append(d.seen, -1)
		return
	}
	d.seen = append(d.seen, time.Until(dl))
}

func (d *deadlines) Get(ctx context.Context, _ string) (jetstream.KeyValueEntry, error) {
	d.note(ctx)
	return nil, nil
}

// TestBounded: a request without a deadline, or with a distant one, gets
// Timeout; a sooner one keeps its own.
func TestBounded(t *testing.T) {
	inner := &deadlines{}
	kv, _ := KV(inner, nil)
	js := Wrap(deadlinesJS{d: inner})
	hour, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	soon, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	_, _ = kv.Get(context.Background(), "k")
	_, _ = kv.Get(hour, "k")
	_, _ = js.PublishMsg(hour, nats.NewMsg("s"))
	_, _ = kv.Get(soon, "k")
	for i, want := range []time.Duration{Timeout, Timeout, Timeout, time.Second} {
		if got := inner.seen[i]; got <= 0 || got > want || got < want-time.Second {
			t.Errorf("request %d: %v left, want about %v", i, got, want)
		}
	}
}
