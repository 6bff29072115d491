package natscluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Node is one nats-server process of a [Cluster]. Its methods are safe for
// concurrent use.
type Node struct {
	// Name is the node's server name (n1, n2, …).
	Name string
	// Addr is the node's client address, host:port on loopback.
	Addr string
	// ClusterAddr is the address the node takes routes from its peers on;
	// empty for a cluster of one node.
	ClusterAddr string
	// Dir is the node's store, kept across restarts.
	Dir string

	args []string

	mu   sync.Mutex
	proc *process // nil: never started, or stopped through the cluster
}

// process is one run of a node's server.
type process struct {
	cmd  *exec.Cmd
	out  *output
	done chan struct{} // closed when the process has exited
	err  error         // what Wait returned; read once done is closed
}

// errExitedCleanly stands for a Wait that returned no error: the server
// exited with status 0 although nobody stopped it.
var errExitedCleanly = errors.New("exit status 0")

// URL returns the node's client URL.
func (n *Node) URL() string { return "nats://" + n.Addr }

// Process returns the node's server process, or nil when the node is not
// running (never started, or killed or stopped through the cluster). A
// node whose process exited on its own still returns it. Signal it to
// fault the node behind the cluster's back — [Cluster.WaitReady] then
// reports it — but do not Wait for or Release it: the cluster does.
func (n *Node) Process() *os.Process {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil {
		return nil
	}
	return n.proc.cmd.Process
}

// start starts the node's server; it is an error if it is running. A
// process that exited on its own is replaced.
func (n *Node) start(bin string, logs *lockedWriter) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p := n.proc; p != nil && !exited(p) {
		if !errors.Is(p.cmd.Process.Signal(syscall.Signal(0)), os.ErrProcessDone) {
			return fmt.Errorf("natscluster: start node %s: it is running", n.Name)
		}
		<-p.done // reaped: its output is being flushed
	}
	out := &output{prefix: "[" + n.Name + "] ", logs: logs}
	cmd := exec.Command(bin, n.args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 2 * time.Second
	DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("natscluster: start node %s: %w", n.Name, err)
	}
	p := &process{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		if err == nil {
			err = errExitedCleanly
		}
		p.err = err
		out.flush()
		close(p.done)
	}()
	n.proc = p
	return nil
}

// take returns the node's process and marks the node not running.
func (n *Node) take() *process {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.proc
	n.proc = nil
	return p
}

// kill ends the node's process with SIGKILL and waits until it has exited.
func (n *Node) kill() {
	p := n.take()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop ends the node's process with SIGTERM and waits until it has
// exited, killing it if ctx ends first.
func (n *Node) stop(ctx context.Context) error {
	p := n.take()
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != errExitedCleanly {
			return fmt.Errorf("natscluster: node %s after SIGTERM: %w", n.Name, p.err)
		}
		return nil
	case <-ctx.Done():
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("natscluster: node %s did not exit after SIGTERM, killed: %w", n.Name, ctx.Err())
	}
}

// current returns the node's process, nil when it is not running.
func (n *Node) current() *process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

// exitError reports p, a process that exited although nobody stopped it.
func (n *Node) exitError(p *process) error {
	err := fmt.Errorf("natscluster: node %s exited on its own: %w", n.Name, p.err)
	if tail := p.out.lastLines(); tail != "" {
		err = fmt.Errorf("%w; its last output:\n%s", err, tail)
	}
	return err
}

// waitReady waits until the node answers JetStream's account information,
// or it exits, or ctx ends. A node that is not running is ready.
func (n *Node) waitReady(ctx context.Context) error {
	for {
		p := n.current()
		if p == nil {
			return nil
		}
		select {
		case <-p.done:
			return n.exitError(p)
		default:
		}
		err := n.jetStreamReady(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("natscluster: node %s not ready: %w (last attempt: %v)", n.Name, ctx.Err(), err)
		case <-p.done:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// jetStreamReady reports whether the node answers JetStream requests (its
// meta leader is known).
func (n *Node) jetStreamReady(ctx context.Context) error {
	nc, err := nats.Connect(n.URL(), nats.Timeout(time.Second), nats.NoReconnect())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}
