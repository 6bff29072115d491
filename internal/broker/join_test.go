package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestConcurrentStartsJoin: processes started together on one data
// directory all come up: one runs the broker, the others join it, even
// those that look while the first is still starting it.
func TestConcurrentStartsJoin(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const n = 4
	brokers := make([]*Broker, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			brokers[i], errs[i] = Open(ctx, Options{DataDir: dir, Listen: "127.0.0.1:0"})
		})
	}
	close(start)
	wg.Wait()
	var owner *Broker
	for i, b := range brokers {
		if errs[i] != nil {
			t.Errorf("process %d: %v", i, errs[i])
			continue
		}
		if b.Embedded() {
			if owner != nil {
				t.Errorf("two processes run a broker on %s", dir)
			}
			owner = b
		}
	}
	if owner == nil {
		t.Fatal("no process runs the broker")
	}
	for i, b := range brokers {
		if b == nil {
			continue
		}
		if got, want := b.Conn().ConnectedServerId(), owner.Conn().ConnectedServerId(); got != want {
			t.Errorf("process %d reached server %s, the owner's is %s", i, got, want)
		}
	}
	for _, b := range brokers {
		if b != nil && b != owner {
			_ = b.Close(ctx)
		}
	}
	_ = owner.Close(ctx)
}

// TestJoinWaitsForStartingOwner: a process that finds the data directory
// locked before the holder has published its broker waits for it, and
// takes the directory over if the holder gives up.
func TestJoinWaitsForStartingOwner(t *testing.T) {
	tests := []struct {
		name      string
		holder    func(t *testing.T, dir string, lock *os.File) string // returns the server ID the joiner must reach, "" for its own
		wantOwner bool
	}{
		{"the holder publishes its broker", func(t *testing.T, dir string, _ *os.File) string {
			srv := testServer(t, func(*server.Options) {})
			writeTestRecord(t, dir, fmt.Sprintf(`{"url":%q,"server_id":%q}`, srv.ClientURL(), srv.ID()))
			return srv.ID()
		}, false},
		{"the holder gives up", func(t *testing.T, _ string, lock *os.File) string {
			if err := unlockDir(lock); err != nil {
				t.Fatal(err)
			}
			return ""
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			lock, err := lockDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = unlockDir(lock) })
			logs := &logRecords{}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			type result struct {
				b   *Broker
				err error
			}
			done := make(chan result, 1)
			go func() {
				b, err := Open(ctx, Options{DataDir: dir, Logger: logs.logger()})
				done <- result{b, err}
			}()
			var r result
			returned := false
			eventually(t, func() bool {
				select {
				case r = <-done:
					returned = true
				default:
				}
				return returned || logs.find("waiting") != ""
			}, "waiting for the holder of the data directory")
			if returned {
				t.Fatalf("returned before the holder published its broker: %v, %v", r.b, r.err)
			}
			wantID := tt.holder(t, dir, lock)
			r = <-done
			if r.err != nil {
				t.Fatal(r.err)
			}
			defer r.b.Close(ctx)
			if r.b.Embedded() != tt.wantOwner {
				t.Errorf("runs the broker: %v, want %v", r.b.Embedded(), tt.wantOwner)
			}
			if wantID != "" && r.b.Conn().ConnectedServerId() != wantID {
				t.Errorf("reached server %s, want %s", r.b.Conn().ConnectedServerId(), wantID)
			}
		})
	}
}

// TestStaleBrokerURL: a broker.url that does not describe the broker of
// the process holding the data directory (left by a process that was
// killed, or by an older Ferry) never sends a process to whatever server
// now listens at that address.
func TestStaleBrokerURL(t *testing.T) {
	other := testServer(t, func(*server.Options) {})
	tests := []struct {
		name    string
		content string
		held    bool   // the data directory is locked by a live holder
		wantErr string // the joiner's error; "" when the holder's start replaces the file
	}{
		{"plain URL, directory free", other.ClientURL() + "\n", false, ""},
		{"record, directory free", fmt.Sprintf(`{"url":%q,"server_id":%q}`, other.ClientURL(), other.ID()), false, ""},
		{"plain URL, directory held", other.ClientURL() + "\n", true, "broker.url"},
		{"record naming another server, directory held", fmt.Sprintf(`{"url":%q,"server_id":"NOTTHESERVERTHERE"}`, other.ClientURL()), true, "stale"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTestRecord(t, dir, tt.content)
			ctx := context.Background()
			if !tt.held {
				// A process takes the free directory, not listening: the
				// file it finds is not its broker's.
				owner, err := Open(ctx, Options{DataDir: dir})
				if err != nil {
					t.Fatal(err)
				}
				defer owner.Close(ctx)
				if data, _ := os.ReadFile(filepath.Join(dir, urlFileName)); strings.Contains(string(data), other.ClientURL()) {
					t.Errorf("the new holder kept the stale %s: %s", urlFileName, data)
				}
			} else {
				lock, err := lockDir(dir)
				if err != nil {
					t.Fatal(err)
				}
				defer unlockDir(lock)
			}
			joinCtx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			b, err := Open(joinCtx, Options{DataDir: dir})
			if err == nil {
				defer b.Close(ctx)
				t.Fatalf("joined server %s through a stale %s", b.Conn().ConnectedServerId(), urlFileName)
			}
			want := tt.wantErr
			if want == "" {
				want = "does not listen"
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
			if errors.Is(err, context.DeadlineExceeded) && tt.wantErr != "stale" {
				t.Errorf("waited for the holder until the deadline: %v", err)
			}
		})
	}
}

// writeTestRecord writes content as dir's broker.url.
func writeTestRecord(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, urlFileName), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
