package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/ferrygo/ferry/internal/natscluster"
)

// readyWait bounds how long a started process may take to answer
// /readyz: the broker's recovers its store first.
const readyWait = 60 * time.Second

// proc is one service of the system run as a process of its own, started
// again in place (same address, same data directory) after a kill.
type proc struct {
	service string
	bin     string
	args    []string
	addr    string // its HTTP address, for /readyz
	log     *os.File

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// newProc prepares the service's process; start runs it. Its output is
// appended to logDir/<service>.log.
func newProc(bin, service, dataDir, logDir string, extra ...string) (*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	log, err := os.OpenFile(filepath.Join(logDir, service+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve", "-service", service, "-addr", addr, "-data-dir", dataDir}, extra...)
	return &proc{service: service, bin: bin, args: args, addr: addr, log: log}, nil
}

// start runs the process and waits until it answers /readyz.
func (p *proc) start(ctx context.Context) error {
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	natscluster.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.service, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	fmt.Fprintf(p.log, "--- faults: started pid %d at %s\n", cmd.Process.Pid, time.Now().Format(time.RFC3339Nano))
	return p.waitReady(ctx, done)
}

// waitReady polls /readyz until it answers 200, the process exits, or
// readyWait passes.
func (p *proc) waitReady(ctx context.Context, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, readyWait)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/readyz", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("%s exited before it was ready (see %s)", p.service, p.log.Name())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %v (see %s)", p.service, readyWait, p.log.Name())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// kill ends the process with SIGKILL and waits for it to exit.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	fmt.Fprintf(p.log, "--- faults: SIGKILLed pid %d at %s\n", cmd.Process.Pid, time.Now().Format(time.RFC3339Nano))
}

// stop ends the process with SIGTERM, or SIGKILL after grace.
func (p *proc) stop(grace time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		p.kill()
		return fmt.Errorf("%s did not stop within %v of SIGTERM", p.service, grace)
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("%s exited with %d after SIGTERM", p.service, code)
	}
	return nil
}

// close kills the process if it still runs, and closes its log.
func (p *proc) close() {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		default:
			p.kill()
		}
	}
	_ = p.log.Close()
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
