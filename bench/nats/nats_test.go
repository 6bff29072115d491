package main

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkCall measures request/reply over NATS with 64 concurrent
// callers, one sub-benchmark per contender of the driver (see main.go):
// ferry is the typed client against the Ferry endpoint, raw the nats.go
// request against the reference responder. Each b.Loop iteration hands one
// call to a fixed pool of 64 caller goroutines, so ns/op is the time per
// call at that concurrency (the inverse of throughput) and allocs/op the
// whole process's allocations per call (callers, servers and broker).
//
//	go test -run '^$' -bench . -benchtime 5s ./bench/nats
func BenchmarkCall(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	e, err := start(ctx)
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	defer e.close()
	for _, c := range e.contenders() {
		if c.name != "ferry" && c.name != "raw" {
			continue
		}
		b.Run("transport="+c.name, func(b *testing.B) {
			const callers = 64
			calls := make(chan int)
			errs := make(chan error, callers)
			var wg sync.WaitGroup
			for w := range callers {
				wg.Go(func() {
					ctx := context.Background()
					for id := range calls {
						if err := c.call(ctx, w*1_000_000+id); err != nil {
							select {
							case errs <- err:
							default:
							}
						}
					}
				})
			}
			b.ReportAllocs()
			id := 0
			for b.Loop() {
				id = (id + 1) % 1_000_000
				calls <- id
			}
			close(calls)
			wg.Wait()
			select {
			case err := <-errs:
				b.Fatal(err)
			default:
			}
		})
	}
}

// TestContenders checks that every contender answers correctly and that
// the raw requests carry the headers the Ferry client sends.
func TestContenders(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	wire, err := e.sniff(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ferry := wire["ferry"]
	for _, c := range e.contenders() {
		w := wire[c.name]
		if got, want := w.RequestHeaders, ferry.RequestHeaders; !slices.Equal(got, want) {
			t.Errorf("%s: request headers %v, the Ferry client sends %v", c.name, got, want)
		}
		if w.ReplyPayload != `{"item_id":7}` {
			t.Errorf("%s: reply %q", c.name, w.ReplyPayload)
		}
		if c.name != "raw-bare" && !slices.Equal(w.ReplyHeaders, ferry.ReplyHeaders) {
			t.Errorf("%s: reply headers %v, Ferry answers %v", c.name, w.ReplyHeaders, ferry.ReplyHeaders)
		}
	}
	r := load(e.ferryCall, 100*time.Millisecond, 8, 1000, true)
	if r.errors != 0 || r.ops == 0 {
		t.Fatalf("load: %d calls, %d errors (%s)", r.ops, r.errors, r.firstErr)
	}
}
