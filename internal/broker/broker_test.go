package broker

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

func TestAtLeast(t *testing.T) {
	tests := []struct {
		v, min string
		want   bool
	}{
		{"2.15.2", "2.10.0", true},
		{"2.10.0", "2.10.0", true},
		{"2.9.25", "2.10.0", false},
		{"v2.11.0-beta.1", "2.10.0", true},
		{"3.0.0", "2.10.0", true},
		{"", "2.10.0", false},
		{"2.10.0+build", "2.10.1", false},
	}
	for _, tt := range tests {
		if got := atLeast(tt.v, tt.min); got != tt.want {
			t.Errorf("atLeast(%q, %q) = %v, want %v", tt.v, tt.min, got, tt.want)
		}
	}
}

func TestRedact(t *testing.T) {
	got := redact("nats://user:secret@a:4222,nats://b:4222,tls://tok@c:4443")
	if strings.Contains(got, "secret") || strings.Contains(got, "tok@") || !strings.Contains(got, "nats://b:4222") {
		t.Errorf("redact = %q", got)
	}
}

func TestLockDir(t *testing.T) {
	dir := t.TempDir()
	first, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockDir(dir); !errors.Is(err, errLocked) {
		t.Fatalf("second lock: %v, want errLocked", err)
	}
	if err := unlockDir(first); err != nil {
		t.Fatal(err)
	}
	again, err := lockDir(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	_ = unlockDir(again)
}

func TestOpenEmbeddedAndJoin(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	owner, err := Open(ctx, Options{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close(ctx)
	if !owner.Embedded() || !strings.HasPrefix(owner.URL(), "nats://127.0.0.1:") {
		t.Fatalf("owner: embedded %v, url %q", owner.Embedded(), owner.URL())
	}
	joiner, err := Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if joiner.Embedded() || joiner.URL() != owner.URL() {
		t.Errorf("joiner: embedded %v, url %q", joiner.Embedded(), joiner.URL())
	}
	_ = joiner.Close(ctx)
	if _, err := Open(ctx, Options{URL: "nats://127.0.0.1:1"}); err == nil || !strings.Contains(err.Error(), "FERRY_NATS_URL") {
		t.Errorf("unreachable URL: %v", err)
	}
}

func TestListenPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Open(context.Background(), Options{DataDir: t.TempDir(), Listen: ln.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), "FERRY_NATS_LISTEN") {
		t.Fatalf("Open on a taken port: %v", err)
	}
}

// TestMinServerVersion: a server older than MinServerVersion is refused
// with a message that names the version needed and why; newer ones are
// accepted. nats-server 2.10 lacks the per-message TTL the idempotency
// store is created with.
func TestMinServerVersion(t *testing.T) {
	tests := []struct {
		version string
		refused bool
	}{
		{"2.9.25", true},
		{"2.10.22", true},
		{"2.11.0", false},
		{"2.12.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			url := fakeServer(t, tt.version, "FAKE")
			b, err := Open(context.Background(), Options{URL: url})
			if !tt.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				b.Conn().Close()
				return
			}
			if err == nil {
				b.Conn().Close()
				t.Fatalf("nats-server %s accepted; Ferry needs %s", tt.version, MinServerVersion)
			}
			if !containsAll(err.Error(), "2.11.0", tt.version, "TTL") {
				t.Errorf("error %q does not name the version needed, the server's, and why", err)
			}
		})
	}
}

// TestCloseBoundedByCtx: a drain that cannot finish (a handler that does
// not return) is cut off when ctx ends; the embedded server still stops
// and the data directory is released.
func TestCloseBoundedByCtx(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		opts Options
	}{
		{"embedded", Options{DataDir: dir}},
		{"external", Options{URL: startTestServer(t, func(*server.Options) {})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Open(context.Background(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			release := make(chan struct{})
			defer close(release)
			var entered atomic.Bool
			if _, err := b.Conn().Subscribe("stuck", func(*nats.Msg) { entered.Store(true); <-release }); err != nil {
				t.Fatal(err)
			}
			if err := b.Conn().Publish("stuck", nil); err != nil {
				t.Fatal(err)
			}
			eventually(t, entered.Load, "in the handler")
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			err = b.Close(ctx)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Close took %s with a 200ms budget", took)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Close = %v, want the drain cut off", err)
			}
			if !b.Conn().IsClosed() {
				t.Error("the connection is still open")
			}
			if tt.opts.DataDir != "" {
				lock, err := lockDir(dir)
				if err != nil {
					t.Fatalf("the data directory is still held: %v", err)
				}
				_ = unlockDir(lock)
				if _, err := os.Stat(filepath.Join(dir, urlFileName)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left behind: %v", urlFileName, err)
				}
			}
			if err := b.Close(context.Background()); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}
