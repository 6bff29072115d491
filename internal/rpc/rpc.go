// Package rpc serves NATS request/reply subjects with a bounded pool of
// reused workers: one queue subscription per subject (every replica joins
// the same queue group, so each request reaches one), each request run by
// an idle worker, or a new one while fewer than the limit run, or else
// queued, oldest first, within a byte budget shared by all the server's
// subjects; a request that does not fit the budget is refused at once
// (Options.Refuse answers it) instead of waiting. Workers end after a
// while idle. Stopping is in the steps of a lifecycle component: stop
// intake (the subscriptions drain), drain the requests in flight within a
// deadline (their context is cancelled then, and the requests still
// queued are refused), close.
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
	// PendingBytes bounds the requests waiting for a worker, in bytes (as
	// received: subject, reply, headers and data), across all the
	// server's subjects. 0 means no queue: a request that finds every
	// worker busy is refused at once.
	PendingBytes int
	// Refuse answers a request that neither found a worker nor fit in the
	// queue, or was still queued when the drain deadline passed; nil drops
	// it (its caller times out). It runs on the subscription's delivery
	// goroutine and must not block.
	Refuse Handler
}

// Server serves routes on a connection.
type Server struct {
	handle   Handler
	refuse   Handler
	subs     []*nats.Subscription
	inflight inflight
	base     context.Context // its end tells idle workers to end too
	cancel   context.CancelFunc

	// The pool, under mu. A waiting worker is counted in idle until a
	// request is queued for it, then by a token in wake (sent under mu),
	// so a worker that stops waiting knows under mu whether a request was
	// meant for it.
	mu      sync.Mutex
	max     int
	budget  int
	workers int           // worker goroutines alive
	idle    int           // waiting workers no request was queued for
	wake    chan struct{} // one token per request queued for a waiting worker
	queue   []request     // waiting for a worker, oldest first
	queued  int           // their bytes
}

type request struct {
	name string
	msg  *nats.Msg
	size int
}

// workerIdle is how long a worker waits for another request before it
// ends. Reusing workers spares each request a new goroutine and its stack
// growth.
const workerIdle = 5 * time.Second

// Serve subscribes to every route and serves requests with h until the
// server is stopped. A failed subscription unsubscribes the others.
func Serve(nc *nats.Conn, routes []Route, h Handler, o Options) (*Server, error) {
	workers := max(1, o.MaxWorkers)
	s := &Server{handle: h, refuse: o.Refuse, max: workers, budget: max(0, o.PendingBytes), wake: make(chan struct{}, workers)}
	s.base, s.cancel = context.WithCancel(context.Background())
	for _, r := range routes {
		sub, err := nc.QueueSubscribe(r.Subject, o.Queue, s.dispatch(r.Name))
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("subscribe %s: %w", r.Subject, err)
		}
		// What the subscription has received and not yet dispatched: a
		// burst being handed out, since dispatching never blocks. Room for
		// the queue's budget and a few messages of the largest size.
		_ = sub.SetPendingLimits(-1, max(o.PendingBytes, 4*int(nc.MaxPayload()), 64<<20))
		s.subs = append(s.subs, sub)
	}
	return s, nil
}

// dispatch returns the subscription handler of one route. It never
// blocks: a request goes to a waiting worker, to a new one, to the queue,
// or is refused.
func (s *Server) dispatch(name string) nats.MsgHandler {
	return func(m *nats.Msg) {
		if m.Reply == "" {
			return // a publish, not a request: nobody to answer
		}
		r := request{name: name, msg: m, size: m.Size()}
		s.mu.Lock()
		switch {
		case s.idle > 0:
			s.idle--
			s.push(r)
			s.wake <- struct{}{} // room: one token per waiting worker at most
			s.mu.Unlock()
		case s.workers < s.max:
			s.workers++
			s.inflight.add()
			s.mu.Unlock()
			go s.worker(r)
		case s.queued+r.size <= s.budget:
			s.push(r)
			s.mu.Unlock()
		default:
			s.mu.Unlock()
			if s.refuse != nil {
				s.refuse(s.base, name, m)
			}
		}
	}
}

// push queues r; the caller holds mu.
func (s *Server) push(r request) {
	s.inflight.add()
	s.queue = append(s.queue, r)
	s.queued += r.size
}

// pop takes the oldest queued request; the caller holds mu.
func (s *Server) pop() (request, bool) {
	if len(s.queue) == 0 {
		return request{}, false
	}
	r := s.queue[0]
	s.queue[0] = request{}
	s.queue = s.queue[1:]
	s.queued -= r.size
	return r, true
}

// worker serves r, then queued requests, until it has been idle for
// workerIdle or the server is stopped.
func (s *Server) worker(r request) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		s.handle(s.base, r.name, r.msg)
		s.inflight.done()
		var ok bool
		if r, ok = s.next(idle); !ok {
			return
		}
	}
}

// next returns the request a worker serves next: a queued one, or one
// queued while it waits; false when it ends instead (idle too long, or the
// server stopped: what is still queued then is refused by the drain).
func (s *Server) next(idle *time.Timer) (request, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.base.Err() != nil {
			s.workers--
			return request{}, false
		}
		if r, ok := s.pop(); ok {
			return r, true
		}
		s.idle++
		s.mu.Unlock()
		idle.Reset(workerIdle)
		woken := false
		select {
		case <-s.wake:
			woken = true
		case <-idle.C:
		case <-s.base.Done():
		}
		s.mu.Lock()
		if !woken {
			select {
			case <-s.wake: // a request was queued for it meanwhile
			default:
				s.idle--
				if len(s.queue) == 0 || s.base.Err() != nil {
					s.workers--
					return request{}, false
				}
			}
		}
	}
}

// flush refuses the requests still queued.
func (s *Server) flush() {
	s.mu.Lock()
	q := s.queue
	s.queue, s.queued = nil, 0
	s.mu.Unlock()
	for _, r := range q {
		if s.refuse != nil {
			s.refuse(s.base, r.name, r.msg)
		}
		s.inflight.done()
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
// in flight (queued ones included) to be answered until ctx ends; then it
// cancels their context, refuses the requests still queued, and returns,
// saying how many were left running.
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
		s.flush()
		n := s.inflight.count()
		if n == 0 {
			return nil
		}
		return fmt.Errorf("grace period over; %d request(s) in flight were cancelled: %w", n, ctx.Err())
	}
}

// Close unsubscribes, cancels what still runs and refuses what is still
// queued.
func (s *Server) Close() error {
	for _, sub := range s.subs {
		_ = sub.Unsubscribe()
	}
	s.cancel()
	s.flush()
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
