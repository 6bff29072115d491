package ferry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferrygo/ferry/internal/envelope"
	"github.com/ferrygo/ferry/internal/naming"
)

// contextT shortens signatures inside the package.
type contextT = context.Context

// Endpoint declares a request/response operation as a value: its stable
// name, HTTP method and path, and its input and output types. Declare it in
// a contract package that callers import without importing the handler;
// the owning service binds a handler to it with [Handle].
//
// In and Out follow Huma's conventions: In has fields tagged path, query
// and header, and a Body field; Out has a Body field and header fields.
// A plain struct — no field tagged path, query, header, cookie or form,
// no Body or RawBody field (nor, for an Out, a Status int field, which is
// its HTTP status) — is the body as a whole: an In for a method with a
// body (POST, PUT, PATCH, DELETE), or an Out.
// Validation comes from struct tags (minimum, maxLength, pattern, …). A
// request body may carry properties In does not declare: they are ignored,
// so callers can send a new field before every replica knows it (a body
// type opts out with a field `_ struct{} additionalProperties:"false"`);
// docs/protocol.md, "Compatibility rules", has the whole rule.
//
// Name is part of the wire contract (it becomes the NATS subject, the
// metric label and the OpenAPI operation ID): it must match
// ^[A-Za-z0-9_-]+$ and must not change when the path does.
type Endpoint[In, Out any] struct {
	// Service is the name of the service that serves the endpoint: with
	// Name, it is the address callers use ([Endpoint.Call] sends to
	// ferry.<Service>.<Name>). [Handle] requires it to name the service the
	// handler is bound on; [Get], [Post], … fill it in.
	Service string
	// Name is the endpoint's stable name, unique within its service.
	Name string
	// Method is the HTTP method, such as http.MethodGet.
	Method string
	// Path is the HTTP path pattern, with {name} parameters.
	Path string
	// Summary and Description document the endpoint in OpenAPI.
	Summary     string
	Description string
	// Tags group endpoints in the docs.
	Tags []string
	// DefaultStatus is the success status; 0 means 200 (204 without a body).
	DefaultStatus int
	// Errors lists the error statuses to document besides those Ferry
	// documents for every endpoint (docs/security.md, "OpenAPI"): 409,
	// say, for a conflict the handler reports.
	Errors []int
	// Auth says who may call the endpoint: the zero value is the
	// service's default (authenticated when the service verifies
	// credentials); see [Auth].
	Auth Auth
	// HTTPOnly keeps the endpoint off NATS, for inputs and responses that
	// cannot travel as one message: cookies, forms and raw bodies (which
	// [Handle] refuses otherwise), streams such as Server-Sent Events.
	HTTPOnly bool
	// NATSOnly keeps the endpoint off the service's HTTP listener (its
	// route answers 404, as an unknown path does) and out of its OpenAPI
	// document: an internal endpoint, which the system's other services
	// call over NATS and the outside cannot reach through the service's
	// HTTP port. (Who may publish on NATS is the broker's permissions'
	// to say: docs/security.md.)
	NATSOnly bool
	// Timeout, if positive, bounds the handler, over HTTP and NATS alike:
	// when it passes, the handler's context is cancelled and the caller is
	// answered 504 deadline_exceeded at once, whether the handler has
	// returned or not. A handler still running holds its place in the
	// service's concurrency limit until it returns (and must not read a
	// multipart form then; a RawBody is copied for it). The caller's own
	// budget still applies when it is shorter. A typed [Endpoint.Call]
	// whose context has no deadline waits a second longer than Timeout
	// (at least [DefaultCallTimeout]).
	Timeout time.Duration
	// Streaming declares an endpoint whose response is a stream, such as
	// Server-Sent Events (Out is huma.StreamResponse): its calls are not
	// counted by the service's concurrency limit, and over HTTP its write
	// deadline (Config.HTTPWriteTimeout) is lifted, so it lasts as long as
	// it streams. Pair it with HTTPOnly unless the stream is short enough
	// to travel as one NATS reply. For a Huma operation registered
	// directly on [Service.API], see [Streaming].
	Streaming bool
	// Operation, if set, adjusts the Huma operation before registration:
	// the escape hatch for what the fields above do not cover (security
	// requirements, extensions, a per-endpoint MaxBodyBytes, …). Middleware
	// it sets on the operation runs inside Ferry's own, after the service's
	// chain; [Handle] panics if it changes OperationID, Method or Path,
	// which HTTP and NATS route by.
	Operation func(*huma.Operation)
}

