package ferry

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/ferrygo/ferry/internal/telemetry"
)

// Observation: every HTTP request, NATS call and event delivery a service
// takes is seen by the service's observer (internal/telemetry) — metrics,
// traces, the access log — from where it arrives to where it is settled,
// whether or not it reaches the middleware chain: a 404, a spent budget,
// an undecodable NATS request, a malformed event, a delivery past its
// limit, an idempotent skip and a dead letter are all observed.

// observerSlot holds a service's observer; nil (the zero value) means none,
// and the entry points then skip observation entirely.
type observerSlot struct{ p atomic.Pointer[observerBox] }

type observerBox struct{ telemetry.Observer }

func (o *observerSlot) load() telemetry.Observer {
	if b := o.p.Load(); b != nil {
		return b.Observer
	}
	return nil
}

func (o *observerSlot) store(ob telemetry.Observer) {
	if ob == nil {
		o.p.Store(nil)
		return
	}
	o.p.Store(&observerBox{ob})
}

type outcomeKey struct{}

// outcomeFrom returns the observation of the work ctx belongs to, or nil.
func outcomeFrom(ctx context.Context) *telemetry.Outcome {
	o, _ := ctx.Value(outcomeKey{}).(*telemetry.Outcome)
	return o
}

// Route labels of requests no pattern names.
const routeUnmatched = "unmatched"

// observeHTTP serves one HTTP request under observation: the outcome is
// begun before routing and ended when the handler returns, with the status
// written and the matched route pattern.
func (s *Service) observeHTTP(ob telemetry.Observer, w http.ResponseWriter, r *http.Request) {
	o := &telemetry.Outcome{
		Kind:      telemetry.KindEndpoint,
		Service:   s.name,
		Transport: TransportHTTP,
		Method:    r.Method,
		Path:      r.URL.Path,
		RequestID: requestID(r.Header.Get(HeaderRequestID)),
		Header:    r.Header.Get,
		Start:     time.Now(),
	}
	ctx := ob.Begin(r.Context(), o)
	sw := &statusWriter{ResponseWriter: w}
	r = r.WithContext(context.WithValue(ctx, outcomeKey{}, o))
	defer func() {
		o.Status = sw.status
		if o.Status == 0 {
			o.Status = http.StatusOK
		}
		o.Route = r.Pattern
		if o.Route == "" || o.Route == "/" {
			o.Route = routeUnmatched
		}
		if o.Code == "" && o.Status >= 400 {
			o.Code = StatusCode(o.Status)
		}
		o.Duration = time.Since(o.Start)
		ob.End(ctx, o)
	}()
	s.serveMux(sw, r)
}

// observeCall begins the observation of a NATS call; end finishes it with
// the status answered.
func (s *Service) observeCall(ctx context.Context, ob telemetry.Observer, name string, header func(string) string) (context.Context, *telemetry.Outcome) {
	o := &telemetry.Outcome{
		Kind:      telemetry.KindEndpoint,
		Service:   s.name,
		Name:      name,
		Route:     name,
		Transport: TransportNATS,
		RequestID: requestID(header(HeaderRequestID)),
		Header:    header,
		Start:     time.Now(),
	}
	ctx = ob.Begin(ctx, o)
	return context.WithValue(ctx, outcomeKey{}, o), o
}

// endCall ends a NATS call's observation.
func endCall(ctx context.Context, ob telemetry.Observer, o *telemetry.Outcome, status int, code string) {
	o.Status = status
	if o.Code == "" {
		o.Code = code
	}
	if o.Code == "" && status >= 400 {
		o.Code = StatusCode(status)
	}
	o.Duration = time.Since(o.Start)
	ob.End(ctx, o)
}

// noteOutcome records, on the observation of the work ctx belongs to, the
// endpoint and the error answered.
func noteOutcome(ctx context.Context, name string, fe *Error) {
	o := outcomeFrom(ctx)
	if o == nil {
		return
	}
	o.Name = name
	if fe != nil {
		o.Code = fe.code()
	}
}

// statusWriter remembers the status written through it. It unwraps for
// http.ResponseController and passes Flush and Hijack on, so streaming
// responses work through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := w.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("ferry: the response writer cannot be hijacked")
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
