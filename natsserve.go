package ferry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ferrygo/ferry/internal/discovery"
	"github.com/ferrygo/ferry/internal/envelope"
	"github.com/ferrygo/ferry/internal/naming"
	"github.com/ferrygo/ferry/internal/natsproto"
)

// DefaultMaxConcurrentCalls bounds the NATS calls one service runs at
// once; further calls wait in the subscription's buffer.
const DefaultMaxConcurrentCalls = 4096

// natsEndpoints is a service's presence on the broker, a component of its
// host: the $SRV discovery responders (every service answers them, with
// its HTTP address and the endpoints it serves over NATS, possibly none),
// and, for a service that opted in with [WithNATS], its endpoints over
// NATS request/reply — one queue subscription per endpoint (every replica
// joins the same group, so each call reaches one), each message run by one
// of up to DefaultMaxConcurrentCalls reused workers, through the very
// operation HTTP runs.
type natsEndpoints struct {
	svc  *Service
	host *Host

	nc        *nats.Conn
	subs      []*nats.Subscription
	responder *discovery.Responder
	slots     chan struct{} // one per running worker
	work      chan call     // calls for idle workers
	inflight  inflight
	base      context.Context // cancelled when the grace period is over
	cancel    context.CancelFunc
}

// Name implements lifecycle.Component.
func (ne *natsEndpoints) Name() string { return "NATS endpoints of service " + ne.svc.name }

// Start implements lifecycle.Component: discovery first (a call may
// arrive as soon as a subscription exists, and its statistics go to the
// responder), then the endpoints, then a flush, so a call made once the
// host has started reaches the service.
func (ne *natsEndpoints) Start(context.Context) error {
	s := ne.svc
	ne.nc = ne.host.broker.Load().Conn()
	ne.base, ne.cancel = context.WithCancel(context.Background())
	ne.slots, ne.work = make(chan struct{}, DefaultMaxConcurrentCalls), make(chan call)
	info := discovery.Info{Name: s.name, Version: s.version, Description: s.description}
	if a := s.Addr(); a != nil {
		info.Metadata = map[string]string{"http": a.String()}
	}
	var served []*boundEndpoint
	if s.needsNATS {
		for _, ep := range s.boundEndpoints() {
			if ep.httpOnly {
				continue
			}
			served = append(served, ep)
			info.Endpoints = append(info.Endpoints, discovery.Endpoint{Name: ep.name, Subject: naming.EndpointSubject(s.name, ep.name),
				QueueGroup: naming.QueueGroup, Metadata: map[string]string{"method": ep.method, "path": ep.path}})
		}
	}
	r, err := discovery.Start(ne.nc, info)
	if err != nil {
		return fmt.Errorf("ferry: service %s: discovery: %w", s.name, err)
	}
	ne.responder = r
	for _, ep := range served {
		subject := naming.EndpointSubject(s.name, ep.name)
		sub, err := ne.nc.QueueSubscribe(subject, naming.QueueGroup, ne.dispatch(ep.name))
		if err != nil {
			return fmt.Errorf("ferry: service %s: subscribe %s: %w", s.name, subject, err)
		}
		// The server queues what the handlers have not taken yet: no limit
		// on the count, 256 MiB of bytes.
		_ = sub.SetPendingLimits(-1, 256<<20)
		ne.subs = append(ne.subs, sub)
	}
	names := make([]string, len(served))
	for i, ep := range served {
		names[i] = ep.name
	}
	switch {
	case len(served) > 0:
		ne.host.logger.Info("ferry: serving over NATS", slog.String("service", s.name), slog.Any("endpoints", names))
	case len(s.boundEndpoints()) > 0 && !s.needsNATS:
		ne.host.logger.Info("ferry: not serving over NATS (add ferry.WithNATS() to the service to expose its endpoints)", slog.String("service", s.name))
	}
	if err := ne.nc.FlushTimeout(10 * time.Second); err != nil {
		return fmt.Errorf("ferry: broker: %w", err)
	}
	return nil
}

// dispatch returns the subscription handler of one endpoint: it hands
// the call to an idle worker, or starts one while fewer than the limit run,
// or waits for a worker to be free.
func (ne *natsEndpoints) dispatch(name string) nats.MsgHandler {
	return func(m *nats.Msg) {
		if m.Reply == "" {
			return // a publish, not a request: nobody to answer
		}
		c := call{name: name, msg: m}
		ne.inflight.add()
		select {
		case ne.work <- c:
			return
		default:
		}
		select {
		case ne.work <- c:
		case ne.slots <- struct{}{}:
			go ne.worker(c)
		}
	}
}

