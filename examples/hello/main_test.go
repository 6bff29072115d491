package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

// TestGreetingsOverlap proves the three greetings run concurrently without
// timing anything: each one's wait blocks until all three are waiting, which
// can only finish if all three are in flight at once; so every "Hello!" is
// printed before any "World!".
func TestGreetingsOverlap(t *testing.T) {
	const n = 3
	var mu sync.Mutex
	waiting := 0
	all := make(chan struct{})
	barrier := func(ctx context.Context) error {
		mu.Lock()
		waiting++
		if waiting == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var out bytes.Buffer
	if err := sayHellos(context.Background(), &out, n, barrier); err != nil {
		t.Fatal(err)
	}
	want := strings.Repeat("Hello!\n", n) + strings.Repeat("World!\n", n)
	if out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}

func TestCancelledGreeting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	err := sayHellos(ctx, &out, 3, sleep(1<<62))
	if !errors.Is(err, context.Canceled) || strings.Contains(out.String(), "World!") {
		t.Errorf("err %v, output %q", err, out.String())
	}
}