// boundEndpoint is what a service keeps of an endpoint it serves.
type boundEndpoint struct {
	name, method, path string
	httpOnly           bool
	// What the AsyncAPI document shows of it (asyncapi.go): its docs and
	// the Go types of its request and response bodies (nil: none).
	summary, description string
	inBody, outBody      reflect.Type
}

// Handle binds fn as the handler of endpoint ep on service s. The handler
// receives the decoded, validated input; it returns the output, or an error:
// an *[Error] is answered as it is; the failure of a call to another
// service (a [*CallError], as it is or wrapped) as 502, 503 or 504 with
// the callee's problem logged, unless the handler passes it on
// ([PassOn]); any other error as a generic 500 whose text is logged with
// the request ID but never sent.
//
// Handle panics, with a message prefixed "ferry:", on setup mistakes: an
// invalid or duplicate name; a Service that is empty or names another
// service; a missing method or path; invalid input or output types; inputs
// NATS cannot carry (cookies, forms, RawBody) on an endpoint that is not
// HTTPOnly; json-tagged input fields outside a Body, which nothing fills
// (a GET's: a plain struct is a body only for a method with one);
// path parameters that the template and the input's path tags disagree
// on; an Operation callback that moves the endpoint; an Auth that is
// Public and lists Scopes; HTTPOnly with NATSOnly; or a service that has
// already started.
func Handle[In, Out any](s *Service, ep Endpoint[In, Out], fn func(context.Context, *In) (*Out, error)) {
	if err := naming.CheckEndpointName(ep.Name); err != nil {
		panic(fmt.Sprintf("ferry: Handle on service %s: %v", s.name, err))
	}
	if ep.Method == "" || ep.Path == "" || ep.Path[0] != '/' {
		panic(fmt.Sprintf("ferry: Handle %s.%s: method and a path starting with / are required", s.name, ep.Name))
	}
	if fn == nil {
		panic(fmt.Sprintf("ferry: Handle %s.%s: nil handler", s.name, ep.Name))
	}
	switch ep.Service {
	case s.name:
	case "":
		panic(fmt.Sprintf("ferry: Handle %s.%s: the endpoint declares no Service; set Service: %q so callers can address it", s.name, ep.Name, s.name))
	default:
		panic(fmt.Sprintf("ferry: Handle %s.%s: the endpoint belongs to service %q", s.name, ep.Name, ep.Service))
	}
	if err := ep.Auth.check(); err != nil {
		panic(fmt.Sprintf("ferry: Handle %s.%s: %v", s.name, ep.Name, err))
	}
	if ep.HTTPOnly && ep.NATSOnly {
		panic(fmt.Sprintf("ferry: Handle %s.%s: HTTPOnly and NATSOnly leave the endpoint no transport", s.name, ep.Name))
	}
	in := reflect.TypeFor[In]()
	plainIn := bodyMethod(ep.Method) && envelope.WholeBody(in, false)
	plainOut := envelope.WholeBody(reflect.TypeFor[Out](), true)
	if in.Kind() == reflect.Struct && !plainIn {
		if !ep.HTTPOnly {
			checkNATSInputs(s.name, ep.Name, in)
		}
		checkUnboundJSON(s.name, ep.Name, ep.Method, in)
		checkPathParams(s.name, ep.Name, ep.Path, in)
	}
	if plainIn {
		checkPathParams(s.name, ep.Name, ep.Path, in) // a plain body has no path parameters to bind
	}
	op := huma.Operation{
		OperationID:   ep.Name,
		Method:        ep.Method,
		Path:          ep.Path,
		Summary:       ep.Summary,
		Description:   ep.Description,
		Tags:          ep.Tags,
		DefaultStatus: ep.DefaultStatus,
		Errors:        ep.Errors,
		MaxBodyBytes:  s.config.maxBody(),
		// The body read gets the read timeout from its start (Huma's
		// default is 5 s); Service.inherit moves it with the config.
		BodyReadTimeout: s.config.httpReadTimeout(),
	}
	if ep.Operation != nil {
		ep.Operation(&op)
		checkOperation(s.name, ep.Name, ep.Method, ep.Path, &op)
	}
	// Ferry's middleware runs first, whatever the callback set: it builds
	// the Request and runs the service's chain (request ID, deadline,
	// recovery, the user's WithMiddleware), inside which the operation's
	// own middleware and the handler run.
	op.Hidden = op.Hidden || ep.NATSOnly
	op.Middlewares = append(huma.Middlewares{s.endpointMiddleware(ep.Name, ep.Streaming, ep.NATSOnly)}, op.Middlewares...)

	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		panic(fmt.Sprintf("ferry: Handle %s.%s: %v", s.name, ep.Name, errAlreadyStarted))
	}
	if _, dup := s.endpoints[ep.Name]; dup {
		s.mu.Unlock()
		panic(fmt.Sprintf("ferry: Handle %s.%s: endpoint name already bound", s.name, ep.Name))
	}
	s.endpoints[ep.Name] = &boundEndpoint{name: ep.Name, method: ep.Method, path: ep.Path, httpOnly: ep.HTTPOnly,
		summary: ep.Summary, description: ep.Description,
		inBody: bodyType(in, plainIn, bodyMethod(ep.Method)), outBody: bodyType(reflect.TypeFor[Out](), plainOut, true)}
	s.mu.Unlock()

	defer func() {
		// Huma's own setup panics (a pointer parameter, a schema name clash)
		// name neither the service nor the endpoint, and would leave the
		// name bound.
		if v := recover(); v != nil {
			s.mu.Lock()
			delete(s.endpoints, ep.Name)
			s.mu.Unlock()
			panic(fmt.Sprintf("ferry: Handle %s.%s: %v", s.name, ep.Name, v))
		}
	}()
	if ep.Timeout > 0 {
		fn = withTimeout(s, ep.Name, ep.Timeout, fn)
	}
	handler := func(ctx context.Context, in *In) (*Out, error) {
		out, err := fn(ctx, in)
		if err != nil {
			return nil, s.handlerError(ctx, err)
		}
		return out, nil
	}
	// A plain struct (no parameters, no Body field) is the body as a whole:
	// Huma binds it through a Body wrapper.
	switch {
	case plainIn && plainOut:
		huma.Register(s.api, op, func(ctx context.Context, in *wholeBody[In]) (*wholeBody[*Out], error) {
			out, err := handler(ctx, &in.Body)
			if err != nil {
				return nil, err
			}
			return &wholeBody[*Out]{Body: out}, nil
		})
	case plainIn:
		huma.Register(s.api, op, func(ctx context.Context, in *wholeBody[In]) (*Out, error) { return handler(ctx, &in.Body) })
	case plainOut:
		huma.Register(s.api, op, func(ctx context.Context, in *In) (*wholeBody[*Out], error) {
			out, err := handler(ctx, in)
			if err != nil {
				return nil, err
			}
			return &wholeBody[*Out]{Body: out}, nil
		})
	default:
		huma.Register(s.api, op, handler)
	}
	if rec, ok := s.adapter.lookup(ep.Name); ok {
		tolerateRequestBody(s.api.OpenAPI().Components.Schemas, rec.op)
	}
	s.declareAuth(ep.Name, ep.Auth, ep.Errors)
	s.documentEndpoint(ep.Name)
}

