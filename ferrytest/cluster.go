package ferrytest

import (
	"os"
	"testing"

	"github.com/ferrygo/ferry/internal/natscluster"
)

// Cluster is a NATS cluster with JetStream on loopback, its nodes separate
// nats-server processes that a test can kill and restart in place (same
// ports, same stores): the harness of the cluster, fault and scale-out
// tests. Point services at it with [Cluster.URL] as Config.NATSURL (with
// Config.StreamReplicas 3).
type Cluster struct {
	t       testing.TB
	cluster *natscluster.Cluster
	nodes   []*ClusterNode
}

// ClusterNode is one node of a [Cluster].
type ClusterNode struct {
	// Name is the node's server name; Addr its client address.
	Name, Addr string
	// Dir is the node's store.
	Dir string

	node *natscluster.Node
	// cmd is the node's process as last started through the Cluster (nil
	// once killed), for this package's tests to fault it from outside.
	cmd struct{ Process *os.Process }
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
	dir := t.TempDir() // before the Cleanup below, so removed after the nodes are gone
	nc, err := natscluster.New(t.Context(), natscluster.Options{Nodes: n, Dir: dir, Bin: natsServerBinary(t), Name: "ferrytest"})
	if err != nil {
		t.Fatalf("ferrytest: StartCluster: %v", err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	c := &Cluster{t: t, cluster: nc}
	for _, node := range nc.Nodes() {
		c.nodes = append(c.nodes, &ClusterNode{Name: node.Name, Addr: node.Addr, Dir: node.Dir, node: node})
	}
	err = nc.Start(t.Context())
	c.sync()
	if err != nil {
		t.Fatalf("ferrytest: StartCluster: %v", err)
	}
	return c
}

// Nodes returns the cluster's nodes.
func (c *Cluster) Nodes() []*ClusterNode { return c.nodes }

// URL returns the client URLs of every node, comma-separated: a value for
// Config.NATSURL (FERRY_NATS_URL).
func (c *Cluster) URL() string { return c.cluster.URL() }

// Kill ends node i with SIGKILL: no goodbye to its peers or clients.
func (c *Cluster) Kill(i int) {
	c.cluster.Kill(i)
	c.sync()
}

// Restart starts node i again, on its ports and store, after Kill or
// after it exited on its own, and waits until JetStream answers on every
// node.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	err := c.cluster.Restart(c.t.Context(), i)
	c.sync()
	if err != nil {
		c.t.Fatalf("ferrytest: %v", err)
	}
}

// WaitReady waits until every running node answers JetStream's account
// information (its meta leader is known), failing the test after 60s or
// when a node that was not killed has exited.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	if err := c.cluster.WaitReady(c.t.Context()); err != nil {
		c.t.Fatalf("ferrytest: %v", err)
	}
}

// sync records each node's current process.
func (c *Cluster) sync() {
	for _, node := range c.nodes {
		node.cmd.Process = node.node.Process()
	}
}

// natsServerBinary builds nats-server at the version this module requires,
// once per machine and version.
func natsServerBinary(t testing.TB) string {
	t.Helper()
	bin, err := natscluster.Binary(t.Context())
	if err != nil {
		t.Fatalf("ferrytest: %v", err)
	}
	return bin
}
