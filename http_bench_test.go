package ferry_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/items/itemsapi"
)

// discardWriter is a ResponseWriter that keeps the status and the body's
// size, reused from request to request (as net/http reuses its buffers).
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}

func (w *discardWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

// plainItems is bench/plain's handler: the reference of the HTTP
// benchmarks, doing the items endpoint's work with the standard library.
func plainItems() http.Handler {
	type item struct {
		ItemID int64 `json:"item_id"`
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{item_id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("item_id"), 10, 64)
		if err != nil {
			w.WriteHeader(http.StatusUnprocessableEntity)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(item{ItemID: id})
	})
	return mux
}

// ferryItems is examples/items with no delay, on the bare path (no
// observer, no middleware of the service's own).
func ferryItems(b *testing.B) http.Handler {
	return newFerryItems(b, quiet).Handler()
}

func newFerryItems(b *testing.B, opts ...ferry.Option) *ferry.Service {
	svc, err := ferry.New("items", "1.0.0", opts...)
	if err != nil {
		b.Fatal(err)
	}
	ferry.Handle(svc, itemsapi.GetItem, func(_ context.Context, in *itemsapi.GetItemInput) (*itemsapi.GetItemOutput, error) {
		return &itemsapi.GetItemOutput{Body: itemsapi.Item{ItemID: in.ItemID}}, nil
	})
	return svc
}

// ferryItemsHosted is examples/items started by a host configured by cfg
// (its observers are joined when the host starts), logging at INFO into
// nothing; the benchmark calls its handler directly.
func ferryItemsHosted(cfg ferry.Config, opts ...ferry.Option) func(*testing.B) http.Handler {
	return func(b *testing.B) http.Handler {
		logger := ferry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
		svc := newFerryItems(b, append([]ferry.Option{logger}, opts...)...)
		cfg.Addr = "127.0.0.1:0"
		h, err := ferry.NewHost(ferry.WithConfig(cfg), logger)
		if err == nil {
			err = h.Add(svc)
		}
		if err == nil {
			err = h.Start(context.Background())
		}
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = h.Shutdown(context.Background()) })
		return svc.Handler()
	}
}

// BenchmarkHTTPHandler is the CPU a request spends in the handler — the
// part of the HTTP path a framework adds to, without the connection and
// net/http's parsing, which the servers share — for the items endpoint
// (GET /items/42, delay 0): Ferry's handler against bench/plain's, on the
// bare path (ferry) and with the default stack's parts switched on, and
// tracing.
// Besides ns/op (wall time) it reports cpu-ns/op, the process's CPU time
// per request (the garbage collector's included), which moves less than
// wall time on a machine other jobs share.
//
//	go test -run '^$' -bench HTTPHandler -count 6 . | tee new.txt   # then benchstat old.txt new.txt
//	go test -run '^$' -bench 'HTTPHandler/server=ferry' -cpuprofile /tmp/http.prof .
func BenchmarkHTTPHandler(b *testing.B) {
	for _, c := range []struct {
		name string
		h    func(*testing.B) http.Handler
	}{
		{"plain", func(*testing.B) http.Handler { return plainItems() }},
		{"ferry", ferryItems},
		{"ferry-default", ferryItemsHosted(ferry.Config{})}, // the host's default stack
		{"ferry-accesslog", ferryItemsHosted(ferry.Config{AccessLog: true})},
		// Every span sampled and batched, then dropped (examples/items
		// -trace-discard).
		{"ferry-tracing", ferryItemsHosted(ferry.Config{}, ferry.WithTracerProvider(
			sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}))))},
	} {
		b.Run("server="+c.name, func(b *testing.B) {
			h := c.h(b)
			base, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:8000/items/42", nil)
			if err != nil {
				b.Fatal(err)
			}
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				r := new(http.Request) // net/http makes one per request too
				*r = *base
				r.Header = http.Header{}
				w.reset()
				h.ServeHTTP(w, r)
				if w.status != http.StatusOK || w.n == 0 {
					b.Fatalf("status %d, %d bytes", w.status, w.n)
				}
			}
			if cpu := processCPU() - cpu0; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
		})
	}
}
