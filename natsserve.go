package ferry

import (
	"context"
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

// natsEndpoints serves a service's endpoints over NATS request/reply: one
// queue subscription per endpoint (every replica joins the same group, so
// each call reaches one), each message run by one of up to
// DefaultMaxConcurrentCalls reused workers, through the very operation HTTP
// runs; plus the $SRV discovery responders.
type natsEndpoints struct {
	svc       *Service
	nc        *nats.Conn
	subs      []*nats.Subscription
	responder *discovery.Responder
	slots     chan struct{} // one per running worker
	work      chan call     // calls for idle workers
	inflight  sync.WaitGroup
	base      context.Context // cancelled when the grace period is over
	cancel    context.CancelFunc
}

// serveNATS starts serving the service's endpoints on nc.
func (s *Service) serveNATS(nc *nats.Conn) (*natsEndpoints, error) {
	base, cancel := context.WithCancel(context.Background())
	ne := &natsEndpoints{svc: s, nc: nc, slots: make(chan struct{}, DefaultMaxConcurrentCalls), work: make(chan call),
		base: base, cancel: cancel}
	// Discovery first: a call may arrive as soon as a subscription exists,
	// and its statistics go to the responder.
	info := discovery.Info{Name: s.name, Version: s.version, Description: s.description}
	var served []*boundEndpoint
	for _, ep := range s.boundEndpoints() {
		if ep.httpOnly {
			continue
		}
		served = append(served, ep)
		info.Endpoints = append(info.Endpoints, discovery.Endpoint{Name: ep.name, Subject: naming.EndpointSubject(s.name, ep.name),
			QueueGroup: naming.QueueGroup, Metadata: map[string]string{"method": ep.method, "path": ep.path}})
	}
	r, err := discovery.Start(nc, info)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("ferry: service %s: discovery: %w", s.name, err)
	}
	ne.responder = r
	for _, ep := range served {
		subject := naming.EndpointSubject(s.name, ep.name)
		sub, err := nc.QueueSubscribe(subject, naming.QueueGroup, ne.dispatch(ep.name))
		if err != nil {
			ne.unsubscribe()
			return nil, fmt.Errorf("ferry: service %s: subscribe %s: %w", s.name, subject, err)
		}
		// The server queues what the handlers have not taken yet: no limit
		// on the count, 256 MiB of bytes.
		_ = sub.SetPendingLimits(-1, 256<<20)
		ne.subs = append(ne.subs, sub)
	}
	return ne, nil
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
		ne.inflight.Add(1)
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
		ne.inflight.Done()
		idle.Reset(workerIdle)
		select {
		case c = <-ne.work:
		case <-idle.C:
			return
		}
	}
}

// serve runs one call and answers it. The body limit is the operation's,
// as over HTTP.
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
	if err := m.RespondMsg(natsproto.EncodeResponse(resp)); err != nil {
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

// stopIntake drains the subscriptions: no new calls are taken; those
// already received are still dispatched.
func (ne *natsEndpoints) stopIntake() {
	for _, sub := range ne.subs {
		_ = sub.Drain()
	}
	if ne.responder != nil {
		_ = ne.responder.Stop()
	}
}

// wait waits for the calls in flight until ctx ends, then cancels their
// contexts and waits for them to answer.
func (ne *natsEndpoints) wait(ctx context.Context) error {
	// Drain finishes once the buffered messages have been dispatched.
	for _, sub := range ne.subs {
		for sub.IsValid() && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
	}
	done := make(chan struct{})
	go func() {
		ne.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		ne.cancel()
		return nil
	case <-ctx.Done():
		ne.cancel()
		waitBriefly(done)
		return fmt.Errorf("ferry: service %s: grace period over; NATS calls in flight were cancelled: %w", ne.svc.name, ctx.Err())
	}
}

// cancelWait is how long shutdown waits, after cancelling what is still
// running at the end of the grace period, for it to return.
const cancelWait = time.Second

// waitBriefly waits up to cancelWait for done; it reports whether done
// closed. Handlers that ignore their context are left behind rather than
// holding the shutdown forever.
func waitBriefly(done <-chan struct{}) bool {
	t := time.NewTimer(cancelWait)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

func (ne *natsEndpoints) unsubscribe() {
	for _, sub := range ne.subs {
		_ = sub.Unsubscribe()
	}
	if ne.responder != nil {
		_ = ne.responder.Stop()
	}
	ne.cancel()
}

// problemResponse answers a call refused before it reached an endpoint.
func (s *Service) problemResponse(fe *Error, requestIDHeader string) *envelope.Response {
	resp := &envelope.Response{Header: http.Header{}}
	s.writeEnvelopeError(resp, fe.complete(requestID(requestIDHeader)))
	return resp
}
