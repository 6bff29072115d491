package ferry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// containment is one failure the containment suite inflicts on a running
// subscription: what it does (given the case's event IDs' prefix), the
// events that must end handled, those that must end dead-lettered, and the
// series of ferry_event_deliveries_total (result, code; "" any) or of
// another metric of the subscription that must grow. Existing tests of each failure, on a system of their own:
// ref.
type containment struct {
	name    string
	inflict func(t *testing.T, s *containSystem, prefix string)
	handled []string // IDs, under the prefix
	dead    []string
	result  string
	code    string
	metric  string // ferry_event_deliveries_total unless set
	ref     string
}

// containSystem is the small system every case runs against: one
// service subscribing to placed, whose handler and middleware misbehave
// for event IDs that ask them to.
type containSystem struct {
	h       *ferrytest.Host
	base    string
	calls   counter
	release chan struct{} // frees hung handlers
	js      jetstream.JetStream
}

const containConsumer = "contain~watch"

func newContainSystem(t *testing.T) *containSystem {
	s := &containSystem{release: make(chan struct{})}
	panicky := func(next ferry.Handler) ferry.Handler {
		return func(ctx context.Context, req *ferry.Request) error {
			if ev := ferry.EventFromContext(ctx); ev != nil && ev.Delivery == 1 && strings.Contains(ev.ID, "mwpanic") {
				panic("a middleware panics")
			}
			return next(ctx, req)
		}
	}
	svc := ferry.MustNew("contain", "1.0.0", quiet, ferry.WithMiddleware(panicky))
	ferry.Subscribe(svc, placed, "watch", func(ctx context.Context, e *OrderPlaced) error {
		n := s.calls.add(e.OrderID)
		switch {
		case strings.Contains(e.OrderID, "panic") && n == 1:
			panic("a handler panics")
		case strings.Contains(e.OrderID, "hang") && n == 1:
			<-s.release // ignores its context, past its deadline
			return ctx.Err()
		case strings.Contains(e.OrderID, "slow"):
			time.Sleep(300 * time.Millisecond)
		case strings.Contains(e.OrderID, "refuse"):
			return ferry.Permanent(errors.New("refused"))
		}
		return nil
	}, ferry.SubscribeBackoff(10*time.Millisecond, 50*time.Millisecond), ferry.SubscribeMaxDeliveries(3),
		ferry.SubscribeTimeout(200*time.Millisecond), ferry.SubscribeAckWait(time.Second), ferry.SubscribeConcurrency(4))
	s.h = ferrytest.Start(t, svc)
	s.base = ferrytest.URL(t, svc)
	s.js, _ = jetstream.New(s.h.NATS())
	t.Cleanup(func() {
		select {
		case <-s.release:
		default:
			close(s.release)
		}
	})
	return s
}

func (s *containSystem) publish(t *testing.T, id string) {
	t.Helper()
	publish(t, s.h, OrderPlaced{OrderID: id, Quantity: 1}, ferry.PublishMessageID(id))
}

// deliveries is the count of the subscription's deliveries settled with
// result (and code, unless "").
func (s *containSystem) deliveries(t *testing.T, result, code string) float64 {
	return s.counted(t, "ferry_event_deliveries_total", result, code)
}

// counted is the subscription's series of metric with result and code
// (each unless "").
func (s *containSystem) counted(t *testing.T, metric, result, code string) float64 {
	labels := map[string]string{"consumer": "watch"}
	if result != "" {
		labels["result"] = result
	}
	if code != "" {
		labels["code"] = code
	}
	v, _ := sample(scrape(t, s.base+"/metrics"), metric, labels)
	return v
}

