package ferry

import (
	"context"
	"log/slog"
)

// Logger returns the logger for the work ctx belongs to: the service's
// logger with the service, the request ID and the endpoint (or, for an
// event, the consumer, topic and event ID) attached, and when the work is
// traced the trace and span IDs (trace_id, span_id), so a handler's lines
// can be found with the request's and its trace. Outside a Ferry handler
// it returns slog.Default().
func Logger(ctx context.Context) *slog.Logger {
	req := RequestFromContext(ctx)
	if req == nil || req.logger == nil {
		return slog.Default()
	}
	attrs := make([]any, 0, 7)
	attrs = append(attrs, slog.String("service", req.Service), slog.String("request_id", req.ID))
	if ev := EventFromContext(ctx); ev != nil {
		attrs = append(attrs, slog.String("consumer", req.Name), slog.String("topic", ev.Topic), slog.String("event_id", ev.ID))
	} else {
		attrs = append(attrs, slog.String("endpoint", req.Name))
	}
	if traceID, spanID, ok := traceAttrs(ctx); ok {
		attrs = append(attrs, traceID, spanID)
	}
	return req.logger.With(attrs...)
}
