package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// benchEvents is the events per operation of BenchmarkEvents: small, so
// that -benchtime 1x takes well under a second per contender.
const benchEvents = 2000

// BenchmarkEvents publishes benchEvents events in batches of 500 while
// the contender's durable consumer handles them (sync every 1s), per
// operation; one broker per contender, started outside the timed loop.
//
//	go test -run '^$' -bench . -benchtime 1x ./bench/events/
//	go test -run '^$' -bench Events -benchtime 20x -count 5 ./bench/events/ | benchstat -col /contender -
func BenchmarkEvents(b *testing.B) {
	for _, name := range []string{"ferry", "raw"} {
		b.Run("contender="+name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			s := newSink(true)
			inst, err := contenders[name](ctx, b.TempDir(), syncInterval, true, s)
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				if err := inst.close(context.Background()); err != nil {
					b.Error(err)
				}
			}()
			b.ReportAllocs()
			ops := 0
			for b.Loop() {
				b.StopTimer()
				events := newEvents(benchEvents)
				done := s.expect(benchEvents)
				b.StartTimer()
				published := make(chan error, 1)
				go func() { published <- inst.publish(ctx, events, 500) }()
				if _, err := wait(ctx, done, published); err != nil {
					b.Fatal(err)
				}
				ops++
			}
			b.ReportMetric(float64(ops*benchEvents)/b.Elapsed().Seconds(), "msgs/s")
			redelivered, pending, msgs, err := waitAcked(ctx, inst)
			if err != nil {
				b.Fatal(err)
			}
			if msgs != uint64(ops*benchEvents) || pending != 0 || redelivered != 0 {
				b.Fatalf("stream holds %d events (want %d), %d unacknowledged, %d redelivered", msgs, ops*benchEvents, pending, redelivered)
			}
		})
	}
}

// waitAcked waits, at most 15s, until the consumer has no delivery
// pending acknowledgement.
func waitAcked(ctx context.Context, inst instance) (redelivered, pending int, msgs uint64, err error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		redelivered, pending, msgs, err = inst.state(ctx)
		if err != nil || pending == 0 || time.Now().After(deadline) {
			return redelivered, pending, msgs, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunSmall runs the command end to end with a few events.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dozen brokers")
	}
	var out, errOut strings.Builder
	args := []string{"-n", "300", "-n-always", "100", "-batch", "100", "-rounds", "1", "-tries", "1", "-idle-wait", "0", "-dir", t.TempDir()}
	if err := run(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	for _, want := range []string{"### Sync interval-1s", "### Sync always", "| publish only |", "| consume only (pre-filled) |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
