package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A kind's queue is the sum of its priorities' consumers, and its pause
// pauses each of them; a priority whose consumer does not exist counts
// nothing and is not paused.
func TestQueuePriorities(t *testing.T) {
	s := testStores(t, 1)[0]
	js := s.js
	ctx := context.Background()
	k := Kind{Job: "prio", Stream: "ferryjob-prio"}
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: k.Stream, Subjects: []string{"ferry.job.prio.>"}, Retention: jetstream.WorkQueuePolicy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadQueue(ctx, js, k); err != jetstream.ErrConsumerNotFound {
		t.Fatalf("no consumer: %v", err)
	}
	lanes := Lanes(k.Job)
	for _, l := range lanes[:2] { // worker-low not created yet
		if _, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: l.Consumer, FilterSubject: l.RunSubject, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range []int{2, 3, 0} {
		for range n {
			if _, err := js.Publish(ctx, lanes[i].RunSubject, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	q, err := ReadQueue(ctx, js, k)
	if err != nil || q.Queued != 5 || q.Running != 0 || q.Scheduled != 0 || q.OldestQueued.IsZero() || !q.PausedUntil.IsZero() {
		t.Fatalf("queue %+v, %v", q, err)
	}
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if err := Pause(ctx, js, k, until); err != nil {
		t.Fatal(err)
	}
	if q, err = ReadQueue(ctx, js, k); err != nil || !q.PausedUntil.Equal(until) {
		t.Fatalf("paused: %+v, %v", q, err)
	}
	// A consumer created since counts, and, not paused, leaves the kind
	// unpaused until the next pause.
	if _, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: lanes[2].Consumer, FilterSubject: lanes[2].RunSubject, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, lanes[2].RunSubject, nil); err != nil {
		t.Fatal(err)
	}
	if q, err = ReadQueue(ctx, js, k); err != nil || q.Queued != 6 || !q.PausedUntil.IsZero() {
		t.Fatalf("with low: %+v, %v", q, err)
	}
	if err := Pause(ctx, js, k, until); err != nil {
		t.Fatal(err)
	}
	_, conss, err := Consumers(ctx, js, k)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range conss {
		if info := c.CachedInfo(); !info.Paused {
			t.Errorf("%s not paused", lanes[i].Consumer)
		}
	}
	if err := Resume(ctx, js, k); err != nil {
		t.Fatal(err)
	}
	if q, err = ReadQueueOf(ctx, st, conss, k); err != nil || !q.PausedUntil.IsZero() || q.Queued != 6 {
		t.Fatalf("resumed: %+v, %v", q, err)
	}
}
