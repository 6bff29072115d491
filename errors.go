package ferry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Error is the one error type of Ferry: a problem that a handler, a
// middleware or Ferry itself reports to the caller. Over HTTP it is written
// as RFC 9457 problem details (application/problem+json); over NATS as the
// same JSON body with the NATS service error headers.
//
// Handlers return an *Error (built with [NewError] or as a literal) when the
// caller should learn what went wrong; any other error becomes a generic 500
// whose text is logged but never sent. The failure of a call to another
// service is a [*CallError], answered 502, 503 or 504 unless the handler
// passes the callee's problem on ([PassOn]). An *Error may be shared (a package
// variable): Ferry never modifies one it is given.
type Error struct {
	// Type is a URI reference identifying the problem type (RFC 9457);
	// empty means "about:blank".
	Type string `json:"type,omitempty" doc:"A URI reference that identifies the problem type."`
	// Title is a short summary of the problem type; it defaults to the
	// status text.
	Title string `json:"title,omitempty" doc:"A short, human-readable summary of the problem type."`
	// Status is the HTTP status code; it defaults to 500.
	Status int `json:"status" doc:"HTTP status code."`
	// Code is a stable, machine-readable code for the problem, such as
	// "not_found" or "item_sold_out"; it defaults to one derived from Status.
	Code string `json:"code,omitempty" doc:"A stable, machine-readable code for the problem."`
	// Detail explains this occurrence of the problem to a human.
	Detail string `json:"detail,omitempty" doc:"A human-readable explanation of this occurrence of the problem."`
	// Instance is a URI reference identifying this occurrence.
	Instance string `json:"instance,omitempty" doc:"A URI reference that identifies this occurrence of the problem."`
	// RequestID is the ID of the request that failed, for finding its logs.
	RequestID string `json:"request_id,omitempty" doc:"The ID of the request, as found in the service's logs."`
	// Errors lists the individual problems, such as failing fields.
	Errors []*FieldError `json:"errors,omitempty" doc:"The individual problems, such as failing fields."`

	// Header holds response headers to send with the error (for example
	// Retry-After). It is not part of the body.
	Header http.Header `json:"-"`
	// Permanent marks an error that retrying cannot fix: an event or job
	// failing with it is dead-lettered at once instead of redelivered. See
	// [IsPermanent] for the default.
	Permanent bool `json:"-"`

	cause error
}

// FieldError is one problem with one part of the input.
type FieldError struct {
	// Message says what is wrong.
	Message string `json:"message,omitempty" doc:"What is wrong."`
	// Location says where, such as "path.item_id", "query.limit" or
	// "body.items[3].name".
	Location string `json:"location,omitempty" doc:"Where the problem is, such as path.item_id or body.items[3].name."`
	// Value is the offending value, when it helps.
	Value any `json:"value,omitempty" doc:"The offending value."`
}

// Error implements error.
func (f *FieldError) Error() string {
	if f.Location == "" {
		return f.Message
	}
	return f.Location + ": " + f.Message
}

// NewError returns an *Error with the given HTTP status and detail.
func NewError(status int, detail string) *Error {
	return &Error{Status: status, Detail: detail}
}

// Error implements error. The text names the status, the code and the
// detail; it is what logs and callers of a typed client see.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("ferry: ")
	b.WriteString(e.code())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	for i, f := range e.Errors {
		if i == 0 {
			b.WriteString(" (")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Error())
		if i == len(e.Errors)-1 {
			b.WriteString(")")
		}
	}
	return b.String()
}

// Unwrap returns the error this one was made from, if any, so errors.Is
// and errors.As see through it. The cause is never sent to a caller.
func (e *Error) Unwrap() error { return e.cause }

// GetStatus returns the HTTP status; it satisfies huma.StatusError.
func (e *Error) GetStatus() int {
	if e.Status == 0 {
		return http.StatusInternalServerError
	}
	return e.Status
}

// GetHeaders returns the headers to send; it satisfies huma.HeadersError.
func (e *Error) GetHeaders() http.Header { return e.Header }

// ContentType maps the negotiated content type to its problem variant; it
// satisfies huma.ContentTypeFilter.
func (e *Error) ContentType(ct string) string {
	if ct == "application/json" {
		return "application/problem+json"
	}
	return ct
}

// code returns Code or the default derived from the status.
func (e *Error) code() string {
	if e.Code != "" {
		return e.Code
	}
	return StatusCode(e.GetStatus())
}

