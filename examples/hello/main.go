// Command hello is the seed's asyncio example written the Go way: sayHello
// prints "Hello!", waits a second without blocking anything else, then
// prints "World!". Three of them run concurrently and finish in about one
// second, not three.
//
//	go run ./examples/hello
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

func main() {
	start := time.Now()
	if err := sayHellos(context.Background(), os.Stdout, 3, sleep(time.Second)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("three greetings in %.1fs\n", time.Since(start).Seconds())
}

// waitFunc is the simulated I/O: it blocks until done or ctx ends.
type waitFunc func(ctx context.Context) error

// sleep returns a waitFunc that waits d, honouring cancellation: Go's
// asyncio.sleep. Waiting parks the goroutine; the thread serves others.
func sleep(d time.Duration) waitFunc {
	return func(ctx context.Context) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sayHello is the seed's say_hello: no async keyword, no event loop — a
// plain function that blocks its own goroutine only.
func sayHello(ctx context.Context, w *syncWriter, wait waitFunc) error {
	w.println("Hello!")
	if err := wait(ctx); err != nil {
		return err
	}
	w.println("World!")
	return nil
}

// sayHellos runs n greetings concurrently, one goroutine each, and returns
// the first error.
func sayHellos(ctx context.Context, out io.Writer, n int, wait waitFunc) error {
	w := &syncWriter{w: out}
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { errs <- sayHello(ctx, w, wait) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// syncWriter serialises lines from several goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) println(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintln(s.w, line)
}
