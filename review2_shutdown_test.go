package ferry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// Found by review: events delivered to a replica's open pull while it shuts down
// are lost and spend a delivery. Drain and Close no longer wait for the
// pull, so the host closes the NATS connection while the pull is still
// handing back what its fetch received after StopIntake: the free record
// fails ("nats: connection closed"), the nak fails, and the event comes
// back after the ack wait counted as a run that never happened. With
// SubscribeMaxDeliveries(1), events whose handler never ran are
// dead-lettered ("delivered 1 times without an acknowledgement") by a
// plain graceful shutdown under load.
func TestShutdownUnderLoadSpendsNoDelivery(t *testing.T) {
	cfg := ferryConfigForRestart(t)
	var calls counter
	logs := &syncBuffer{}
	run := func() *ferry.Host {
		svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), ferry.WithLogger(newLogger(logs)))
		ferry.Subscribe(svc, placed, "ship", func(ctx context.Context, e *OrderPlaced) error {
			calls.add(e.OrderID)
			time.Sleep(2 * time.Millisecond)
			return nil
		}, ferry.SubscribeMaxDeliveries(1), ferry.SubscribeConcurrency(16), ferry.SubscribeAckWait(time.Second))
		h := hostWith(t, cfg, svc)
		return h
	}
	var published atomic.Int64
	for round := range 6 {
		h := run()
		client := ferry.NewClient(h.NATS())
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				_, err := placed.Publish(ctx, client, &OrderPlaced{OrderID: fmt.Sprintf("r%d-%d", round, i), Quantity: 1})
				cancel()
				if err != nil {
					return
				}
				published.Add(1)
			}
		})
		time.Sleep(300 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = h.Shutdown(ctx)
		cancel()
		close(stop)
		wg.Wait()
	}
	h := run()
	defer h.Shutdown(context.Background())
	time.Sleep(3 * time.Second)
	th := thOf(h)
	dls := deadLetters(t, th, "ship")
	t.Logf("published %d, handled %d distinct, dead letters %d", published.Load(), calls.distinct(), len(dls))
	if len(dls) > 0 {
		ran := 0
		for _, dl := range dls {
			var e OrderPlaced
			_ = json.Unmarshal(dl.Data, &e)
			if calls.get(e.OrderID) > 0 {
				ran++
			}
		}
		t.Errorf("%d events dead-lettered although every run succeeded (%d of them had run); first: %s\nlog lines 'record not written': %d", len(dls), ran, dls[0].Error, strings.Count(logs.String(), "record not written"))
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "record not written") {
				t.Log(l)
				break
			}
		}
	}
}

func ferryConfigForRestart(t *testing.T) ferry.Config {
	c := ferrytest.Config(t)
	c.ShutdownGrace = 2 * time.Second
	return c
}

func thOf(h *ferry.Host) *ferrytest.Host {
	return &ferrytest.Host{Host: h, Client: ferry.NewClient(h.NATS())}
}
