package ferry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
)

// CallError is the error of a call to another service's endpoint
// ([Endpoint.Call]): the callee answered with a problem, or no answer came.
// It marks the trust boundary between services. A handler that returns it
// (as it is or wrapped) does not answer its own caller with the callee's
// problem, whose field errors, instance, Retry-After and 401/403 belong to
// the call between the two services, but with one of its own, carrying the
// request ID of the request being handled:
//
//   - 504 downstream_timeout when the call's deadline passed, or the callee
//     answered 504;
//   - 503 downstream_unavailable when no instance serves the endpoint, the
//     broker connection is down, or the callee answered 503 or 429 (without
//     the callee's Retry-After);
//   - 502 downstream_error for any other problem the callee answered (400,
//     401, 403, 404, 409, 422, 500 …) or a reply that is not Ferry's.
//
// The callee's problem stays readable: Status and Code here, the whole of
// it with [CallError.Problem] or errors.As to an *[Error]. A handler that
// means to answer with it says so with [PassOn]; one that means something
// else for a status (a 404 of the catalog is a 422 of the order) returns
// its own *Error.
//
// For an event handler a CallError is never permanent (see [IsPermanent]):
// the event is retried, because the other service may answer differently
// later; wrap it with [Permanent] to dead-letter it at once.
//
// errors.Is sees through it to [ErrNoResponders], [ErrCallTimeout],
// [ErrBrokerUnavailable] and context.DeadlineExceeded.
type CallError struct {
	// Service and Endpoint name the endpoint called.
	Service, Endpoint string
	// Status is the callee's HTTP status, or the one Ferry gives a call
	// that got no answer (503 no_responders and broker_unavailable, 504
	// deadline_exceeded, 413 request_too_large, 502 bad_reply).
	Status int
	// Code is the problem's machine code, such as "not_found" or
	// "no_responders".
	Code string

	problem *Error // the callee's problem as answered, or the one made here
}

// Error implements error: the endpoint called and the problem's text. It
// is what logs see; a caller answered with the boundary's problem never
// sees it.
func (e *CallError) Error() string {
	return "ferry: call " + e.Service + "." + e.Endpoint + ": " + strings.TrimPrefix(e.problem.Error(), "ferry: ")
}

// Unwrap returns the callee's problem, so errors.As finds the *Error and
// errors.Is the sentinels it was made from.
func (e *CallError) Unwrap() error { return e.problem }

// Is reports a callee's 504 that says its handler ran out of the budget
// the call gave it (deadline_exceeded, gateway_timeout) as the call timing
// out: the callee may notice the deadline a moment before the caller does,
// and either way the call's time is up. A callee's 504 downstream_timeout
// (its own call timed out) is not this call's.
func (e *CallError) Is(target error) bool {
	if target != ErrCallTimeout && target != context.DeadlineExceeded { //nolint:errorlint // sentinels compared as errors.Is asks
		return false
	}
	return e.Status == http.StatusGatewayTimeout && (e.Code == "deadline_exceeded" || e.Code == StatusCode(http.StatusGatewayTimeout))
}

// Problem returns a copy of the callee's problem as it answered it —
// status, code, detail, field errors, instance, request ID and headers
// (Retry-After) — or, for a call that got no answer, the problem Ferry
// made for it. Returned from a handler it is answered as it is; [PassOn]
// does the same with the request ID of the request being handled.
func (e *CallError) Problem() *Error {
	p := *e.problem
	return &p
}

// PassOn returns the error a handler returns to answer its caller with
// the problem a downstream call answered, as it is: if err is (or wraps) a
// [*CallError], its [CallError.Problem] with the request ID of the request
// being handled (Ferry fills it in); any other error unchanged; nil for
// nil. Passing on is a decision about the trust boundary: the callee's
// field errors, instance and Retry-After reach the caller, and in an event
// handler a 4xx problem dead-letters the event at once ([IsPermanent]).
//
// With statuses, only a problem of one of those statuses is passed on:
// PassOn(err, http.StatusConflict) answers the callee's 409 as it is and
// any other failure as the boundary's 502, 503 or 504.
func PassOn(err error, statuses ...int) error {
	var ce *CallError
	if !errors.As(err, &ce) || (len(statuses) > 0 && !slices.Contains(statuses, ce.Status)) {
		return err
	}
	p := ce.Problem()
	p.RequestID = ""
	return p
}

// boundary returns the problem the caller of a handler that returned e is
// answered with: 502, 503 or 504 as the [CallError] doc says, keeping e
// as its (never sent) cause.
func (e *CallError) boundary() *Error {
	switch {
	case e.Status == http.StatusGatewayTimeout || errors.Is(e.problem, ErrCallTimeout):
		return &Error{Status: http.StatusGatewayTimeout, Code: "downstream_timeout",
			Detail: "a service this request depends on did not answer in time", cause: e}
	case e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests:
		return &Error{Status: http.StatusServiceUnavailable, Code: "downstream_unavailable",
			Detail: "a service this request depends on is unavailable; try again later", cause: e}
	}
	return &Error{Status: http.StatusBadGateway, Code: "downstream_error",
		Detail: "a service this request depends on failed; the request ID identifies it in the service's logs", cause: e}
}

// callFailed returns the *CallError of a call to service.endpoint that
// failed with problem.
func callFailed(service, endpoint string, problem *Error) *CallError {
	return &CallError{Service: service, Endpoint: endpoint, Status: problem.GetStatus(), Code: problem.code(), problem: problem}
}

// transportError maps a failure to send a call or to get its answer to
// the error its caller gets: a *CallError, or the context's error when the
// caller cancelled.
func transportError(ctx context.Context, service, endpoint, hint string, err error) error {
	target := service + "." + endpoint
	var p *Error
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		p = &Error{Status: http.StatusServiceUnavailable, Code: "no_responders",
			Detail: "no instance of service " + service + " serves " + endpoint + hint, cause: errors.Join(ErrNoResponders, err)}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		p = &Error{Status: http.StatusGatewayTimeout, Code: "deadline_exceeded",
			Detail: "no answer from " + target + " within the call's deadline", cause: errors.Join(ErrCallTimeout, context.DeadlineExceeded)}
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("ferry: call %s: %w", target, ctx.Err())
	case errors.Is(err, nats.ErrMaxPayload):
		p = &Error{Status: http.StatusRequestEntityTooLarge, Code: "request_too_large",
			Detail: "the request exceeds the broker's max payload", cause: err}
	default:
		p = &Error{Status: http.StatusServiceUnavailable, Detail: "call " + target + " failed: " + err.Error(), cause: err}
	}
	return callFailed(service, endpoint, p)
}

// badReply is the *CallError of a reply that cannot be read: not a Ferry
// responder's, or an output that does not decode.
func badReply(service, endpoint string, err error) *CallError {
	return callFailed(service, endpoint, &Error{Status: http.StatusBadGateway, Code: "bad_reply",
		Detail: "the reply of " + service + "." + endpoint + " cannot be read: " + err.Error(), cause: err})
}
