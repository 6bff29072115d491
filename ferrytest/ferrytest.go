// Package ferrytest runs Ferry services inside tests: an embedded broker in
// a temporary store and the services on free loopback ports, in one line,
// stopped when the test ends; and a polling helper instead of sleeps.
//
//	svc := ferry.MustNew("items", "1.0.0", ferry.WithNATS())
//	ferry.Handle(svc, itemsapi.GetItem, getItem)
//	h := ferrytest.Start(t, svc)
//	out, err := itemsapi.GetItem.Call(ctx, h.Client, &itemsapi.GetItemInput{ItemID: 42})
package ferrytest

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
)

// Config returns the configuration of a service or host under test: HTTP
// on a free loopback port, an embedded broker in a temporary directory of
// its own, and warnings and errors logged.
func Config(t testing.TB) ferry.Config {
	t.Helper()
	return ferry.Config{
		Addr:      "127.0.0.1:0",
		NATSEmbed: true,
		DataDir:   t.TempDir(),
		LogLevel:  slog.LevelWarn,
	}
}

// Logger returns a logger that writes into the test's output, so it shows
// only for failing tests or with -v.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// Host is a started host under test.
type Host struct {
	*ferry.Host
	// Client calls the services' endpoints over the host's broker.
	Client *ferry.Client
}

// Start hosts services on an embedded broker in a temporary store, starts
// them, and stops them when the test ends. Services created without a
// configuration of their own take the host's: each listens on a free
// loopback port (parallel tests do not collide) and logs into the test's
// output. It fails the test if the host cannot start.
func Start(t testing.TB, services ...*ferry.Service) *Host {
	t.Helper()
	return StartWith(t, Config(t), services...)
}

// RetryScale is the factor Start applies to retry delays
// ([ferry.WithRetryScale]): a retry after a failed delivery comes after
// about 1% of its production delay (10 ms instead of 1 s).
const RetryScale = 0.01

// StartWith is Start with the host configured by cfg.
func StartWith(t testing.TB, cfg ferry.Config, services ...*ferry.Service) *Host {
	t.Helper()
	h, err := ferry.NewHost(ferry.WithConfig(cfg), ferry.WithLogger(Logger(t)), ferry.WithRetryScale(RetryScale))
	if err != nil {
		t.Fatalf("ferrytest: %v", err)
	}
	if err := h.Add(services...); err != nil {
		t.Fatalf("ferrytest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		t.Fatalf("ferrytest: start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("ferrytest: shutdown: %v", err)
		}
	})
	th := &Host{Host: h}
	if nc := h.NATS(); nc != nil {
		th.Client = ferry.NewClient(nc)
	}
	return th
}

// URL returns the base URL of a started service's HTTP server
// ("http://127.0.0.1:PORT"); it fails the test if the service has none.
func URL(t testing.TB, svc *ferry.Service) string {
	t.Helper()
	addr := svc.Addr()
	if addr == nil {
		t.Fatalf("ferrytest: service %s does not listen on HTTP", svc.Name())
	}
	return "http://" + addr.String()
}

// DefaultWait is how long Eventually polls before failing.
const DefaultWait = 10 * time.Second

// Eventually polls cond every few milliseconds until it returns true,
// failing the test with what (formatted with args) if it does not within
// DefaultWait. Use it instead of sleeping.
func Eventually(t testing.TB, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(DefaultWait)
	for delay := time.Millisecond; !cond(); delay = min(2*delay, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("ferrytest: timed out after %v waiting until %s", DefaultWait, fmt.Sprintf(what, args...))
		}
		time.Sleep(delay)
	}
}
