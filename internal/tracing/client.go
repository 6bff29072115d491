package tracing

import (
	"context"
	"strconv"

	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// The client side: a new span per hop, the child of the span of the work
// being handled (the server or consumer span Begin started, or any span
// the caller put in ctx), made by that span's own tracer provider. A
// context without a span starts none: tracing is off, or the caller is
// outside traced work.

// StartCall starts the client span of a call of service's endpoint over
// NATS. It returns ctx and a nil span when ctx carries no span.
func StartCall(ctx context.Context, service, endpoint string) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.SpanContext().IsValid() {
		return ctx, nil
	}
	method := service + "/" + endpoint
	return Tracer(parent.TracerProvider()).Start(ctx, method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			semconv.RPCSystemNameKey.String(RPCSystem),
			semconv.RPCMethodKey.String(method),
		))
}

// StartPublish starts the producer span of publishing n events to topic.
// It returns ctx and a nil span when ctx carries no span.
func StartPublish(ctx context.Context, topic string, n int) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.SpanContext().IsValid() {
		return ctx, nil
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			semconv.MessagingSystemKey.String(MessagingSystem),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingOperationNameKey.String("publish"),
			semconv.MessagingDestinationNameKey.String(topic),
		)}
	if n != 1 {
		opts = append(opts, trace.WithAttributes(semconv.MessagingBatchMessageCountKey.Int(n)))
	}
	return Tracer(parent.TracerProvider()).Start(ctx, "publish "+topic, opts...)
}

// EndClient ends a client or producer span. A failed call or publish
// (failed true) has an error status with its code as error.type; status,
// when not 0, is the callee's answer (rpc.response.status_code).
func EndClient(span trace.Span, failed bool, status int, code string) {
	if span.IsRecording() {
		if status != 0 {
			span.SetAttributes(semconv.RPCResponseStatusCodeKey.String(strconv.Itoa(status)))
		}
		if failed {
			if code == "" {
				code = "error"
			}
			span.SetAttributes(semconv.ErrorTypeKey.String(code))
			span.SetStatus(codes.Error, code)
		}
	}
	span.End()
}

// SetMessageID records the message ID of a single published event.
func SetMessageID(span trace.Span, id string) {
	if span != nil && span.IsRecording() {
		span.SetAttributes(semconv.MessagingMessageIDKey.String(id))
	}
}
