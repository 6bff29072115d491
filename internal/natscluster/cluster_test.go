package natscluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/natscluster"
)

// syncBuffer is a bytes.Buffer that a test may read while nodes write.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startCluster starts an n-node cluster that is closed when the test ends.
func startCluster(t *testing.T, n int, logs *syncBuffer) *natscluster.Cluster {
	t.Helper()
	bin, err := natscluster.Binary(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	opts := natscluster.Options{Nodes: n, Dir: t.TempDir(), Bin: bin, Name: "natscluster-test"}
	if logs != nil {
		opts.Logs = logs
	}
	c, err := natscluster.New(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return c
}

// eventually polls cond every 100ms until it returns nil, failing the test
// with its last error after 30s.
func eventually(t *testing.T, what string, cond func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		err := cond(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterSurvivesANodeLoss: a stream with 3 replicas takes messages
// while one node is killed, and the restarted node catches up.
func TestClusterSurvivesANodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node nats-server cluster")
	}
	logs := &syncBuffer{}
	c := startCluster(t, 3, logs)
	if got := strings.Count(c.URL(), "nats://127.0.0.1:"); got != 3 {
		t.Fatalf("URL %q: want 3 loopback URLs", c.URL())
	}
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "create the stream", func(ctx context.Context) error {
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Replicas: 3})
		return err
	})
	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			eventually(t, fmt.Sprint("publish ", i), func(ctx context.Context) error { // an election may refuse one
				_, err := js.Publish(ctx, "orders.placed", []byte(fmt.Sprint(i)), jetstream.WithMsgID(fmt.Sprint("order-", i)))
				return err
			})
		}
	}

	publish(0, 10)
	c.Kill(0)
	if p := c.Nodes()[0].Process(); p != nil {
		t.Errorf("a killed node has a process: %d", p.Pid)
	}
	publish(10, 20)
	if err := c.Restart(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(t.Context(), 0); err == nil {
		t.Error("Restart of a running node: no error")
	}
	publish(20, 30)
	eventually(t, "every replica holds the 30 messages", func(ctx context.Context) error {
		info, err := js.Stream(ctx, "ORDERS")
		if err != nil {
			return err
		}
		si := info.CachedInfo()
		if si.State.Msgs != 30 {
			return fmt.Errorf("%d messages", si.State.Msgs)
		}
		if si.Cluster == nil || len(si.Cluster.Replicas) != 2 {
			return fmt.Errorf("cluster %+v: want a leader and 2 replicas", si.Cluster)
		}
		for _, r := range si.Cluster.Replicas {
			if !r.Current || r.Offline {
				return fmt.Errorf("replica %s is behind or offline", r.Name)
			}
		}
		return nil
	})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"n1", "n2", "n3"} {
		if !strings.Contains(logs.String(), "["+name+"] ") {
			t.Errorf("no output of node %s in the logs", name)
		}
	}
}

// TestWaitReadyReportsANodeThatDiedOnItsOwn: a node killed behind the
// cluster's back is an error of WaitReady, not a node skipped; Restart
// brings it back; a stopped node is skipped; nothing starts after Close.
func TestWaitReadyReportsANodeThatDiedOnItsOwn(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node nats-server cluster")
	}
	c := startCluster(t, 3, nil)
	// A stopped node is skipped (done first, on a settled cluster: right
	// after another node's restart, the two left may take long to elect a
	// meta leader on a loaded machine).
	if err := c.Stop(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(t.Context()); err != nil {
		t.Errorf("WaitReady with a stopped node: %v", err)
	}
	if err := c.Restart(t.Context(), 2); err != nil {
		t.Fatal(err)
	}

	proc, err := os.FindProcess(c.Nodes()[1].Process().Pid) // a handle of the test's own
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = proc.Release()
	err = c.WaitReady(t.Context())
	if err == nil || !strings.Contains(err.Error(), "node n2 exited on its own") || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("WaitReady after n2 died: %v; want it reported", err)
	}
	t.Log(err)
	if c.Nodes()[1].Process() == nil {
		t.Error("a node that died on its own has no process")
	}
	if err := c.Restart(t.Context(), 1); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for i, node := range c.Nodes() {
		if p := node.Process(); p != nil {
			t.Errorf("node %d still has process %d after Close", i, p.Pid)
		}
	}
	if err := c.Restart(t.Context(), 0); !errors.Is(err, natscluster.ErrClosed) {
		t.Errorf("Restart after Close: %v; want ErrClosed", err)
	}
}

func TestNewRejectsANegativeNodeCount(t *testing.T) {
	if _, err := natscluster.New(t.Context(), natscluster.Options{Nodes: -1, Bin: "nats-server"}); err == nil {
		t.Error("New with -1 nodes: no error")
	}
}

func TestNewLaysOutTheNodes(t *testing.T) {
	tests := []struct {
		nodes, want int
		routes      bool
	}{
		{nodes: 0, want: 3, routes: true},
		{nodes: 1, want: 1},
		{nodes: 5, want: 5, routes: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("nodes=", tt.nodes), func(t *testing.T) {
			dir := t.TempDir()
			c, err := natscluster.New(t.Context(), natscluster.Options{Nodes: tt.nodes, Dir: dir, Bin: "nats-server"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if len(c.Nodes()) != tt.want {
				t.Fatalf("%d nodes; want %d", len(c.Nodes()), tt.want)
			}
			seen := map[string]bool{}
			for i, node := range c.Nodes() {
				if want := fmt.Sprint("n", i+1); node.Name != want {
					t.Errorf("node %d named %q; want %q", i, node.Name, want)
				}
				if want := dir + "/" + node.Name; node.Dir != want {
					t.Errorf("node %s store %q; want %q", node.Name, node.Dir, want)
				}
				if (node.ClusterAddr != "") != tt.routes {
					t.Errorf("node %s cluster address %q; routes %v", node.Name, node.ClusterAddr, tt.routes)
				}
				for _, a := range []string{node.Addr, node.ClusterAddr} {
					if a != "" && seen[a] {
						t.Errorf("address %s given twice", a)
					}
					seen[a] = true
				}
				if node.Process() != nil {
					t.Errorf("node %s runs before Start", node.Name)
				}
			}
		})
	}
}

func TestFreeAddrIsOnLoopback(t *testing.T) {
	addr, err := natscluster.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("FreeAddr() = %q; want 127.0.0.1:port", addr)
	}
}
