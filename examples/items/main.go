// Command items is the seed's FastAPI service, in Ferry: GET
// /items/{item_id} waits one second of simulated I/O, then answers
// {"item_id": N}. A non-integer ID gets a 422 problem; the OpenAPI document
// is at /openapi.json and the interactive docs at /docs.
//
//	go run ./examples/items                # listens on :8000
//	go run ./examples/items -addr :9000 -delay 0
//	PORT=9000 go run ./examples/items
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/items/itemsapi"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("items", flag.ContinueOnError)
	delay := fs.Duration("delay", time.Second, "simulated I/O wait of each request")
	discard := fs.Bool("trace-discard", false, "trace every request, exporting the spans to nowhere (for bench/http.sh: the cost of the spans alone)")
	cfg, err := ferry.LoadConfig(fs, args)
	if err != nil {
		return err
	}
	opts := []ferry.Option{ferry.WithConfig(cfg)}
	if *discard {
		// As OTEL_TRACES_EXPORTER would configure it — every span sampled,
		// batched — but handed to an exporter that drops it.
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}))
		defer func() { _ = tp.Shutdown(context.WithoutCancel(ctx)) }()
		opts = append(opts, ferry.WithTracerProvider(tp))
	}
	svc, err := newService(*delay, opts...)
	if err != nil {
		return err
	}
	return ferry.Run(ctx, svc)
}

// discardExporter is a span exporter that drops every span.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// newService builds the items service with the given simulated wait.
func newService(delay time.Duration, opts ...ferry.Option) (*ferry.Service, error) {
	svc, err := ferry.New("items", "1.0.0", append([]ferry.Option{
		ferry.WithDescription("The seed's asynchronous items service."),
	}, opts...)...)
	if err != nil {
		return nil, err
	}
	ferry.Handle(svc, itemsapi.GetItem, getItem(delay))
	return svc, nil
}

// getItem waits for the simulated I/O — giving up when the caller does —
// and answers the item.
func getItem(delay time.Duration) func(context.Context, *itemsapi.GetItemInput) (*itemsapi.GetItemOutput, error) {
	return func(ctx context.Context, in *itemsapi.GetItemInput) (*itemsapi.GetItemOutput, error) {
		if delay > 0 {
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return &itemsapi.GetItemOutput{Body: itemsapi.Item{ItemID: in.ItemID}}, nil
	}
}