func containmentCases() []containment {
	return []containment{
		{name: "poison message", ref: "TestMalformedEventsAreDeadLettered", result: "dead_lettered", code: "malformed_event",
			dead: []string{"poison"},
			inflict: func(t *testing.T, s *containSystem, p string) {
				if _, err := s.js.Publish(context.Background(), placed.Subject, []byte(`{"order_id":`), jetstream.WithMsgID(p+"poison")); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "panic in a handler", ref: "TestMiddlewarePanicOnEventPath", result: "retried",
			handled: []string{"panic"},
			inflict: func(t *testing.T, s *containSystem, p string) { s.publish(t, p+"panic") }},
		{name: "panic in a middleware", ref: "TestMiddlewarePanicOnEventPath", result: "retried",
			handled: []string{"mwpanic"},
			inflict: func(t *testing.T, s *containSystem, p string) { s.publish(t, p+"mwpanic") }},
		{name: "handler hung past its deadline", ref: "TestHungIdempotentHandlerIsDeadLettered, TestLongHandlerKeepsItsEvent", result: "handled",
			handled: []string{"hang"},
			inflict: func(t *testing.T, s *containSystem, p string) {
				s.publish(t, p+"hang")
				ferrytest.Eventually(t, func() bool { return s.calls.get(p+"hang") == 1 }, "the hanging handler runs")
				ferrytest.Eventually(t, func() bool { return s.counted(t, "ferry_event_handlers_overdue", "", "") >= 1 },
					"the handler hung past its deadline is reported by ferry_event_handlers_overdue")
				// Others flow past it (checked by the canary); then it is freed
				// and its event, redelivered after the ack wait, is handled.
				s.publish(t, p+"past-hang")
				ferrytest.Eventually(t, func() bool { return s.calls.get(p+"past-hang") == 1 }, "an event is handled while a handler hangs")
				close(s.release)
			}},
		{name: "slow consumer", ref: "TestLongHandlerKeepsItsEvent", result: "handled",
			handled: []string{"slow-1", "slow-2", "slow-3"},
			inflict: func(t *testing.T, s *containSystem, p string) {
				for i := 1; i <= 3; i++ {
					s.publish(t, fmt.Sprintf("%sslow-%d", p, i))
				}
			}},
		{name: "full dead-letter stream", ref: "TestDeadLetterStoreFailureKeepsTheEvent", result: "dead_letter_failed",
			dead: []string{"refuse"},
			inflict: func(t *testing.T, s *containSystem, p string) {
				ctx := context.Background()
				dlq, err := s.js.Stream(ctx, "ferry-deadletters")
				if err != nil {
					t.Fatal(err)
				}
				info, _ := dlq.Info(ctx)
				cfg := info.Config
				full := cfg
				full.MaxMsgs = int64(info.State.Msgs) // full: nothing more fits (DiscardNew)
				if full.MaxMsgs == 0 {
					full.MaxMsgs = 1
					s.publish(t, p+"refuse-first")
					ferrytest.Eventually(t, func() bool { return len(deadLetters(t, s.h, "watch")) > 0 }, "a first dead letter")
				}
				if _, err := s.js.UpdateStream(ctx, full); err != nil {
					t.Fatal(err)
				}
				before := s.deliveries(t, "dead_letter_failed", "")
				s.publish(t, p+"refuse")
				ferrytest.Eventually(t, func() bool { return s.deliveries(t, "dead_letter_failed", "") > before },
					"the dead letter the full stream refused is reported")
				s.publish(t, p+"past-full")
				ferrytest.Eventually(t, func() bool { return s.calls.get(p+"past-full") == 1 }, "an event is handled while the dead-letter stream is full")
				if _, err := s.js.UpdateStream(ctx, cfg); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "deleted consumer", ref: "TestDeletedConsumerDoesNotRewind", result: "handled",
			handled: []string{"after-consumer"},
			inflict: func(t *testing.T, s *containSystem, p string) {
				if err := s.js.DeleteConsumer(context.Background(), "ferry-order-placed", containConsumer); err != nil {
					t.Fatal(err)
				}
				s.publish(t, p+"after-consumer")
			}},
		{name: "deleted stream", ref: "TestRecreatedStreamEventsAreNotSkipped", result: "handled",
			handled: []string{"after-stream"},
			inflict: func(t *testing.T, s *containSystem, p string) {
				ctx := context.Background()
				stream, err := s.js.Stream(ctx, "ferry-order-placed")
				if err != nil {
					t.Fatal(err)
				}
				cfg := stream.CachedInfo().Config
				if err := s.js.DeleteStream(ctx, "ferry-order-placed"); err != nil {
					t.Fatal(err)
				}
				ferrytest.Eventually(t, func() bool {
					_, err := s.js.CreateStream(ctx, cfg) // an operator restores it
					return err == nil
				}, "the stream is made again")
				s.publish(t, p+"after-stream")
			}},
	}
}

// TestContainment inflicts each failure of the list on one
// running subscription: it is contained (the process goes on, a canary
// event published after it is handled), reported (its series of
// ferry_event_deliveries_total grows) and loses nothing (every event of
// the case ends handled or dead-lettered, none stays pending).
func TestContainment(t *testing.T) {
	s := newContainSystem(t)
	s.publish(t, "warm-up")
	ferrytest.Eventually(t, func() bool { return s.calls.get("warm-up") == 1 }, "the subscription runs")
	var tried, found atomic.Int32
	for i, tc := range containmentCases() {
		t.Run(tc.name, func(t *testing.T) {
			p := fmt.Sprintf("c%d-", i)
			metric := tc.metric
			if metric == "" {
				metric = "ferry_event_deliveries_total"
			}
			before := s.counted(t, metric, tc.result, tc.code)
			tc.inflict(t, s, p)
			s.publish(t, p+"canary")
			ferrytest.Eventually(t, func() bool { return s.calls.get(p+"canary") == 1 }, "the canary is handled after %s (%v)", tc.name, &s.calls)
			for _, id := range tc.handled {
				tried.Add(1)
				ferrytest.Eventually(t, func() bool { return s.calls.get(p+id) >= 1 }, "event %s is handled (%v)", p+id, &s.calls)
				found.Add(1)
			}
			for _, id := range tc.dead {
				tried.Add(1)
				ferrytest.Eventually(t, func() bool {
					for _, dl := range deadLetters(t, s.h, "watch") {
						if dl.MessageID == p+id {
							return true
						}
					}
					return false
				}, "event %s is dead-lettered", p+id)
				found.Add(1)
			}
			ferrytest.Eventually(t, func() bool { return s.counted(t, metric, tc.result, tc.code) > before },
				"%s{result=%q,code=%q} grows (%s)", metric, tc.result, tc.code, lazyLabels{s})
			ferrytest.Eventually(t, func() bool { ack, num := pending(t, s.h, containConsumer); return ack == 0 && num == 0 },
				"every event is settled")
		})
	}
	writeRecord(t, Record{
		Scenario: "containment",
		Fault: "on one subscription: poison message, handler and middleware panics, a handler hung past its deadline, a slow consumer, " +
			"a full dead-letter stream, a deleted consumer, a deleted (and restored) stream",
		Runs:         len(containmentCases()),
		Acknowledged: int(tried.Load()),
		Found:        int(found.Load()),
		Lost:         int(tried.Load() - found.Load()),
		Command:      "FERRY_RELIABILITY_RECORDS=docs/reliability/records go test -run 'TestContainment' -count=1 .",
		Notes: "each case contained (a canary published after it is handled), reported (its ferry_event_deliveries_total series grows; the hung handler in ferry_event_handlers_overdue), " +
			"and nothing lost (its events end handled or dead-lettered; a dead letter the full stream refuses stays pending until it fits)",
	})
}

// lazyLabels lists the subscription's delivery series when printed.
type lazyLabels struct{ s *containSystem }

func (l lazyLabels) String() string {
	resp, err := http.Get(l.s.base + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var lines []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "ferry_event_") && strings.Contains(line, `consumer="watch"`) {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n")
}
