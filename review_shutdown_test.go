package ferry_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// Found by review: Host.Shutdown promises to return by ctx's deadline whatever
// handlers do, keeping "a fifth of the time left, at most a second" for
// closing. With an event handler that ignores its context, the worker's
// Close waits for it until ctx's own deadline, spending that whole tail,
// so the broker is closed only after the deadline: its drain is cut off at
// once (acks and publishes still buffered are dropped) and the embedded
// server's shutdown runs past the deadline (15-22 ms here).
func TestShutdownReturnsByItsDeadline(t *testing.T) {
	cfg := ferrytest.Config(t)
	entered := make(chan struct{}, 1)
	never := make(chan struct{})
	t.Cleanup(func() { close(never) })
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithConfig(cfg), ferry.WithNATS(), quiet)
	ferry.Subscribe(svc, placed, "ship", func(context.Context, *OrderPlaced) error {
		entered <- struct{}{}
		<-never // ignores its context
		return nil
	})
	h := hostWith(t, cfg, svc)
	client := ferry.NewClient(h.NATS())
	for range 200 { // something for the store to flush at shutdown
		if _, err := placed.Publish(context.Background(), client, &OrderPlaced{OrderID: "o", Quantity: 1}); err != nil {
			t.Fatal(err)
		}
	}
	<-entered

	const slack = 5 * time.Millisecond
	deadline := time.Now().Add(time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.Shutdown(ctx) }()
	var serr error
	select {
	case serr = <-done:
	case <-time.After(hangBound):
		t.Fatalf("Shutdown still blocked %v after its deadline", hangBound)
	}
	over := time.Since(deadline)
	if serr != nil && strings.Contains(serr.Error(), "broker: close") {
		t.Errorf("the time kept for closing was spent waiting for the hung handler: the broker's close started past the deadline (%v), returned %v after it", serr, over)
	} else if over > slack {
		t.Errorf("Shutdown returned %v after its deadline (a handler ignored its context)", over)
	}
}

// Found by review: Shutdown called while Start is still running (here: waiting for
// the holder of its data directory to publish its broker) waits for Start
// to finish, whatever ctx says: Start holds the host's mutex for its whole
// run and Shutdown takes it first. Shutdown neither cancels the start nor
// returns by its deadline.
func TestShutdownDuringStartReturnsByItsDeadline(t *testing.T) {
	cfg := ferrytest.Config(t)
	// Another holder of the data directory that never publishes its broker.
	lock, err := os.OpenFile(filepath.Join(cfg.DataDir, "ferry.lock"), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	h, err := ferry.NewHost(ferry.WithConfig(cfg), quiet)
	if err != nil {
		t.Fatal(err)
	}
	_ = h.Add(ferry.MustNew("a", "1.0.0", ferry.WithNATS(), quiet))
	started := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
		defer cancel()
		started <- h.Start(ctx)
	}()
	time.Sleep(200 * time.Millisecond) // Start is waiting for the broker

	deadline := time.Now().Add(300 * time.Millisecond)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	done := make(chan struct{})
	go func() { _ = h.Shutdown(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(deadline) + time.Second):
		t.Errorf("Shutdown(ctx) called during Start is still blocked 1s after its deadline")
	}
	<-started
	<-done
}

// Found by review: goroutines outlive Shutdown: the NATS request pool's idle
// workers wait out workerIdle (5s) after Close — Close cancels the
// requests' context but does not tell idle workers to end — keeping the
// pool (and the service's handler) alive after Shutdown has returned.
func TestShutdownLeavesNoRPCWorkers(t *testing.T) {
	cfg := ferrytest.Config(t)
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithConfig(cfg), ferry.WithNATS(), quiet)
	ferry.Get(svc, "hang", "/hang", func(context.Context, *Empty) (*Empty, error) { return &Empty{}, nil })
	h := hostWith(t, cfg, svc)
	if _, err := hangEndpoint.Call(context.Background(), ferry.NewClient(h.NATS()), &Empty{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	if n := strings.Count(stacks, "internal/rpc.(*Server).worker"); n > 0 {
		t.Errorf("%d NATS request worker(s) still running 200ms after Shutdown returned", n)
	}
}
