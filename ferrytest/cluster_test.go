package ferrytest_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

type tallyIn struct {
	N int `json:"n"`
}

type tallyOut struct {
	N int `json:"n"`
}

var tally = ferry.Job[tallyIn, tallyOut]{Name: "tally"}

// TestClusterSurvivesANodeLoss: a worker on a 3-node cluster (streams and
// buckets with 3 replicas) keeps taking and finishing jobs while one node
// is killed with SIGKILL, and after it is restarted.
func TestClusterSurvivesANodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node nats-server cluster")
	}
	cluster := ferrytest.StartCluster(t, 3)
	cfg := ferrytest.Config(t)
	cfg.NATSURL, cfg.NATSEmbed, cfg.StreamReplicas = cluster.URL(), false, 3
	svc := ferry.MustNew("tallier", "1.0.0", ferry.WithoutHTTP(), ferry.WithLogger(ferrytest.Logger(t)))
	ferry.HandleJob(svc, tally, func(ctx context.Context, in *tallyIn, _ *ferry.Progress) (*tallyOut, error) {
		return &tallyOut{N: in.N}, nil
	}, ferry.JobAckWait(2*time.Second)) // a run whose acknowledgement was lost with the node runs again soon
	h := ferrytest.StartWith(t, cfg, svc)

	enqueue := func(from, to int) []string {
		var ids []string
		for i := from; i < to; i++ {
			var id string
			ferrytest.Eventually(t, func() bool { // a publish during an election may fail: the caller retries
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				var err error
				id, err = tally.Enqueue(ctx, h.Client, &tallyIn{N: i}, ferry.EnqueueKey(fmt.Sprint("tally-", i), time.Hour))
				return err == nil
			}, "job %d is enqueued", i)
			ids = append(ids, id)
		}
		return ids
	}
	ids := enqueue(0, 20)
	cluster.Kill(0)
	ids = append(ids, enqueue(20, 40)...)
	cluster.Restart(0)
	ids = append(ids, enqueue(40, 60)...)
	for i, id := range ids {
		if rec := ferrytest.WaitJob(t, h, tally, id); rec.State != ferry.JobSucceeded || rec.Result.N != i {
			t.Fatalf("job %d: %+v", i, rec)
		}
	}
}

// TestClusterRestartsANodeThatDiedOnItsOwn: Restart brings a node back
// after Kill and after its server was killed from outside the harness.
func TestClusterRestartsANodeThatDiedOnItsOwn(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nats-server")
	}
	if runtime.GOOS != "linux" {
		t.Skip("finds the server's pid in /proc")
	}
	cluster := ferrytest.StartCluster(t, 1)
	node := cluster.Nodes()[0]
	cluster.Kill(0)
	cluster.Restart(0)

	pid := serverPID(t, node.Addr)
	proc, err := os.FindProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Release()
	if err := proc.Kill(); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool { return proc.Signal(syscall.Signal(0)) != nil }, "nats-server %d is gone", pid)
	cluster.Restart(0)
	nc, err := nats.Connect(cluster.URL())
	if err != nil {
		t.Fatalf("connect after the restart: %v", err)
	}
	nc.Close()
}

// serverPID returns the pid of the nats-server listening for clients on
// addr, from the command lines in /proc.
func serverPID(t *testing.T, addr string) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	want := []byte("\x00-p\x00" + port + "\x00")
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil || !bytes.Contains(cmdline, want) || !bytes.Contains(cmdline, []byte("nats-server")) {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(filepath.Base(dir), &pid); err == nil {
			return pid
		}
	}
	t.Fatalf("no nats-server on port %s in /proc", port)
	return 0
}