// wholeBody carries a plain input or output struct as Huma's Body.
type wholeBody[T any] struct {
	Body T
}

// bodyMethod reports whether requests of method carry a body an endpoint
// binds: a plain input struct is the body only for these.
func bodyMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// checkOperation panics if an Operation callback changed what HTTP and
// NATS route by: the operation ID (the endpoint's name, which NATS calls
// look up), the method or the path.
func checkOperation(service, name, method, path string, op *huma.Operation) {
	var changed []string
	if op.OperationID != name {
		changed = append(changed, fmt.Sprintf("OperationID %q (was %q)", op.OperationID, name))
	}
	if op.Method != method {
		changed = append(changed, fmt.Sprintf("Method %q (was %q)", op.Method, method))
	}
	if op.Path != path {
		changed = append(changed, fmt.Sprintf("Path %q (was %q)", op.Path, path))
	}
	if len(changed) > 0 {
		panic(fmt.Sprintf("ferry: Handle %s.%s: the Operation callback changed %s; set Name, Method and Path on the Endpoint instead",
			service, name, strings.Join(changed, ", ")))
	}
}

// Get binds fn to a GET endpoint declared in place, on service s: the
// one-line form of [Handle] for endpoints whose contract is not shared.
func Get[In, Out any](s *Service, name, path string, fn func(context.Context, *In) (*Out, error)) {
	Handle(s, Endpoint[In, Out]{Service: s.name, Name: name, Method: http.MethodGet, Path: path}, fn)
}

