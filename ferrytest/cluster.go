package ferrytest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsServerModule is the module whose main package is nats-server: the
// version this module pins is built, so the cluster runs the server the
// embedded broker runs.
const natsServerModule = "github.com/nats-io/nats-server/v2"

// Cluster is a NATS cluster with JetStream on loopback, its nodes separate
// nats-server processes that a test can kill and restart in place (same
// ports, same stores): the harness of the cluster, fault and scale-out
// tests. Point services at it with [Cluster.URL] as Config.NATSURL (with
// Config.StreamReplicas 3).
type Cluster struct {
	t     testing.TB
	bin   string
	nodes []*ClusterNode
}

// ClusterNode is one node of a [Cluster].
type ClusterNode struct {
	// Name is the node's server name; Addr its client address.
	Name, Addr string
	// Dir is the node's store.
	Dir string

	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartCluster starts an n-node cluster (n at least 1; 3 for a cluster that
// survives the loss of one node) and waits until JetStream answers on
// every node. It builds nats-server from the pinned module once per
// machine (kept in the user's cache directory) — the go command must be
// on PATH. The nodes are killed when the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("ferrytest: StartCluster(%d): at least one node", n)
	}
	c := &Cluster{t: t, bin: natsServerBinary(t)}
	clusterPorts := make([]string, n)
	for i := range n {
		clusterPorts[i] = FreeAddr(t)
	}
	routes := make([]string, n)
	for i, a := range clusterPorts {
		routes[i] = "nats-route://" + a
	}
	for i := range n {
		node := &ClusterNode{Name: "n" + strconv.Itoa(i+1), Addr: FreeAddr(t), Dir: t.TempDir()}
		host, port, _ := net.SplitHostPort(node.Addr)
		node.args = []string{"-a", host, "-p", port, "-n", node.Name, "-js", "-sd", node.Dir}
		if n > 1 {
			node.args = append(node.args, "--cluster_name", "ferrytest", "--cluster", "nats://"+clusterPorts[i], "--routes", strings.Join(routes, ","))
		}
		c.nodes = append(c.nodes, node)
	}
	t.Cleanup(func() {
		for _, node := range c.nodes {
			node.kill()
		}
	})
	for _, node := range c.nodes {
		c.start(node)
	}
	c.WaitReady()
	return c
}

// Nodes returns the cluster's nodes.
func (c *Cluster) Nodes() []*ClusterNode { return c.nodes }

// URL returns the client URLs of every node, comma-separated: a value for
// Config.NATSURL (FERRY_NATS_URL).
func (c *Cluster) URL() string {
	urls := make([]string, len(c.nodes))
	for i, node := range c.nodes {
		urls[i] = "nats://" + node.Addr
	}
	return strings.Join(urls, ",")
}

// Kill ends node i with SIGKILL: no goodbye to its peers or clients.
func (c *Cluster) Kill(i int) { c.nodes[i].kill() }

// Restart starts node i again, on its ports and store, after Kill or
// Stop, and waits until JetStream answers on every node.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.start(c.nodes[i])
	c.WaitReady()
}

// WaitReady waits until every running node answers JetStream's account
// information (its meta leader is known), failing the test after 60s.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, node := range c.nodes {
		if !node.running() {
			continue
		}
		for {
			err := node.jetStreamReady()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("ferrytest: cluster node %s not ready after 60s: %v", node.Name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func (c *Cluster) start(node *ClusterNode) {
	c.t.Helper()
	node.mu.Lock()
	defer node.mu.Unlock()
	if node.cmd != nil {
		select {
		case <-node.done: // it died on its own: start it again
		default:
			c.t.Fatalf("ferrytest: cluster node %s is running", node.Name)
		}
	}
	cmd := exec.Command(c.bin, node.args...)
	cmd.Stdout, cmd.Stderr = nil, nil
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("ferrytest: start cluster node %s: %v", node.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	node.cmd, node.done = cmd, done
}

func (node *ClusterNode) kill() {
	node.mu.Lock()
	cmd, done := node.cmd, node.done
	node.cmd = nil
	node.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

func (node *ClusterNode) running() bool {
	node.mu.Lock()
	defer node.mu.Unlock()
	return node.cmd != nil
}

// jetStreamReady reports whether the node answers JetStream requests.
func (node *ClusterNode) jetStreamReady() error {
	nc, err := nats.Connect("nats://"+node.Addr, nats.Timeout(time.Second), nats.NoReconnect())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}

// natsServerBinary builds nats-server at the version this module requires,
// once per machine and version.
func natsServerBinary(t testing.TB) string {
	t.Helper()
	version := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path == natsServerModule {
				version = dep.Version
				if dep.Replace != nil {
					version = dep.Replace.Version
				}
			}
		}
	}
	if version == "unknown" { // a test binary records no dependencies: ask the go command
		if out, err := exec.Command("go", "list", "-m", "-f", "{{with .Replace}}{{.Version}}{{else}}{{.Version}}{{end}}", natsServerModule).Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
			version = string(bytes.TrimSpace(out))
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	bin := filepath.Join(cache, "ferrytest", "nats-server-"+version)
	buildMu.Lock()
	defer buildMu.Unlock()
	if _, err := os.Stat(bin); err == nil && version != "unknown" {
		return bin
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatalf("ferrytest: %v", err)
	}
	tmp := fmt.Sprintf("%s.%d", bin, os.Getpid())
	cmd := exec.Command("go", "build", "-o", tmp, natsServerModule)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ferrytest: build nats-server %s: %v\n%s", version, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatalf("ferrytest: %v", err)
	}
	return bin
}

var buildMu sync.Mutex
