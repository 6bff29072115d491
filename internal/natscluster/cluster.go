// Package natscluster runs a NATS cluster with JetStream on loopback, its
// nodes separate nats-server processes that a program or test can kill
// and restart in place (same ports, same stores): the harness of the
// cluster, fault and scale-out tests (through ferrytest.StartCluster) and
// of the programs that show a system surviving the loss of a node.
//
// [Binary] builds nats-server at the version this module requires, once
// per machine; [Start] starts the nodes and waits until JetStream answers
// on each. The nodes die with the process that started them on Linux
// ([DieWithParent]), so a crash leaves no server behind.
package natscluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultReadyTimeout bounds the wait for the nodes to become ready when
// the caller's context has no deadline.
const DefaultReadyTimeout = 60 * time.Second

// Options configure a [Cluster]; the zero value is a 3-node cluster in a
// temporary directory, its server built by [Binary].
type Options struct {
	// Nodes is the number of nodes: 3 when zero (a cluster that survives
	// the loss of one node).
	Nodes int
	// Dir holds the nodes' stores, each node its own subdirectory named
	// after it. When empty, a temporary directory is made and [Cluster.Close]
	// removes it; a given Dir is left in place.
	Dir string
	// Bin is the nats-server executable; when empty, [Binary] builds it.
	Bin string
	// Name is the cluster's name: "ferry" when empty.
	Name string
	// Logs, when set, receives the nodes' output, each line prefixed with
	// the node's name in brackets. Writes to it are serialised.
	Logs io.Writer
}

// Cluster is a NATS cluster of nats-server processes on loopback ports,
// with JetStream, started by [Start] or [New]. Point clients at it with
// [Cluster.URL] (with streams of up to Nodes replicas). Its methods are
// safe for concurrent use; those that take a node take its index in
// [Cluster.Nodes] and panic when it is out of range.
type Cluster struct {
	bin    string
	logs   *lockedWriter
	nodes  []*Node
	tmpDir string // made by New, removed by Close

	mu     sync.Mutex // held while a node starts, so Close finds it
	closed bool

	closeOnce sync.Once
	closeErr  error
}

// ErrClosed is returned when a node is started after [Cluster.Close].
var ErrClosed = errors.New("natscluster: cluster closed")

// Start starts a cluster and waits until every node is ready (see
// [Cluster.WaitReady]); on an error it leaves nothing running. Close the
// cluster when done.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	c, err := New(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// New prepares a cluster without starting it: it finds the server (see
// [Options.Bin]), picks free loopback ports for the nodes and makes their
// stores. Start it with [Cluster.Start]; a caller that must be sure to
// clean up (a test's Cleanup) can register [Cluster.Close] before any node
// runs.
func New(ctx context.Context, opts Options) (*Cluster, error) {
	n := opts.Nodes
	if n == 0 {
		n = 3
	}
	if n < 0 {
		return nil, fmt.Errorf("natscluster: %d nodes: at least one", n)
	}
	name := opts.Name
	if name == "" {
		name = "ferry"
	}
	c := &Cluster{bin: opts.Bin}
	if opts.Logs != nil {
		c.logs = &lockedWriter{w: opts.Logs}
	}
	if c.bin == "" {
		bin, err := Binary(ctx)
		if err != nil {
			return nil, err
		}
		c.bin = bin
	}
	dir := opts.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "natscluster-*")
		if err != nil {
			return nil, fmt.Errorf("natscluster: %w", err)
		}
		dir, c.tmpDir = tmp, tmp
	}
	if err := c.addNodes(n, name, dir); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// addNodes makes the n nodes' stores and picks their ports.
