package ferrytest

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/internal/naming"
)

// Captured holds the events of a topic stored while a test runs, in order,
// as JetStream stored them (a de-duplicated republish appears once).
type Captured[T any] struct {
	mu     sync.Mutex
	events []T
	ids    []string
}

// Capture records every event stored on topic from now on, without taking
// events from any subscription (it reads the stream with an ordered
// consumer of its own). The topic's stream must exist: start a host whose
// services publish or subscribe to it first. Capturing stops at the end of
// the test.
func Capture[T any](t testing.TB, h *Host, topic ferry.Topic[T]) *Captured[T] {
	t.Helper()
	js, err := jetstream.New(h.NATS())
	if err != nil {
		t.Fatalf("ferrytest: capture %s: %v", topic.Name, err)
	}
	ctx := context.Background()
	cons, err := js.OrderedConsumer(ctx, naming.TopicStream(topic.Name), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{topic.Subject}, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		t.Fatalf("ferrytest: capture %s: %v", topic.Name, err)
	}
	c := &Captured[T]{}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		var v T
		if err := json.Unmarshal(msg.Data(), &v); err != nil {
			t.Errorf("ferrytest: capture %s: undecodable event: %v", topic.Name, err)
			return
		}
		c.mu.Lock()
		c.events = append(c.events, v)
		c.ids = append(c.ids, msg.Headers().Get("Nats-Msg-Id"))
		c.mu.Unlock()
	})
	if err != nil {
		t.Fatalf("ferrytest: capture %s: %v", topic.Name, err)
	}
	t.Cleanup(cc.Stop)
	return c
}

// Events returns the events captured so far.
func (c *Captured[T]) Events() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]T(nil), c.events...)
}

// IDs returns the message IDs of the events captured so far.
func (c *Captured[T]) IDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.ids...)
}

// Wait waits until at least n events are captured and returns them.
func (c *Captured[T]) Wait(t testing.TB, n int) []T {
	t.Helper()
	Eventually(t, func() bool { return len(c.Events()) >= n }, "%d events are captured (have %d)", n, len(c.Events()))
	return c.Events()
}
