package ferry

// Per-endpoint timeouts (Endpoint.Timeout): the handler runs on its own
// goroutine, so that the caller is answered 504 when the timeout passes
// even if the handler does not heed its context.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sync"
	"time"
)

// errEndpointTimeout is the cause of a handler's context that its
// endpoint's Timeout ended.
var errEndpointTimeout = errors.New("ferry: the endpoint's timeout passed")

// withTimeout returns fn bounded by the endpoint's timeout d: fn runs on
// a goroutine of its own with a context that ends after d; the call
// returns fn's result if it comes first, or else a 504 deadline_exceeded
// (499 when the caller left) at once, and fn goes on until it returns,
// holding the call's slot of the concurrency limit, its panics recovered
// and logged.
func withTimeout[In, Out any](s *Service, name string, d time.Duration, fn func(context.Context, *In) (*Out, error)) func(context.Context, *In) (*Out, error) {
	rawBody := rawBodyIndex(reflect.TypeFor[In]())
	return func(ctx context.Context, in *In) (*Out, error) {
		ctx, cancel := context.WithTimeoutCause(ctx, d, errEndpointTimeout)
		if rawBody != nil && in != nil {
			// Huma returns the buffer to its pool once the call is answered.
			f := reflect.ValueOf(in).Elem().FieldByIndex(rawBody)
			f.SetBytes(append([]byte(nil), f.Bytes()...))
		}
		r := &timedRun[Out]{done: make(chan struct{})}
		req := RequestFromContext(ctx)
		go func() {
			defer cancel()
			defer r.finish()
			defer func() {
				if v := recover(); v != nil {
					preq := req
					if preq == nil {
						preq = &Request{Service: s.name, Name: name}
					}
					r.err = panicError(ctx, s.logger, preq, v)
				}
			}()
			r.out, r.err = fn(ctx, in)
		}()
		select {
		case <-r.done:
		case <-ctx.Done():
		}
		if !r.abandon(req, s.logger, d) {
			if r.err != nil && errors.Is(r.err, context.DeadlineExceeded) && context.Cause(ctx) == errEndpointTimeout {
				return nil, timeoutError(s.name, name, d)
			}
			return r.out, r.err
		}
		attrs := []any{slog.String("service", s.name), slog.String("endpoint", name), slog.Duration("timeout", d)}
		if req != nil {
			attrs = append(attrs, slog.String("request_id", req.ID))
		}
		switch {
		case context.Cause(ctx) == errEndpointTimeout:
			s.logger.WarnContext(ctx, "ferry: handler still running past its endpoint's timeout; answered 504, its place in the concurrency limit kept until it returns", attrs...)
			return nil, timeoutError(s.name, name, d)
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			s.logger.InfoContext(ctx, "ferry: handler still running past its call's deadline; answered 504", attrs...)
			return nil, &Error{Status: http.StatusGatewayTimeout, Code: "deadline_exceeded", Detail: "the call's deadline passed before " + s.name + "." + name + " finished"}
		}
		return nil, errorFrom(ctx.Err())
	}
}

// timedRun is one run of a handler under a timeout.
type timedRun[Out any] struct {
	out *Out
	err error

	done     chan struct{} // closed when the handler has returned
	mu       sync.Mutex
	finished bool
	onDone   func() // set when the call was answered without it
}

// finish records that the handler returned and runs what its abandonment
// left to do.
func (r *timedRun[Out]) finish() {
	r.mu.Lock()
	r.finished = true
	f := r.onDone
	r.mu.Unlock()
	close(r.done)
	if f != nil {
		f()
	}
}

// abandon reports whether the handler is still running, and if so leaves
// it the call's slot of the concurrency limit to release when it returns.
// It runs on the call's goroutine.
func (r *timedRun[Out]) abandon(req *Request, logger *slog.Logger, d time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return false
	}
	release := func() {}
	if req != nil {
		release = req.slot.keep()
	}
	start := time.Now()
	r.onDone = func() {
		release()
		if req != nil {
			logger.Info("ferry: handler returned after its call was answered", slog.String("service", req.Service),
				slog.String("endpoint", req.Name), slog.String("request_id", req.ID), slog.Duration("late_by", time.Since(start)))
		}
	}
	return true
}

func timeoutError(service, name string, d time.Duration) *Error {
	return &Error{Status: http.StatusGatewayTimeout, Code: "deadline_exceeded",
		Detail: fmt.Sprintf("%s.%s did not finish within its timeout of %s", service, name, d)}
}

// rawBodyIndex returns the index of In's RawBody field when it is a byte
// slice, or nil.
func rawBodyIndex(t reflect.Type) []int {
	if t.Kind() != reflect.Struct {
		return nil
	}
	if f, ok := t.FieldByName("RawBody"); ok && f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Uint8 {
		return f.Index
	}
	return nil
}
