package ferry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ferrygo/ferry"
)

// BenchmarkServeHTTP is the per-request cost of an endpoint's HTTP path in
// process (no network): the service's handler, with the host's metrics on
// and off.
func BenchmarkServeHTTP(b *testing.B) {
	for _, metrics := range []string{"on", "off"} {
		b.Run("metrics="+metrics, func(b *testing.B) {
			svc := ferry.MustNew("bench", "1.0.0", quiet)
			ferry.Get(svc, "get-thing", "/things/{id}", func(_ context.Context, in *obsIn) (*obsOut, error) {
				out := &obsOut{}
				out.Body.ID = in.ID
				return out, nil
			})
			cfg := ferry.Config{Addr: "127.0.0.1:0", Metrics: metrics}
			host, err := ferry.NewHost(ferry.WithConfig(cfg), quiet)
			if err != nil {
				b.Fatal(err)
			}
			if err := host.Add(svc); err != nil {
				b.Fatal(err)
			}
			if err := host.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = host.Shutdown(context.Background()) })
			h := svc.Handler()
			req := httptest.NewRequest(http.MethodGet, "/things/42", nil)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
