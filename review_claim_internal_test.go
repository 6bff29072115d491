package ferry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

type reviewEvent struct {
	ID string `json:"id"`
}

var reviewTopic = Topic[reviewEvent]{Name: "review-claims", Subject: "review.claims"}

// reviewSubscription starts a host with one idempotent subscription
// (ack wait 1s: claims are renewed every 333ms) and returns it started.
func reviewSubscription(t *testing.T) (*subscription[reviewEvent], *Host) {
	t.Helper()
	cfg := Config{NATSEmbed: true, DataDir: t.TempDir(), Addr: "127.0.0.1:0"}
	quietLog := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := New("claims", "1.0.0", WithConfig(cfg), WithoutHTTP(), WithLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	Subscribe(svc, reviewTopic, "c", func(context.Context, *reviewEvent) error { return nil },
		SubscribeIdempotency(time.Hour), SubscribeAckWait(time.Second))
	h, err := NewHost(WithConfig(cfg), WithLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Add(svc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
	})
	return svc.subs[0].(*subscription[reviewEvent]), h
}

// Found by review: a claim's renewal that fires as its handler returns outlives the
// claim. markDone/release stop the timer (c.stop), but a renewal whose
// timer already fired and is waiting for c.mu then runs after them: its
// rewrite fails (the key moved on) and it re-arms the timer
// unconditionally (c.renew.Reset), so the claim is "renewed" every third of
// the ack wait forever — a timer and a KV publish per leaked claim, for the
// life of the process, accumulating with every such race.
func TestClaimRenewalStopsWithTheClaim(t *testing.T) {
	sub, h := reviewSubscription(t)
	nc := h.NATS()
	var renewals atomic.Int64
	var markedDone atomic.Bool
	watch, err := nc.Subscribe("$KV."+sub.state.Bucket()+".idem.>", func(m *nats.Msg) {
		if markedDone.Load() && string(m.Data) == claimRunning {
			renewals.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Unsubscribe()

	const trials = 10
	claims := make([]*claim, trials)
	var wg sync.WaitGroup
	for i := range trials {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, _, done := sub.claim(ctx, fmt.Sprintf("event-%d", i))
			if c == nil || done {
				t.Errorf("claim %d not taken", i)
				return
			}
			claims[i] = c
			// The handler returns just as the renewal fires: the renewal's
			// goroutine is started and waits for the claim's lock.
			c.mu.Lock()
			time.Sleep(sub.opts.ackWait/3 + 150*time.Millisecond)
			c.mu.Unlock()
			sub.markDone(c)
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	markedDone.Store(true)
	time.Sleep(sub.opts.ackWait + 200*time.Millisecond) // three renewal periods
	leaked := 0
	for _, c := range claims {
		c.mu.Lock()
		if c.renew.Stop() { // still armed after markDone
			leaked++
		}
		c.mu.Unlock()
	}
	if leaked > 0 || renewals.Load() > 0 {
		t.Errorf("%d of %d claims marked done still have an armed renewal timer; %d renewal writes were attempted after every claim was done",
			leaked, trials, renewals.Load())
	}
}