// call is one request waiting for a worker.
type call struct {
	name string
	msg  *nats.Msg
}

// workerIdle is how long a worker waits for another call before it ends.
// Reusing workers spares each call a new goroutine and its stack growth.
const workerIdle = 5 * time.Second

// worker serves c, then further calls, until it has been idle for
// workerIdle.
func (ne *natsEndpoints) worker(c call) {
	defer func() { <-ne.slots }()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		ne.serve(c.name, c.msg)
		ne.inflight.done()
		idle.Reset(workerIdle)
		select {
		case c = <-ne.work:
		case <-idle.C:
			return
		}
	}
}

// serve runs one call and answers it. The body limit is the operation's,
// as over HTTP. A reply the broker cannot carry (larger than its max
// payload) is answered with a 502 response_too_large problem instead, so
// the caller does not wait out its deadline.
func (ne *natsEndpoints) serve(name string, m *nats.Msg) {
	start := time.Now()
	var resp *envelope.Response
	req, err := natsproto.DecodeRequest(m)
	switch {
	case err != nil:
		resp = ne.svc.problemResponse(&Error{Status: http.StatusBadRequest, Detail: err.Error()}, m.Header.Get(HeaderRequestID))
	default:
		resp = ne.svc.invoke(ne.base, TransportNATS, name, req)
	}
	err = m.RespondMsg(natsproto.EncodeResponse(resp))
	if errors.Is(err, nats.ErrMaxPayload) {
		ne.svc.logger.Error("ferry: NATS reply larger than the broker's max payload; answered 502", slog.String("service", ne.svc.name),
			slog.String("endpoint", name), slog.Int("body_bytes", resp.Body.Len()), slog.Int64("max_payload", ne.nc.MaxPayload()))
		resp = ne.svc.problemResponse(&Error{Status: http.StatusBadGateway, Code: "response_too_large",
			Detail: fmt.Sprintf("the response of %s.%s exceeds the broker's max payload (%d bytes); call it over HTTP", ne.svc.name, name, ne.nc.MaxPayload())},
			resp.Header.Get(HeaderRequestID))
		err = m.RespondMsg(natsproto.EncodeResponse(resp))
	}
	if err != nil {
		ne.svc.logger.Warn("ferry: NATS reply failed", slog.String("service", ne.svc.name), slog.String("endpoint", name),
			slog.String("err", err.Error()))
	}
	failed := resp.Status >= http.StatusInternalServerError
	detail := ""
	if failed {
		detail = natsproto.ProblemDetail(resp.Body.Bytes(), resp.Status)
	}
	ne.responder.Record(name, time.Since(start), failed, resp.Status, detail)
}

// StopIntake implements lifecycle.Component: the subscriptions drain (no
// new calls are taken; those already received are still dispatched) and
// discovery stops answering.
func (ne *natsEndpoints) StopIntake() {
	for _, sub := range ne.subs {
		_ = sub.Drain()
	}
	if ne.responder != nil {
		_ = ne.responder.Stop()
	}
}

// Drain implements lifecycle.Component: it waits for the buffered calls to
// be dispatched and the calls in flight to answer until ctx ends, then
// cancels their contexts and returns.
func (ne *natsEndpoints) Drain(ctx context.Context) error {
	for _, sub := range ne.subs {
		closed := sub.StatusChanged(nats.SubscriptionClosed)
		if sub.IsValid() {
			select {
			case <-closed:
			case <-ctx.Done():
			}
		}
	}
	select {
	case <-ne.inflight.idle():
		ne.cancel()
		return nil
	case <-ctx.Done():
		ne.cancel()
		return fmt.Errorf("grace period over; %d NATS call(s) in flight were cancelled: %w", ne.inflight.count(), ctx.Err())
	}
}

// Close implements lifecycle.Component.
func (ne *natsEndpoints) Close(context.Context) error {
	for _, sub := range ne.subs {
		_ = sub.Unsubscribe()
	}
	if ne.responder != nil {
		_ = ne.responder.Stop()
	}
	if ne.cancel != nil {
		ne.cancel()
	}
	return nil
}

// inflight counts calls in flight and tells when there are none: a
// counter with a channel closed at zero, which, unlike a WaitGroup, may
// gain calls while someone waits.
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

// idle returns a channel closed once no call is in flight.
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

// problemResponse answers a call refused before it reached an endpoint.
func (s *Service) problemResponse(fe *Error, requestIDHeader string) *envelope.Response {
	resp := &envelope.Response{Header: http.Header{}}
	s.writeEnvelopeError(resp, fe.complete(requestID(requestIDHeader)))
	return resp
}
