package ferry

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/danielgtaylor/huma/v2"

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

// requestOutcome returns the observation of an HTTP request, served with
// w and ctx, or nil: observeHTTP hands it to the handlers through the
// writer it wraps (the request's context carries it only when an observer
// derived a context of its own), else it is in ctx (NATS calls).
func requestOutcome(ctx context.Context, w http.ResponseWriter) *telemetry.Outcome {
	if sw, ok := w.(*statusWriter); ok && sw.o != nil {
		return sw.o
	}
	return outcomeFrom(ctx)
}

// callOutcome is requestOutcome for an endpoint call's Huma context and
// its httpWriter (nil: none).
func callOutcome(hctx huma.Context, w http.ResponseWriter) *telemetry.Outcome {
	if sw, ok := w.(*statusWriter); ok && sw.o != nil {
		return sw.o
	}
	return outcomeFrom(hctx.Context())
}

// httpWriter returns the request and the response writer of an HTTP
// endpoint call's Huma context — the ones Huma's adapter was given, under
// any Huma middleware's context overrides — or nils for a call without
// HTTP (NATS, in memory).
func httpWriter(hctx huma.Context) (*http.Request, http.ResponseWriter) {
	c := hctx
	for {
		u, ok := c.(interface{ Unwrap() huma.Context })
		if !ok {
			break
		}
		c = u.Unwrap()
	}
	if u, ok := c.(interface {
		Unwrap() (*http.Request, http.ResponseWriter)
	}); ok {
		return u.Unwrap()
	}
	return nil, nil
}

// httpResponseWriter is httpWriter's response writer.
func httpResponseWriter(hctx huma.Context) http.ResponseWriter {
	_, w := httpWriter(hctx)
	return w
}

// Route labels of requests no pattern names.
const routeUnmatched = "unmatched"

// observeHTTP serves one HTTP request under observation: the outcome is
// begun before routing and ended when the handler returns, with the status
// written and the matched route pattern.
func (s *Service) observeHTTP(ob telemetry.Observer, w http.ResponseWriter, r *http.Request) {
	// One allocation for the outcome, the writer and the context that
	// carries the outcome: this runs for every request.
	obs := &httpObservation{o: telemetry.Outcome{
		Kind:      telemetry.KindEndpoint,
		Service:   s.name,
		Transport: TransportHTTP,
		Method:    knownMethod(r.Method),
		Path:      r.URL.Path,
		RequestID: requestID(firstValue(r.Header[HeaderRequestID])), // net/http made the keys canonical
		Header:    r.Header,
		Start:     time.Now(),
	}}
	o, sw := &obs.o, &obs.sw
	parent := r.Context()
	ctx := ob.Begin(parent, o)
	sw.ResponseWriter, sw.o = w, o
	if ctx != parent {
		// The observer derived a context (a span): the request carries it,
		// and the observation with it. Otherwise the handlers find the
		// observation through the writer, and the request is not copied.
		obs.ctx = outcomeContext{Context: ctx, o: o}
		r = r.WithContext(&obs.ctx)
	}
	defer func() {
		// A panic outside the handler's recovery (a middleware's) is
		// answered 500 by serveHTTP's: observed as such, then passed on.
		v := recover()
		if v != nil {
			defer panic(v)
		}
		o.Status = sw.status
		switch {
		case o.Status == 0 && v != nil:
			o.Status = http.StatusInternalServerError
		case o.Status == 0:
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

// firstValue returns vs[0], or "" when vs is empty.
func firstValue(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// httpObservation is what observing one HTTP request needs, allocated
// together.
type httpObservation struct {
	o   telemetry.Outcome
	sw  statusWriter
	ctx outcomeContext
}

// outcomeContext carries the observation of the work it belongs to, as
// context.WithValue(ctx, outcomeKey{}, o) would, without an allocation of
// its own. Its Done is its parent's, so the context package finds the
// parent's cancellation and starts no goroutine for its children.
type outcomeContext struct {
	context.Context
	o *telemetry.Outcome
}

func (c *outcomeContext) Value(key any) any {
	if _, ok := key.(outcomeKey); ok {
		return c.o
	}
	return c.Context.Value(key)
}

// methodOther stands for an HTTP method outside the standard ones, in
// observations: the method is the client's to choose, so an unknown one
// must not become a span name or a label value of its own.
const methodOther = "_OTHER"

// knownMethod returns m if it is a standard HTTP method, else methodOther.
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return methodOther
}

// observeCall begins the observation of a NATS call; end finishes it with
// the status answered.
func (s *Service) observeCall(ctx context.Context, ob telemetry.Observer, name string, header telemetry.Header) (context.Context, *telemetry.Outcome) {
	obs := &callObservation{o: telemetry.Outcome{
		Kind:      telemetry.KindEndpoint,
		Service:   s.name,
		Name:      name,
		Route:     name,
		Transport: TransportNATS,
		RequestID: requestID(header.Get(HeaderRequestID)),
		Header:    header,
		Start:     time.Now(),
	}}
	o := &obs.o
	obs.ctx = outcomeContext{Context: ob.Begin(ctx, o), o: o}
	return &obs.ctx, o
}

// callObservation is what observing one NATS call needs, allocated
// together.
type callObservation struct {
	o   telemetry.Outcome
	ctx outcomeContext
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

// noteOutcome records, on the observation o of the work (nil: none), the
// endpoint and the error answered.
func noteOutcome(o *telemetry.Outcome, name string, fe *Error) {
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
	o      *telemetry.Outcome // the request's observation
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
