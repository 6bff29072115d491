package ferry

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/ferrygo/ferry/internal/docsui"
	"github.com/ferrygo/ferry/internal/naming"
	"github.com/ferrygo/ferry/internal/natsproto"
	"github.com/ferrygo/ferry/internal/telemetry"
)

// Paths Ferry serves on every service with HTTP.
const (
	OpenAPIPath = "/openapi" // .json and .yaml
	// DocsPath is the OpenAPI page; DocsPath+"/asyncapi" renders the
	// AsyncAPI document, and each page links to the other.
	DocsPath = "/docs"
)

// initHTTP builds the service's mux and Huma API: Ferry's error type and
// schema names, no $schema links, the offline docs page, and problem
// details for unknown routes and methods.
func (s *Service) initHTTP(o *options) {
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/", s.unmatched)
	s.adapter = &recordingAdapter{Adapter: humago.NewAdapter(s.mux, ""), ops: map[string]recordedOperation{}}

	registry := huma.NewMapRegistry("#/components/schemas/", schemaNamer())
	cfg := huma.Config{
		OpenAPI: &huma.OpenAPI{
			OpenAPI:    "3.1.0",
			Info:       &huma.Info{Title: s.name, Version: s.version, Description: s.description},
			Components: &huma.Components{Schemas: registry},
		},
		OpenAPIPath:   OpenAPIPath,
		Formats:       formats(),
		DefaultFormat: "application/json",
		Transformers:  []huma.Transformer{s.transform},
	}
	// Huma documents the error model its global constructor returns; the
	// alias makes it document Ferry's error, which is what is written.
	registry.RegisterTypeAlias(reflect.TypeFor[huma.ErrorModel](), reflect.TypeFor[Error]())
	for _, fn := range o.humaConfig {
		fn(&cfg)
	}
	s.api = huma.NewAPI(cfg, s.adapter)
	s.api.UseMiddleware(s.authenticateAPIOperation)

	s.mux.HandleFunc("GET "+HealthzPath, s.serveHealthz)
	s.mux.HandleFunc("GET "+ReadyzPath, s.serveReadyz)
	s.mux.HandleFunc("GET "+AsyncAPIPath+".json", s.serveAsyncAPI)
	s.mux.HandleFunc("GET "+AsyncAPIPath+".yaml", s.serveAsyncAPI)
	docs := docsui.New(DocsPath, s.name+" "+s.version, OpenAPIPath+".json", docsui.WithAsyncAPI(AsyncAPIPath+".json"))
	for _, p := range docsui.Patterns(DocsPath) {
		s.mux.Handle(p, docs)
	}
}

// endpointMiddleware is the Huma middleware that runs an endpoint call
// through the service's transport-neutral chain: it builds the Request,
// runs the chain whose innermost step lets Huma decode, validate, call the
// handler and write; and it writes the error of a chain that refused or
// failed before anything was written.
func (s *Service) endpointMiddleware(name string, streaming, natsOnly bool) func(huma.Context, func(huma.Context)) {
	return func(hctx huma.Context, next func(huma.Context)) {
		transport := TransportHTTP
		if t, ok := hctx.(interface{ Transport() string }); ok {
			transport = t.Transport()
		}
		if natsOnly && transport == TransportHTTP {
			// As an unknown path is answered: the route is not there.
			id := incomingRequestID(nil, hctx.Header(HeaderRequestID))
			s.writeHumaError(hctx, (&Error{Status: http.StatusNotFound, Detail: "no endpoint at " + hctx.URL().Path}).complete(id))
			return
		}
		r, w := httpWriter(hctx) // nils for calls over NATS or in memory
		call := &endpointCall{hctx: hctx, next: next}
		if _, wrapped := hctx.(interface{ Unwrap() huma.Context }); r != nil && !wrapped {
			call.header = r.Header // what hctx.Header reads
		}
		// Only an observed call has an outcome to look for.
		var o *telemetry.Outcome
		if s.observer.load() != nil {
			o = callOutcome(hctx, w)
		}
		id := incomingRequestID(o, call.get(HeaderRequestID))
		req := &call.req
		*req = Request{
			Kind:      KindEndpoint,
			Service:   s.name,
			Name:      name,
			Transport: transport,
			ID:        id,
			logger:    s.logger,
			streaming: streaming,
			linkTrace: transport == TransportHTTP && s.config.TraceIncoming == TraceLink,
			endpoint:  call,
			calls:     &s.calls,
		}
		if w != nil {
			// hctx.SetHeader's, with the value's slice in the call.
			call.idHeader[0] = req.ID
			w.Header()[HeaderRequestID] = call.idHeader[:]
		} else {
			hctx.SetHeader(HeaderRequestID, req.ID)
		}
		if streaming && transport == TransportHTTP {
			liftWriteDeadline(hctx)
		}
		call.ctx = requestContext{Context: hctx.Context(), req: req}
		var ctx context.Context = &call.ctx
		var err error
		if budget, ok := s.callBudget(req); !ok {
			// The caller's deadline passed before the call reached us: answer
			// without running anything.
			err = &Error{Status: http.StatusGatewayTimeout, Code: "deadline_exceeded",
				Detail: "the caller's deadline had passed when the call arrived"}
		} else {
			if budget > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, budget)
				defer cancel()
			}
			err = s.chain(ctx, req)
		}
		if err != nil && hctx.Status() == 0 {
			fe := errorFrom(err).complete(req.ID)
			s.writeHumaError(hctx, fe)
			if req.outcome == nil {
				req.outcome = fe
			}
		}
		noteOutcome(o, name, req.outcome)
	}
}

