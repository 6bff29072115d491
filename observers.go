package ferry

import (
	"context"
	"log/slog"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/ferrygo/ferry/internal/lifecycle"
	"github.com/ferrygo/ferry/internal/telemetry"
)

// observability is the host's first component: it gives every service the
// host's observers before anything serves, and is closed last, after the
// broker, so what the observers hold (exporters) is flushed at the very
// end of a shutdown.
type observability struct {
	h     *Host
	built []*sdktrace.TracerProvider // built from the environment (tracing.go)
}

var _ lifecycle.Component = (*observability)(nil)

func (h *Host) observabilityComponent() lifecycle.Component { return &observability{h: h} }

// Name implements lifecycle.Component.
func (c *observability) Name() string { return "observability" }

// Start implements lifecycle.Component.
func (c *observability) Start(ctx context.Context) error {
	h := c.h
	hm := h.startMetrics()
	for _, s := range h.services {
		var log telemetry.Observer
		if h.config.AccessLog || s.logger.Enabled(context.Background(), slog.LevelDebug) {
			log = accessLog(s.logger, h.config.AccessLog)
		}
		traces, err := c.tracingObserver(ctx, s)
		if err != nil {
			_ = c.closeTracing(ctx)
			return err
		}
		s.observer.store(telemetry.Join(traces, log, hm.observer(s, traces != nil), s.testObserver))
		h.expose(s)
	}
	return nil
}

// StopIntake implements lifecycle.Component.
func (c *observability) StopIntake() {}

// Drain implements lifecycle.Component.
func (c *observability) Drain(context.Context) error { return nil }

// Close implements lifecycle.Component.
func (c *observability) Close(ctx context.Context) error { return c.closeTracing(ctx) }

// accessLog is the observer that logs each request and delivery: at INFO
// when the access log is on, else at DEBUG when the logger logs it.
func accessLog(logger *slog.Logger, on bool) telemetry.Observer {
	level := slog.LevelDebug
	if on {
		level = slog.LevelInfo
	}
	return telemetry.Func(func(ctx context.Context, o *telemetry.Outcome) {
		if !logger.Enabled(ctx, level) {
			return
		}
		attrs := make([]slog.Attr, 0, 10)
		attrs = append(attrs, slog.String("service", o.Service), slog.String("transport", o.Transport))
		msg := "ferry: request"
		if o.Delivery() {
			msg = "ferry: delivery"
			attrs = append(attrs, slog.String("consumer", o.Name), slog.String("topic", o.Topic), slog.String("event_id", o.EventID),
				slog.String("result", o.Result), slog.Uint64("attempt", o.Attempt))
		} else {
			attrs = append(attrs, slog.String("route", o.Route), slog.Int("status", o.Status))
			if o.Name != "" {
				attrs = append(attrs, slog.String("endpoint", o.Name))
			}
		}
		if o.Code != "" {
			attrs = append(attrs, slog.String("code", o.Code))
		}
		attrs = append(attrs, slog.Duration("duration", o.Duration), slog.String("request_id", o.RequestID))
		if traceID, spanID, ok := traceAttrs(ctx); ok {
			attrs = append(attrs, traceID, spanID)
		}
		logger.LogAttrs(ctx, level, msg, attrs...)
	})
}