func (c *Cluster) addNodes(n int, name, dir string) error {
	clusterAddrs := make([]string, n)
	routes := make([]string, n)
	if n > 1 {
		for i := range clusterAddrs {
			a, err := FreeAddr()
			if err != nil {
				return err
			}
			clusterAddrs[i], routes[i] = a, "nats-route://"+a
		}
	}
	for i := range n {
		addr, err := FreeAddr()
		if err != nil {
			return err
		}
		node := &Node{Name: "n" + strconv.Itoa(i+1), Addr: addr, ClusterAddr: clusterAddrs[i]}
		node.Dir = filepath.Join(dir, node.Name)
		if err := os.MkdirAll(node.Dir, 0o755); err != nil {
			return fmt.Errorf("natscluster: node %s: %w", node.Name, err)
		}
		host, port, _ := net.SplitHostPort(addr)
		node.args = []string{"-a", host, "-p", port, "-n", node.Name, "-js", "-sd", node.Dir}
		if n > 1 {
			node.args = append(node.args, "--cluster_name", name, "--cluster", "nats://"+node.ClusterAddr, "--routes", strings.Join(routes, ","))
		}
		c.nodes = append(c.nodes, node)
	}
	return nil
}

// Nodes returns the cluster's nodes, in the order of their names.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// URL returns the client URLs of every node, comma-separated: a value for
// nats.Connect, or for Config.NATSURL (FERRY_NATS_URL) of a Ferry service.
func (c *Cluster) URL() string {
	urls := make([]string, len(c.nodes))
	for i, node := range c.nodes {
		urls[i] = node.URL()
	}
	return strings.Join(urls, ",")
}

// Start starts every node that is not running (one that exited on its
// own is started again) and waits until the cluster is ready (see
// [Cluster.WaitReady]).
func (c *Cluster) Start(ctx context.Context) error {
	for _, node := range c.nodes {
		if p := node.current(); p != nil && !exited(p) {
			continue
		}
		if err := c.startNode(node); err != nil {
			return err
		}
	}
	return c.WaitReady(ctx)
}

// Kill ends node i with SIGKILL — no goodbye to its peers or clients —
// and waits until it has exited. Killing a node that is not running does
// nothing.
func (c *Cluster) Kill(i int) { c.nodes[i].kill() }

// Stop ends node i with SIGTERM, as an operator would, and waits until it
// has exited; if ctx ends first, the node is killed and the error says
// so. A server that does not exit with status 0 is an error too.
func (c *Cluster) Stop(ctx context.Context, i int) error { return c.nodes[i].stop(ctx) }

// Restart starts node i again, on its ports and store, after Kill, Stop
// or its own exit, and waits until the cluster is ready (see
// [Cluster.WaitReady]). It is an error if the node is running.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	if err := c.startNode(c.nodes[i]); err != nil {
		return err
	}
	return c.WaitReady(ctx)
}

// WaitReady waits until every running node answers JetStream's account
// information (its meta leader is known). A node that exited although it
// was not killed or stopped through the cluster is an error, with the
// server's last output; nodes killed or stopped are skipped. Without a
// deadline on ctx, it waits at most [DefaultReadyTimeout].
func (c *Cluster) WaitReady(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultReadyTimeout)
		defer cancel()
	}
	for _, node := range c.nodes {
		if err := node.waitReady(ctx); err != nil {
			return err
		}
	}
	for _, node := range c.nodes { // one may have died while others were awaited
		if p := node.current(); p != nil && exited(p) {
			return node.exitError(p)
		}
	}
	return nil
}

// Close kills every node, waits until each has exited, and removes the
// stores when New made their directory. It is safe to call more than once
// (a later call waits for the first and returns its result); nodes cannot
// be started after it.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		for _, node := range c.nodes {
			node.kill()
		}
		if c.tmpDir != "" {
			if err := os.RemoveAll(c.tmpDir); err != nil {
				c.closeErr = fmt.Errorf("natscluster: %w", err)
			}
		}
	})
	return c.closeErr
}

// startNode starts node unless the cluster is closed.
func (c *Cluster) startNode(node *Node) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("natscluster: start node %s: %w", node.Name, ErrClosed)
	}
	return node.start(c.bin, c.logs)
}

// exited reports whether p has exited.
func exited(p *process) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