// endpointCall is one endpoint call through the service's chain, in one
// allocation (a request's own cost is mostly allocations): its Request,
// the context that carries the Request, and what the innermost step runs.
type endpointCall struct {
	req      Request
	ctx      requestContext
	hctx     huma.Context       // as the transport gave it
	next     func(huma.Context) // Huma's step: decode, validate, call the handler, write
	with     contextOverride    // hctx with the chain's context, for next
	idHeader [1]string          // the X-Request-Id header's values
	header   http.Header        // the HTTP request's header; nil for other transports
}

// get returns the value of the named request header, as hctx.Header
// would; an HTTP request's header (whose keys net/http made canonical) is
// read directly, and a canonical name Ferry reads is not canonicalized
// again when absent.
func (c *endpointCall) get(name string) string {
	if c.header == nil {
		return c.hctx.Header(name)
	}
	if v := c.header[name]; len(v) > 0 {
		return v[0]
	}
	switch name {
	case HeaderRequestID, naming.HeaderTimeout, "Authorization", "Traceparent", "Tracestate":
		return ""
	}
	return c.header.Get(name)
}

// run is the call's innermost step: Huma runs the operation with the
// chain's context, and the error answered, if any, is the outcome.
func (c *endpointCall) run(ctx context.Context) error {
	c.with = contextOverride{humaContext: c.hctx, ctx: ctx}
	c.next(&c.with)
	if c.req.outcome == nil {
		return nil // not a nil *Error in a non-nil error
	}
	return c.req.outcome
}

// requestContext is context.WithValue(parent, requestKey{}, req) that
// lives in the endpointCall.
type requestContext struct {
	context.Context
	req *Request
}

// Value implements context.Context.
func (c *requestContext) Value(key any) any {
	if _, ok := key.(requestKey); ok {
		return c.req
	}
	return c.Context.Value(key)
}

// contextOverride is huma.WithContext(hctx, ctx) that lives in the
// endpointCall.
type contextOverride struct {
	humaContext
	ctx context.Context
}

// humaContext names the embedded huma.Context apart from its Context
// method.
type humaContext = huma.Context

// Context implements huma.Context.
func (c *contextOverride) Context() context.Context { return c.ctx }

// Unwrap returns the Huma context it overrides, as huma.WithContext's
// does (humago.Unwrap follows it).
func (c *contextOverride) Unwrap() huma.Context { return c.humaContext }

// callBudget returns the time a call may take: the caller's budget from
// the Ferry-Timeout header, capped by Config.CallTimeoutMax; for a NATS
// call without a budget, the cap; for an HTTP request without one, 0 (no
// deadline of Ferry's). ok is false when the budget is already spent.
func (s *Service) callBudget(req *Request) (time.Duration, bool) {
	limit := s.config.callTimeoutMax()
	budget, given := natsproto.ParseBudget(req.Header(naming.HeaderTimeout))
	switch {
	case given && budget <= 0:
		return 0, false
	case given:
		return min(budget, limit), true
	case req.Transport == TransportNATS:
		return limit, true
	}
	return 0, true
}

// transform is the Huma transformer that gives every error response
// Ferry's shape (code, request ID) and records it as the call's outcome.
func (s *Service) transform(hctx huma.Context, _ string, v any) (any, error) {
	var fe *Error
	switch e := v.(type) {
	case *Error:
		fe = e
	case *huma.ErrorModel:
		fe = errorFrom(e)
		if fe.Status == http.StatusUnsupportedMediaType {
			// Huma says "validation failed"; say what would succeed. The
			// field error keeps the content type that was received.
			fe.Detail = "send Content-Type: " + requestContentTypes(hctx.Operation())
		}
	default:
		return v, nil
	}
	req := RequestFromContext(hctx.Context())
	id := ""
	if req != nil {
		id = req.ID
	}
	out := fe.complete(id)
	if req != nil {
		req.outcome = out
	}
	return out, nil
}

// requestContentTypes names the content types op reads request bodies in:
// application/json for every body Ferry declares, others only when an
// Operation callback added them.
func requestContentTypes(op *huma.Operation) string {
	if op == nil || op.RequestBody == nil || len(op.RequestBody.Content) == 0 {
		return "application/json"
	}
	if _, ok := op.RequestBody.Content["application/json"]; ok {
		return "application/json"
	}
	types := make([]string, 0, len(op.RequestBody.Content))
	for ct := range op.RequestBody.Content {
		types = append(types, ct)
	}
	slices.Sort(types)
	return strings.Join(types, " or ")
}

