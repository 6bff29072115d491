package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/ferrygo/ferry/internal/natscluster"
)

// system is the shop's service processes.
type system struct {
	bin, dir  string
	env, args []string
	mu        sync.Mutex
	procs     map[string][]*process
}

// process is one replica of a service.
type process struct {
	service string
	replica int
	addr    string
	ready   time.Duration // from start to /readyz 200
	cmd     *exec.Cmd
	exited  chan struct{}
}

// start starts a new replica of service and waits until it is ready.
func (s *system) start(ctx context.Context, service string) (*process, error) {
	s.mu.Lock()
	if s.procs == nil {
		s.procs = map[string][]*process{}
	}
	p := &process{service: service, replica: len(s.procs[service]) + 1}
	s.procs[service] = append(s.procs[service], p)
	s.mu.Unlock()
	addr, err := natscluster.FreeAddr()
	if err != nil {
		return nil, err
	}
	p.addr = addr
	return p, s.launch(ctx, p)
}

// restart starts replica i of service again, on its address.
func (s *system) restart(ctx context.Context, service string, i int) error {
	s.mu.Lock()
	p := s.procs[service][i]
	s.mu.Unlock()
	return s.launch(ctx, p)
}

func (s *system) launch(ctx context.Context, p *process) error {
	logf, err := os.OpenFile(filepath.Join(s.dir, fmt.Sprintf("%s-%d.log", p.service, p.replica)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, append([]string{"-service", p.service, "-addr", p.addr}, s.args...)...)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	natscluster.DieWithParent(cmd)
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.service, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	s.mu.Lock()
	p.cmd, p.exited = cmd, exited
	s.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		if resp, err := http.Get("http://" + p.addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.ready = time.Since(begin)
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("%s replica %d exited while starting (log: %s)", p.service, p.replica, logf.Name())
		case <-wctx.Done():
			return fmt.Errorf("%s replica %d not ready after a minute (log: %s)", p.service, p.replica, logf.Name())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// kill ends replica i of service with SIGKILL and waits for it.
func (s *system) kill(service string, i int) {
	s.mu.Lock()
	p := s.procs[service][i]
	s.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// dump ends every process with SIGQUIT: the Go runtime writes each
// one's goroutines into its log.
func (s *system) dump() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ps := range s.procs {
		for _, p := range ps {
			if p.cmd != nil {
				_ = p.cmd.Process.Signal(syscall.SIGQUIT)
				<-p.exited
			}
		}
	}
}

// stopAll stops every process: SIGTERM, then SIGKILL after 10s.
func (s *system) stopAll() {
	s.mu.Lock()
	var all []*process
	for _, ps := range s.procs {
		all = append(all, ps...)
	}
	s.mu.Unlock()
	for _, p := range all {
		if p.cmd != nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range all {
		if p.cmd == nil {
			continue
		}
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
}