// Post binds fn to a POST endpoint declared in place; see [Get].
func Post[In, Out any](s *Service, name, path string, fn func(context.Context, *In) (*Out, error)) {
	Handle(s, Endpoint[In, Out]{Service: s.name, Name: name, Method: http.MethodPost, Path: path}, fn)
}

// Put binds fn to a PUT endpoint declared in place; see [Get].
func Put[In, Out any](s *Service, name, path string, fn func(context.Context, *In) (*Out, error)) {
	Handle(s, Endpoint[In, Out]{Service: s.name, Name: name, Method: http.MethodPut, Path: path}, fn)
}

// Patch binds fn to a PATCH endpoint declared in place; see [Get].
func Patch[In, Out any](s *Service, name, path string, fn func(context.Context, *In) (*Out, error)) {
	Handle(s, Endpoint[In, Out]{Service: s.name, Name: name, Method: http.MethodPatch, Path: path}, fn)
}

// Delete binds fn to a DELETE endpoint declared in place; see [Get].
func Delete[In, Out any](s *Service, name, path string, fn func(context.Context, *In) (*Out, error)) {
	Handle(s, Endpoint[In, Out]{Service: s.name, Name: name, Method: http.MethodDelete, Path: path}, fn)
}

// handlerError turns a handler's error into the *Error answered to the
// caller, logging the text of errors that are not sent.
func (s *Service) handlerError(ctx context.Context, err error) error {
	var ce *CallError
	if errors.As(err, &ce) {
		return s.downstreamError(ctx, ce, err)
	}
	var fe *Error
	if errors.As(err, &fe) {
		if fe.GetStatus() >= http.StatusInternalServerError {
			// Answered as it is (a downstream 503, say), but logged: a server
			// failure the caller sees should be in the service's log too.
			attrs := []any{"service", s.name, "status", fe.GetStatus(), "code", fe.Code, "err", redactFor(ctx, describe(fe))}
			if req := RequestFromContext(ctx); req != nil {
				attrs = append(attrs, "endpoint", req.Name, "request_id", req.ID)
			}
			s.logger.WarnContext(ctx, "ferry: handler answered a server error", attrs...)
		}
		return fe
	}
	fe = errorFrom(err)
	if fe.GetStatus() >= http.StatusInternalServerError {
		attrs := []any{"service", s.name, "err", redactFor(ctx, err.Error())}
		if req := RequestFromContext(ctx); req != nil {
			attrs = append(attrs, "endpoint", req.Name, "request_id", req.ID)
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			// The caller's budget ran out or the caller left: not a failure
			// of the service.
			s.logger.InfoContext(ctx, "ferry: handler stopped: its call's deadline passed or its caller left", attrs...)
			return fe
		}
		s.logger.ErrorContext(ctx, "ferry: handler failed", attrs...)
	}
	return fe
}

// downstreamError is the answer of a handler that returned the failure of
// a downstream call (err, which is or wraps ce): 502, 503 or 504, with the
// callee's problem in the log instead of the response.
func (s *Service) downstreamError(ctx context.Context, ce *CallError, err error) *Error {
	fe := ce.boundary()
	attrs := []any{"service", s.name, "status", fe.Status, "code", fe.Code, "call", ce.Service + "." + ce.Endpoint,
		"call_status", ce.Status, "call_code", ce.Code, "err", redactFor(ctx, err.Error())}
	if req := RequestFromContext(ctx); req != nil {
		attrs = append(attrs, "endpoint", req.Name, "request_id", req.ID)
	}
	if ctx.Err() != nil {
		// The handler's own deadline passed or its caller left: the call
		// failed with it, not the callee.
		s.logger.InfoContext(ctx, "ferry: handler stopped: its call's deadline passed or its caller left", attrs...)
		return fe
	}
	s.logger.WarnContext(ctx, "ferry: a downstream call failed", attrs...)
	return fe
}