// writeHumaError writes fe as problem details through a huma.Context.
func (s *Service) writeHumaError(hctx huma.Context, fe *Error) {
	for k, vs := range fe.Header {
		for _, v := range vs {
			hctx.AppendHeader(k, v)
		}
	}
	hctx.SetHeader("Content-Type", "application/problem+json")
	hctx.SetStatus(fe.Status)
	if err := s.api.Marshal(hctx.BodyWriter(), "application/json", fe); err != nil {
		s.logger.Error("ferry: writing a problem response failed", slog.String("err", err.Error()))
	}
}

// serveHTTP is the service's root handler: the mux, with a last-resort
// recovery for panics outside any endpoint's middleware.
func (s *Service) serveHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value compared as net/http does
			panic(v)
		}
		id := requestID(r.Header.Get(HeaderRequestID))
		s.logger.Error("ferry: HTTP handler panicked", slog.String("service", s.name),
			slog.String("path", r.URL.Path), slog.String("request_id", id), slog.String("panic", panicText(r.Header.Get, v)))
		writeProblem(w, (&Error{Status: http.StatusInternalServerError, Detail: "internal error; the request ID identifies it in the service's logs"}).complete(id))
	}()
	if ob := s.observer.load(); ob != nil {
		s.observeHTTP(ob, w, r)
		return
	}
	s.serveMux(w, r)
}

// serveMux serves r with the service's mux, once its header size is
// checked (limits.go); serveHTTP and observeHTTP call it. The documents
// answer 404 when its host serves them elsewhere or not at all
// (metrics.go).
func (s *Service) serveMux(w http.ResponseWriter, r *http.Request) {
	if s.headerTooLarge(w, r) { // limits.go
		return
	}
	if s.exposure.docsHidden.Load() && docsPath(r.URL.Path) {
		notFound(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// incomingRequestID is the request ID of an HTTP or NATS request: the one
// its observation o (nil: none) already chose, else the caller's valid
// one, else new.
func incomingRequestID(o *telemetry.Outcome, header string) string {
	if o != nil && o.RequestID != "" {
		return o.RequestID
	}
	return requestID(header)
}

// probeMethods are the methods tried to tell 405 from 404.
var probeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}

// unmatched answers requests no route matched: 405 with Allow when the path
// exists under another method, 404 otherwise, both as problem details.
func (s *Service) unmatched(w http.ResponseWriter, r *http.Request) {
	var allow []string
	probe := *r
	for _, m := range probeMethods {
		probe.Method = m
		if _, pattern := s.mux.Handler(&probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	id := incomingRequestID(requestOutcome(r.Context(), w), r.Header.Get(HeaderRequestID))
	fe := &Error{Status: http.StatusNotFound, Detail: "no endpoint at " + r.URL.Path}
	if len(allow) > 0 {
		for _, m := range allow {
			w.Header().Add("Allow", m)
		}
		fe = &Error{Status: http.StatusMethodNotAllowed, Detail: "method " + r.Method + " is not allowed on " + r.URL.Path}
	}
	writeProblem(w, fe.complete(id))
}

// writeProblem writes fe as application/problem+json on a plain
// ResponseWriter.
func writeProblem(w http.ResponseWriter, fe *Error) {
	body, err := json.Marshal(fe)
	if err != nil {
		body = []byte(`{"status":500,"title":"Internal Server Error","code":"internal_server_error"}`)
	}
	h := w.Header()
	for k, vs := range fe.Header {
		h[k] = append(h[k], vs...)
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("X-Content-Type-Options", "nosniff")
	if fe.RequestID != "" {
		h.Set(HeaderRequestID, fe.RequestID)
	}
	w.WriteHeader(fe.Status)
	_, _ = w.Write(append(body, '\n'))
}

// recordingAdapter is the humago adapter that also remembers each
// operation's handler by operation ID, so calls arriving without HTTP (in
// memory, over NATS) run the very same registered operation.
type recordingAdapter struct {
	huma.Adapter
	mu  sync.RWMutex
	ops map[string]recordedOperation
}

type recordedOperation struct {
	op      *huma.Operation
	handler func(huma.Context)
}

// Handle implements huma.Adapter.
func (a *recordingAdapter) Handle(op *huma.Operation, handler func(huma.Context)) {
	a.Adapter.Handle(op, handler)
	if op.OperationID == "" {
		return
	}
	a.mu.Lock()
	a.ops[op.OperationID] = recordedOperation{op: op, handler: handler}
	a.mu.Unlock()
}

// setMaxBody moves the body limit of the recorded operations that have
// the service's limit from old to n (a service that takes its host's
// configuration learns its limit when added); an operation whose
// Endpoint.Operation set a limit of its own keeps it.
func (a *recordingAdapter) setMaxBody(old, n int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.ops {
		if r.op.MaxBodyBytes == old {
			r.op.MaxBodyBytes = n
		}
	}
}

func (a *recordingAdapter) lookup(id string) (recordedOperation, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	op, ok := a.ops[id]
	return op, ok
}
