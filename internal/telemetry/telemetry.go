// Package telemetry is the one seam through which Ferry's observers —
// metrics, traces, access logs, the latency statistics served over NATS —
// see every unit of work a service takes: each HTTP request (404 and 405
// included), each NATS call (undecodable ones and spent budgets included),
// each event delivery (malformed payloads, idempotent skips, deliveries past
// the limit and dead letters included). Every entry point calls Begin once
// when work arrives and End once when it is settled, whatever path settles
// it, so an observer never depends on the middleware chain being reached.
package telemetry

import (
	"context"
	"time"
)

// Kinds of work, as in Outcome.Kind.
const (
	KindEndpoint = "endpoint"
	KindEvent    = "event"
	KindJob      = "job"
	// KindStep is one attempt of a workflow step: Name is the workflow,
	// Route the step, EventID the run; Result Handled or Retried (failed).
	KindStep = "step"
)

// Results of an event delivery, as in Outcome.Result.
const (
	// Handled: the handler ran and succeeded; the message is acknowledged.
	Handled = "handled"
	// Skipped: acknowledged without running the handler (handled before,
	// by its idempotency record or before its consumer was recreated).
	Skipped = "skipped"
	// Retried: the handler failed; the message is redelivered after a
	// backoff.
	Retried = "retried"
	// DeadLettered: the message was moved to the dead-letter stream.
	DeadLettered = "dead_lettered"
	// DeadLetterFailed: the dead letter could not be stored; the message
	// stays in its stream and is tried again.
	DeadLetterFailed = "dead_letter_failed"
	// HandedBack: returned without counting an attempt (shutdown, or
	// fetched but not started).
	HandedBack = "handed_back"
	// Deferred: returned without counting an attempt because another run
	// holds its work.
	Deferred = "deferred"
	// Suspended: a workflow run's execution ended because the run waits
	// (a sleep, a signal, a child run, a step's retry); acknowledged.
	Suspended = "suspended"
)

// Delivery reports whether the work is a message taken from a stream by
// a worker — an event delivery or a job run — rather than a request.
func (o *Outcome) Delivery() bool { return o.Kind == KindEvent || o.Kind == KindJob }

// Outcome describes one unit of work. Begin sees the fields known on
// arrival; End sees them all.
type Outcome struct {
	// Kind is KindEndpoint, KindEvent, KindJob or KindStep.
	Kind string
	// Service is the name of the service that took the work.
	Service string
	// Name is the endpoint's stable name, or the subscription's consumer;
	// "" for an HTTP request no endpoint matched.
	Name string
	// Route is the bounded-cardinality label of an HTTP request: the
	// matched pattern ("GET /items/{item_id}"), or "unmatched"; for NATS
	// calls and events it is the endpoint name or the topic.
	Route string
	// Topic is the topic of an event, or the name of a job.
	Topic string
	// EventID is the message ID of an event (its Nats-Msg-Id, else its
	// stream sequence).
	EventID string
	// Transport is "http", "nats" or "memory".
	Transport string
	// Method and Path are an HTTP request's method and URL path; "" for
	// NATS calls and events.
	Method, Path string
	// RequestID is the request ID answered, or the event's request ID.
	RequestID string
	// Header reads the incoming headers (trace context); it may be nil.
	Header Header
	// Start is when the work arrived.
	Start time.Time

	// Status is the status answered to an endpoint call (200, 404, …);
	// for an event, 0 when handled and the error's status otherwise.
	Status int
	// Code is the problem code of an error answer or a failed run.
	Code string
	// Result is an event delivery's settlement (Handled, Retried, …); ""
	// for endpoint calls.
	Result string
	// Attempt is an event delivery's attempt number, from 1.
	Attempt uint64
	// Reason is the error text of a failed event run (not sent anywhere
	// outside the process).
	Reason string
	// Duration is how long the work took, from Start.
	Duration time.Duration
}

// Header is what reads a unit of work's incoming headers: http.Header,
// nats.Header, or a HeaderFunc. An interface (of map types, mostly) so
// that an observation does not allocate a closure per request.
type Header interface {
	Get(name string) string
}

// HeaderFunc is a Header made of a function.
type HeaderFunc func(name string) string

// Get implements Header.
func (f HeaderFunc) Get(name string) string { return f(name) }

// Observer sees units of work. Begin is called once when work arrives and
// may return a derived context (carrying a span, say) that the work then
// runs in; End is called once when the work is settled, with the context
// Begin returned. Both run on the work's own goroutine and must be quick
// and safe for concurrent use.
type Observer interface {
	Begin(ctx context.Context, o *Outcome) context.Context
	End(ctx context.Context, o *Outcome)
}

// Observers fans out to several observers: Begin in order (each sees the
// context the previous returned), End in reverse.
type Observers []Observer

// Begin implements Observer.
func (os Observers) Begin(ctx context.Context, o *Outcome) context.Context {
	for _, ob := range os {
		ctx = ob.Begin(ctx, o)
	}
	return ctx
}

// End implements Observer.
func (os Observers) End(ctx context.Context, o *Outcome) {
	for i := len(os) - 1; i >= 0; i-- {
		os[i].End(ctx, o)
	}
}

// Join returns one observer for obs, leaving out nils; nil when none is
// left, so the hot path can skip observation with one comparison.
func Join(obs ...Observer) Observer {
	var out Observers
	for _, ob := range obs {
		switch ob := ob.(type) {
		case nil:
		case Observers:
			out = append(out, ob...)
		default:
			out = append(out, ob)
		}
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return out
}

// Func is an Observer made of an End function, for observers that need no
// Begin.
type Func func(ctx context.Context, o *Outcome)

// Begin implements Observer.
func (Func) Begin(ctx context.Context, _ *Outcome) context.Context { return ctx }

// End implements Observer.
func (f Func) End(ctx context.Context, o *Outcome) { f(ctx, o) }
