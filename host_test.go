package ferry_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
)

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var quiet = ferry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

// blockingService has an endpoint that holds each request until release
// is closed or the request's context ends; inside counts those in it.
func blockingService(t *testing.T, inside *atomic.Int32, cancelled *atomic.Int32, release chan struct{}) *ferry.Service {
	t.Helper()
	svc := ferry.MustNew("blocking", "1.0.0", ferry.WithAddr("127.0.0.1:0"), quiet)
	ferry.Get(svc, "wait", "/wait", func(ctx context.Context, _ *Empty) (*Empty, error) {
		inside.Add(1)
		defer inside.Add(-1)
		select {
		case <-release:
			return &Empty{}, nil
		case <-ctx.Done():
			cancelled.Add(1)
			return nil, ctx.Err()
		}
	})
	return svc
}

// hostWith starts services on a host configured by cfg and returns it;
// the test stops it (to restart on the same store, or to time the stop).
func hostWith(t *testing.T, cfg ferry.Config, svcs ...*ferry.Service) *ferry.Host {
	t.Helper()
	return started(t, []ferry.Option{ferry.WithConfig(cfg)}, svcs...)
}

// startHost starts services on a host made with opts and stops it when
// the test ends.
func startHost(t *testing.T, opts []ferry.Option, svcs ...*ferry.Service) *ferry.Host {
	t.Helper()
	h := started(t, opts, svcs...)
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	return h
}

// started makes a quiet host with opts, adds svcs and starts it.
func started(t *testing.T, opts []ferry.Option, svcs ...*ferry.Service) *ferry.Host {
	t.Helper()
	h, err := ferry.NewHost(append([]ferry.Option{quiet}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Add(svcs...); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestShutdownFinishesInFlightRequests(t *testing.T) {
	var inside, cancelled atomic.Int32
	release := make(chan struct{})
	svc := blockingService(t, &inside, &cancelled, release)
	h := startHost(t, nil, svc)
	url := "http://" + svc.Addr().String() + "/wait"

	const n = 5
	results := make(chan int, n)
	for range n {
		go func() {
			resp, err := http.Get(url)
			if err != nil {
				results <- -1
				return
			}
			resp.Body.Close()
			results <- resp.StatusCode
		}()
	}
	eventually(t, "all requests are inside the handler", func() bool { return inside.Load() == n })

	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- h.Shutdown(context.Background()) }()
	// Intake stops: new connections are refused while the old ones finish.
	eventually(t, "the listener is closed", func() bool {
		c, err := (&http.Client{Timeout: time.Second}).Get(url)
		if err == nil {
			c.Body.Close()
		}
		return err != nil
	})
	select {
	case err := <-shutdownDone:
		t.Fatalf("Shutdown returned %v with requests in flight", err)
	default:
	}
	close(release)
	for range n {
		if code := <-results; code != http.StatusNoContent {
			t.Errorf("in-flight request answered %d, want 204", code)
		}
	}
	if err := <-shutdownDone; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := h.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

func TestShutdownGraceExpires(t *testing.T) {
	var inside, cancelled atomic.Int32
	svc := blockingService(t, &inside, &cancelled, make(chan struct{}))
	h := startHost(t, nil, svc)
	go func() {
		if resp, err := http.Get("http://" + svc.Addr().String() + "/wait"); err == nil {
			resp.Body.Close()
		}
	}()
	eventually(t, "the request is inside the handler", func() bool { return inside.Load() == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the grace period is already over
	if err := h.Shutdown(ctx); err == nil || !strings.Contains(err.Error(), "grace period") {
		t.Errorf("Shutdown = %v, want a grace period error", err)
	}
	eventually(t, "the cut-off request's context is cancelled", func() bool { return cancelled.Load() == 1 })
}

func TestRunStopsOnContext(t *testing.T) {
	svc := ferry.MustNew("quick", "1.0.0", ferry.WithAddr("127.0.0.1:0"), quiet)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ferry.Run(ctx, svc) }()
	eventually(t, "the service listens", func() bool { return svc.Addr() != nil })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil after a clean shutdown", err)
	}
}

func TestStartFailsOnAddressInUse(t *testing.T) {
	first := ferry.MustNew("first", "1.0.0", ferry.WithAddr("127.0.0.1:0"), quiet)
	startHost(t, nil, first)
	second := ferry.MustNew("second", "1.0.0", ferry.WithAddr(first.Addr().String()), quiet)
	h, _ := ferry.NewHost(quiet)
	if err := h.Add(second); err != nil {
		t.Fatal(err)
	}
	err := h.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "second") || !strings.Contains(err.Error(), "WithAddr") {
		t.Fatalf("Start = %v, want an error naming the service and the setting", err)
	}
}

func TestHostRejectsMisuse(t *testing.T) {
	a := ferry.MustNew("a", "1.0.0", ferry.WithoutHTTP(), quiet)
	h, _ := ferry.NewHost(quiet)
	if err := h.Add(a, ferry.MustNew("a", "2.0.0", quiet)); err == nil {
		t.Error("two services with one name accepted")
	}
	empty, _ := ferry.NewHost(quiet)
	if err := empty.Start(context.Background()); err == nil {
		t.Error("a host without services started")
	}
	startHost(t, nil, a)
	h2, _ := ferry.NewHost(quiet)
	_ = h2.Add(a)
	if err := h2.Start(context.Background()); err == nil {
		t.Error("a service started in two hosts")
	}
	defer func() {
		if recover() == nil {
			t.Error("binding an endpoint after start did not panic")
		}
	}()
	ferry.Get(a, "late", "/late", func(context.Context, *Empty) (*Empty, error) { return nil, nil })
}
