package ferry

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
)

// Handler runs one unit of work described by a [Request] and reports its
// outcome: nil on success, or the error the caller is answered with. The
// innermost Handler of a chain is the transport's: it decodes and validates
// the input, runs the user's typed function and writes the result; so a
// middleware that returns an error without calling next stops the request
// before any input is decoded.
type Handler func(ctx context.Context, req *Request) error

// Middleware wraps a Handler, in the spirit of net/http's
// func(http.Handler) http.Handler but for every transport: HTTP requests,
// NATS calls and event deliveries pass through the same chain.
// A middleware may add to the context, refuse the request by returning an
// error (preferably an *[Error]) without calling next, or observe next's
// outcome.
type Middleware func(next Handler) Handler

// chain composes middleware so that the first is outermost.
func chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// Recover returns the middleware that turns a panic in a handler into a 500
// error: the panic value and its stack are logged with the request ID; the
// caller gets a generic problem without either. Every service runs it
// around the transport's innermost step; http.ErrAbortHandler is re-raised so net/http can abort the
// response as it intends.
func Recover(logger *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, req *Request) (err error) {
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value compared as net/http does
					panic(v)
				}
				err = panicError(ctx, logger, req, v)
			}()
			return next(ctx, req)
		}
	}
}

// panicError logs a handler's panic value with its stack (call it in the
// deferred function that recovered it) and returns the 500 answered.
func panicError(ctx context.Context, logger *slog.Logger, req *Request, v any) *Error {
	logger.ErrorContext(ctx, "ferry: handler panicked",
		slog.String("service", req.Service), slog.String("endpoint", req.Name),
		slog.String("request_id", req.ID), slog.String("panic", panicText(req.Header, v)),
		slog.String("stack", string(debug.Stack())))
	return &Error{Status: http.StatusInternalServerError, Detail: "internal error; the request ID identifies it in the service's logs",
		cause: fmt.Errorf("ferry: panic: %v", v)}
}