// StatusCode returns the default machine code for an HTTP status: its status
// text in snake case ("not_found", "unprocessable_entity",
// "internal_server_error").
func StatusCode(status int) string {
	text := http.StatusText(status)
	if text == "" {
		return fmt.Sprintf("status_%d", status)
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r == ' ' || r == '-':
			return '_'
		}
		return -1
	}, text)
}

// complete returns a copy of e with every default filled in (status, title,
// code) and the request ID set, ready to be written to a caller.
func (e *Error) complete(requestID string) *Error {
	c := *e
	c.Status = e.GetStatus()
	if c.Title == "" {
		c.Title = http.StatusText(c.Status)
	}
	c.Code = e.code()
	if c.RequestID == "" {
		c.RequestID = requestID
	}
	return &c
}

// permanentError marks an error as permanent; see [Permanent].
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent wraps err to say that retrying cannot fix it: an event or job
// handler returning it is not redelivered but dead-lettered at once.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether retrying err is pointless: it was wrapped
// with [Permanent], or it is an *Error marked Permanent, or an *Error with a
// 4xx status other than 408 (timeout), 425 (too early) and 429 (too many
// requests). Any other error is retried.
//
// The failure of a call to another service, a [*CallError], is never
// permanent, whatever the callee answered (404 included): the event is
// retried, since the callee's answer may change (it learns the item, its
// replica with the bug is replaced), and dead-lettered when its deliveries
// run out. A handler that knows better says so: Permanent(err) to
// dead-letter it at once, or [PassOn](err) to take the callee's problem as
// its own (a 4xx is then permanent).
func IsPermanent(err error) bool {
	if errors.As(err, new(permanentError)) {
		return true
	}
	if errors.As(err, new(*CallError)) {
		return false
	}
	var fe *Error
	if !errors.As(err, &fe) {
		return false
	}
	if fe.Permanent {
		return true
	}
	switch s := fe.GetStatus(); s {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	default:
		return s >= 400 && s < 500
	}
}

// errorFrom converts what a handler or Huma reported into an *Error:
// the failure of a downstream call (a *CallError) as 502, 503 or 504, an
// *Error as is, a huma.StatusError with its status, detail and field
// errors, a context error as 504 or 499, and anything else as a generic 500
// that keeps the original as its (never sent) cause.
// brokerUnavailable reports an error of the broker not answering: no
// answer to a JetStream request, no one to answer it yet, JetStream
// unavailable for the moment, the connection down.
func brokerUnavailable(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		(errors.As(err, &apiErr) && apiErr.Code == http.StatusServiceUnavailable)
}

func errorFrom(err error) *Error {
	var ce *CallError
	if errors.As(err, &ce) {
		return ce.boundary()
	}
	var fe *Error
	if errors.As(err, &fe) {
		return fe
	}
	var model *huma.ErrorModel
	if errors.As(err, &model) {
		out := &Error{Status: model.Status, Title: model.Title, Detail: model.Detail, Type: model.Type, Instance: model.Instance, cause: err}
		for _, d := range model.Errors {
			if d != nil {
				out.Errors = append(out.Errors, &FieldError{Message: d.Message, Location: d.Location, Value: d.Value})
			}
		}
		return out
	}
	var se huma.StatusError
	if errors.As(err, &se) {
		return &Error{Status: se.GetStatus(), Detail: se.Error(), cause: err}
	}
	switch {
	case brokerUnavailable(err):
		// The broker did not answer (a cluster electing a leader): the
		// caller's retry may succeed.
		return &Error{Status: http.StatusServiceUnavailable, Code: "broker_unavailable",
			Detail: "the broker did not answer; try again shortly", Header: http.Header{"Retry-After": {"1"}}, cause: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusGatewayTimeout, Detail: "the request's deadline was exceeded", cause: err}
	case errors.Is(err, context.Canceled):
		return &Error{Status: StatusClientClosedRequest, Detail: "the request was cancelled", cause: err}
	}
	return &Error{Status: http.StatusInternalServerError, Detail: "internal error; the request ID identifies it in the service's logs", cause: err}
}

// StatusClientClosedRequest is the status recorded for a request whose
// caller went away before it was answered (nginx's 499).
const StatusClientClosedRequest = 499

// Interface guards: *Error is what Huma expects of an error it writes.
var (
	_ huma.StatusError       = (*Error)(nil)
	_ huma.HeadersError      = (*Error)(nil)
	_ huma.ContentTypeFilter = (*Error)(nil)
)
