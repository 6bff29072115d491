package rpc

import (
	"context"

	"github.com/nats-io/nats.go"
	"testing"
)

// Found by review: Drain with nothing in flight reports abandoned work when its
// context has already ended (the usual case once an earlier stage used up
// the drain deadline): the select between "no request in flight" and
// ctx.Done picks at random, so Host.Shutdown returns (and logs as "work
// abandoned") "grace period over; 0 request(s) in flight were cancelled"
// for a service that had no call in flight — even one without WithNATS,
// which serves no routes at all. ferrytest turns that into a test failure.
func TestDrainWithNothingInFlightIsClean(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 50 {
		s, err := Serve(nil, nil, func(context.Context, string, *nats.Msg) {}, Options{MaxWorkers: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Drain(ctx); err != nil {
			t.Fatalf("drain %d of a server with no request in flight: %v", i, err)
		}
		_ = s.Close()
	}
}
