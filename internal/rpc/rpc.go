// Package rpc serves NATS request/reply subjects with a bounded pool of
// reused workers: one queue subscription per subject (every replica joins
// the same queue group, so each request reaches one), each request run by
// an idle worker, or a new one while fewer than the limit run, or else
// waiting for a worker to be free. Workers end after a while idle. Stopping
// is in the steps of a lifecycle component: stop intake (the subscriptions
// drain), drain the requests in flight within a deadline (their context is
// cancelled then), close.
package rpc

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Handler answers one request; ctx is cancelled when the drain deadline
// passes.
type Handler func(ctx context.Context, name string, m *nats.Msg)

// Route is one subject served under a name.
type Route struct {
	Name, Subject string
}

// Options configure a Server.
type Options struct {
	// Queue is the queue group every replica joins.
	Queue string
	// MaxWorkers bounds the requests run at once.
	MaxWorkers int
	// PendingBytes bounds what each subscription buffers for busy workers.
	PendingBytes int
}

// Server serves routes on a connection.
type Server struct {
	handle   Handler
	subs     []*nats.Subscription
	slots    chan struct{} // one per running worker
	work     chan request  // requests for idle workers
	inflight inflight
	base     context.Context // its end tells idle workers to end too
	cancel   context.CancelFunc
}

type request struct {
	name string
	msg  *nats.Msg
}

// workerIdle is how long a worker waits for another request before it
// ends. Reusing workers spares each request a new goroutine and its stack
// growth.
const workerIdle = 5 * time.Second

// Serve subscribes to every route and serves requests with h until the
// server is stopped. A failed subscription unsubscribes the others.
func Serve(nc *nats.Conn, routes []Route, h Handler, o Options) (*Server, error) {
	s := &Server{handle: h, slots: make(chan struct{}, max(1, o.MaxWorkers)), work: make(chan request)}
	s.base, s.cancel = context.WithCancel(context.Background())
	for _, r := range routes {
		sub, err := nc.QueueSubscribe(r.Subject, o.Queue, s.dispatch(r.Name))
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("subscribe %s: %w", r.Subject, err)
		}
		// The server queues what the workers have not taken yet: no limit on
		// the count, PendingBytes of bytes.
		_ = sub.SetPendingLimits(-1, o.PendingBytes)
		s.subs = append(s.subs, sub)
	}
	return s, nil
}

// dispatch returns the subscription handler of one route.
func (s *Server) dispatch(name string) nats.MsgHandler {
	return func(m *nats.Msg) {
		if m.Reply == "" {
			return // a publish, not a request: nobody to answer
		}
		r := request{name: name, msg: m}
		s.inflight.add()
		select {
		case s.work <- r:
			return
		default:
		}
		select {
		case s.work <- r:
		case s.slots <- struct{}{}:
			go s.worker(r)
		}
	}
}

// worker serves r, then further requests, until it has been idle for
// workerIdle.
func (s *Server) worker(r request) {
	defer func() { <-s.slots }()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		s.handle(s.base, r.name, r.msg)
		s.inflight.done()
		idle.Reset(workerIdle)
		select {
		case r = <-s.work:
		case <-idle.C:
			return
		case <-s.base.Done():
			return
		}
	}
}

// StopIntake drains the subscriptions: no new requests are taken; those
// already received are still dispatched.
func (s *Server) StopIntake() {
	for _, sub := range s.subs {
		_ = sub.Drain()
	}
}

// Drain waits for the buffered requests to be dispatched and the requests
// in flight to be answered until ctx ends; then it cancels their context
// and returns, saying how many were left.
func (s *Server) Drain(ctx context.Context) error {
	for _, sub := range s.subs {
		closed := sub.StatusChanged(nats.SubscriptionClosed)
		if sub.IsValid() {
			select {
			case <-closed:
			case <-ctx.Done():
			}
		}
	}
	select {
	case <-s.inflight.idle():
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		n := s.inflight.count()
		if n == 0 {
			return nil
		}
		return fmt.Errorf("grace period over; %d request(s) in flight were cancelled: %w", n, ctx.Err())
	}
}

// Close unsubscribes and cancels what still runs.
func (s *Server) Close() error {
	for _, sub := range s.subs {
		_ = sub.Unsubscribe()
	}
	s.cancel()
	return nil
}

// inflight counts requests in flight and tells when there are none: a
// counter with a channel closed at zero, which, unlike a WaitGroup, may
// gain requests while someone waits.
type inflight struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed when n reaches 0; nil when nobody waits
}

func (f *inflight) add() {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
}

func (f *inflight) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n == 0 && f.zero != nil {
		close(f.zero)
		f.zero = nil
	}
}

func (f *inflight) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// idle returns a channel closed once no request is in flight.
func (f *inflight) idle() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	if f.zero == nil {
		f.zero = make(chan struct{})
	}
	return f.zero
}
