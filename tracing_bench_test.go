package ferry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// discard is a span exporter that drops what it is given: tracing on, to
// a no-op exporter.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkTracing measures what tracing costs a request: an HTTP request
// to a 0-delay JSON endpoint served in process (the host's handler, no
// network), and a call over NATS on the embedded broker, with tracing off
// and on (every span sampled, batched, exported to a no-op exporter).
func BenchmarkTracing(b *testing.B) {
	for _, tracing := range []string{"off", "on"} {
		var opts []ferry.Option
		if tracing == "on" {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}))
			b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			opts = append(opts, ferry.WithTracerProvider(tp))
		}
		svc := ferry.MustNew("catalog", "1.0.0", ferry.WithNATS(), quiet)
		ferry.Handle(svc, reserveEndpoint, func(_ context.Context, in *reserveIn) (*reserveOut, error) {
			out := &reserveOut{}
			out.Body.ID = in.ID
			return out, nil
		})
		h, err := ferry.NewHost(append([]ferry.Option{quiet, ferry.WithConfig(ferrytest.Config(b))}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		if err := h.Add(svc); err != nil {
			b.Fatal(err)
		}
		if err := h.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = h.Shutdown(context.Background()) })
		b.Run("transport=http/tracing="+tracing, func(b *testing.B) {
			b.ReportAllocs()
			handler := svc.Handler()
			for b.Loop() {
				w := httptest.NewRecorder()
				handler.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/reserve/7", nil))
				if w.Code != http.StatusOK {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
		b.Run("transport=nats/tracing="+tracing, func(b *testing.B) {
			b.ReportAllocs()
			client := ferry.NewClient(h.NATS())
			for b.Loop() {
				if _, err := reserveEndpoint.Call(context.Background(), client, &reserveIn{ID: 7}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
