package ferry

// The per-service concurrency limit: one count of the endpoint calls a
// service runs, over HTTP and NATS together, past which a call is answered
// 503 overloaded at once instead of waiting.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/ferrygo/ferry/internal/natsproto"
	"github.com/ferrygo/ferry/internal/telemetry"
)

// CodeOverloaded is the problem code of a call refused because its
// service runs as many calls as it may (Config.MaxConcurrent), or because
// its NATS calls fill their worker pool and pending budget: a 503 with
// Retry-After, answered at once.
const CodeOverloaded = "overloaded"

// retryAfterOverloaded is the Retry-After of an overloaded answer, in
// seconds.
const retryAfterOverloaded = "1"

// limiter counts the calls a service runs.
type limiter struct {
	max atomic.Int64
	n   atomic.Int64
}

// acquire takes a slot, or reports that none is free.
func (l *limiter) acquire() bool {
	limit := l.max.Load()
	for {
		n := l.n.Load()
		if n >= limit {
			return false
		}
		if l.n.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (l *limiter) release() { l.n.Add(-1) }

// limitSlot is the slot a call holds, kept in its Request.
type limitSlot struct {
	l    *limiter
	kept bool // a handler still runs past its timeout: it releases the slot
}

// keep hands the slot over to a handler that outlives its call (see
// Endpoint.Timeout) and returns the function it calls when done; the call
// then ends without releasing it. It must run on the call's goroutine.
func (s *limitSlot) keep() func() {
	if s.l == nil || s.kept {
		return func() {}
	}
	s.kept = true
	return s.l.release
}

// limit is the outermost middleware of every service's chain: an
// endpoint call takes a slot of the service's limiter for as long as it
// runs, or is refused at once with a 503 overloaded problem. Events (they
// have their own concurrency) and streaming endpoints pass.
func (s *Service) limit(next Handler) Handler {
	return func(ctx context.Context, req *Request) error {
		if req.Kind != KindEndpoint || req.streaming {
			return next(ctx, req)
		}
		if !s.limiter.acquire() {
			return overloaded(fmt.Sprintf("service %s is running as many calls as it may (%d, FERRY_MAX_CONCURRENT); try again shortly",
				s.name, s.limiter.max.Load()))
		}
		req.slot = limitSlot{l: &s.limiter}
		defer func() {
			if !req.slot.kept {
				s.limiter.release()
			}
		}()
		return next(ctx, req)
	}
}

// overloaded returns the 503 overloaded problem with detail.
func overloaded(detail string) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeOverloaded, Detail: detail,
		Header: http.Header{"Retry-After": {retryAfterOverloaded}}}
}

// refuse answers a NATS call that found the service's workers busy and
// its pending budget full (503 overloaded), or that was still waiting for
// a worker when the drain's deadline passed (503, shutting down).
func (ne *natsEndpoints) refuse(ctx context.Context, name string, m *nats.Msg) {
	draining := ctx.Err() != nil
	if ob := ne.svc.observer.load(); ob != nil {
		var o *telemetry.Outcome
		ctx, o = ne.svc.observeCall(context.WithoutCancel(ctx), ob, name, m.Header)
		defer func() { endCall(ctx, ob, o, http.StatusServiceUnavailable, "") }()
	}
	fe := overloaded(fmt.Sprintf("service %s has every NATS worker busy (%d, FERRY_NATS_WORKERS) and its pending calls fill their budget (%d bytes, FERRY_NATS_PENDING_BYTES); try again shortly",
		ne.svc.name, ne.svc.config.natsWorkers(), ne.svc.config.natsPendingBytes()))
	if draining {
		fe = &Error{Status: http.StatusServiceUnavailable, Detail: "service " + ne.svc.name + " is shutting down; the call was not run",
			Header: http.Header{"Retry-After": {retryAfterOverloaded}}}
	}
	o := outcomeFrom(ctx)
	resp := ne.svc.problemResponse(fe, incomingRequestID(o, m.Header.Get(HeaderRequestID)))
	noteOutcome(o, name, fe)
	if err := m.RespondMsg(natsproto.EncodeResponse(resp)); err != nil {
		ne.svc.logger.Warn("ferry: NATS reply failed", slog.String("service", ne.svc.name), slog.String("endpoint", name),
			slog.String("err", err.Error()))
	}
	ne.responder.Record(name, 0, true, resp.Status, fe.Detail)
}
