package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// connect runs an in-process nats-server without a listener and connects
// to it.
func connect(t *testing.T) *nats.Conn {
	t.Helper()
	srv, err := server.NewServer(&server.Options{DontListen: true, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(5 * time.Second) {
		srv.Shutdown()
		t.Fatal("nats-server not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() {
		nc.Close()
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return nc
}

// gate is a handler that answers "ok" once released, and a refuser that
// answers "refused".
type gate struct {
	release chan struct{}
	inside  atomic.Int32
	served  atomic.Int32
}

func (g *gate) handle(_ context.Context, _ string, m *nats.Msg) {
	g.inside.Add(1)
	<-g.release
	g.served.Add(1)
	_ = m.Respond([]byte("ok"))
}

func refuse(_ context.Context, _ string, m *nats.Msg) { _ = m.Respond([]byte("refused")) }

// send sends one request in the background; its answer (or error) comes
// on the returned channel.
func send(nc *nats.Conn, data string) <-chan string {
	out := make(chan string, 1)
	go func() {
		reply, err := nc.Request("svc.op", []byte(data), 10*time.Second)
		if err != nil {
			out <- "error: " + err.Error()
			return
		}
		out <- string(reply.Data)
	}()
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// queued returns the requests waiting for a worker.
func (s *Server) queuedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// TestSaturatedServer: one worker, busy; what happens to the next
// requests depends on the byte budget of the queue.
func TestSaturatedServer(t *testing.T) {
	msgSize := (&nats.Msg{Subject: "svc.op", Reply: "_INBOX.0123456789012345678901.01234567", Data: []byte("x")}).Size()
	tests := []struct {
		name    string
		budget  int
		next    int      // requests sent while the worker is busy
		queued  int      // of them queued
		answers []string // what the next requests get, in order
	}{
		{name: "no queue: refused at once", budget: 0, next: 2, queued: 0, answers: []string{"refused", "refused"}},
		{name: "a queue for one: the second is refused", budget: msgSize + 8, next: 2, queued: 1, answers: []string{"ok", "refused"}},
		{name: "room for all: served in turn", budget: 1 << 20, next: 3, queued: 3, answers: []string{"ok", "ok", "ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := connect(t)
			g := &gate{release: make(chan struct{})}
			s, err := Serve(nc, []Route{{Name: "op", Subject: "svc.op"}}, g.handle, Options{MaxWorkers: 1, PendingBytes: tt.budget, Refuse: refuse})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			first := send(nc, "x")
			eventually(t, "the first request is being served", func() bool { return g.inside.Load() == 1 })
			var next []<-chan string
			for i := range tt.next {
				next = append(next, send(nc, "x"))
				if i < tt.queued {
					eventually(t, fmt.Sprintf("request %d is queued", i+2), func() bool { return s.queuedCount() == i+1 })
				} else if got := <-next[i]; got != "refused" {
					t.Fatalf("request %d while the worker is busy and the queue full: %q, want refused", i+2, got)
				} else {
					next[i] = closedWith(got)
				}
			}
			close(g.release)
			if got := <-first; got != "ok" {
				t.Errorf("first request: %q", got)
			}
			for i, c := range next {
				if got := <-c; got != tt.answers[i] {
					t.Errorf("request %d: %q, want %q", i+2, got, tt.answers[i])
				}
			}
			if got := <-send(nc, "x"); got != "ok" {
				t.Errorf("a request after the release: %q, want ok", got)
			}
		})
	}
}

func closedWith(s string) <-chan string {
	c := make(chan string, 1)
	c <- s
	return c
}

// TestDrainRefusesWhatIsStillQueued: at the drain deadline the requests
// still waiting for a worker are refused rather than left to time out.
func TestDrainRefusesWhatIsStillQueued(t *testing.T) {
	nc := connect(t)
	g := &gate{release: make(chan struct{})}
	s, err := Serve(nc, []Route{{Name: "op", Subject: "svc.op"}}, g.handle, Options{MaxWorkers: 1, PendingBytes: 1 << 20, Refuse: refuse})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	first := send(nc, "x")
	eventually(t, "the first request is being served", func() bool { return g.inside.Load() == 1 })
	second := send(nc, "x")
	eventually(t, "the second request is queued", func() bool { return s.queuedCount() == 1 })

	s.StopIntake()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the grace period is over
	if err := s.Drain(ctx); err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("Drain = %v, want the one request still running reported", err)
	}
	if got := <-second; got != "refused" {
		t.Errorf("the queued request: %q, want refused", got)
	}
	close(g.release)
	if got := <-first; got != "ok" {
		t.Errorf("the running request: %q", got)
	}
}

// TestEveryRequestAnsweredOnce: a burst larger than the pool, with room
// in the queue, is answered in full, each request once, and the workers
// end when idle.
func TestEveryRequestAnsweredOnce(t *testing.T) {
	nc := connect(t)
	var handled atomic.Int32
	s, err := Serve(nc, []Route{{Name: "op", Subject: "svc.op"}}, func(_ context.Context, _ string, m *nats.Msg) {
		handled.Add(1)
		_ = m.Respond(m.Data)
	}, Options{MaxWorkers: 4, PendingBytes: 64 << 20, Refuse: refuse})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	const n = 300
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			want := fmt.Sprint(i)
			if got := <-send(nc, want); got != want {
				errs <- fmt.Sprintf("request %d answered %q", i, got)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if handled.Load() != n {
		t.Errorf("handled %d requests, want %d", handled.Load(), n)
	}
	s.mu.Lock()
	workers, queued := s.workers, len(s.queue)
	s.mu.Unlock()
	if workers > 4 || queued != 0 {
		t.Errorf("workers %d (limit 4), queued %d after the burst", workers, queued)
	}
}
