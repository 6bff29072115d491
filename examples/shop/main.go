// Command shop is a shop of four microservices — gateway, catalog, orders
// and worker — that talk over NATS and keep their state in JetStream. By
// default it runs all four in one process on an embedded broker, seeds
// the catalog and prints where to look; -service runs one of them, as
// many processes as you like, against FERRY_NATS_URL (a NATS cluster) or
// a broker another process shares through -data-dir.
//
//	go run ./examples/shop                                  # the whole shop on http://localhost:8000
//	go run ./examples/shop -load 1000                       # place 1000 orders, check the stores, print figures
//	FERRY_NATS_URL=nats://… go run ./examples/shop -service orders
//
// See examples/shop/README.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/dashboard"
	"github.com/ferrygo/ferry/examples/shop/catalog"
	"github.com/ferrygo/ferry/examples/shop/catalog/catalogapi"
	"github.com/ferrygo/ferry/examples/shop/gateway"
	"github.com/ferrygo/ferry/examples/shop/load"
	"github.com/ferrygo/ferry/examples/shop/orders"
	"github.com/ferrygo/ferry/examples/shop/worker"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "shop:", err)
		os.Exit(1)
	}
}

// seed is the catalog a new shop starts with.
var seed = []catalogapi.StockInput{
	{SKU: "mug", Name: "Mug", Price: 1250, Quantity: 100000},
	{SKU: "shirt", Name: "T-shirt", Price: 2500, Quantity: 50000},
	{SKU: "poster", Name: "Poster", Price: 900, Quantity: 20000},
	{SKU: "kettle", Name: "Kettle", Price: 2900, Quantity: 25},
}

func run(ctx context.Context, args []string) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	fs := flag.NewFlagSet("shop", flag.ContinueOnError)
	apiKey := fs.String("api-key", os.Getenv("SHOP_API_KEY"), "the API key the gateway accepts (env SHOP_API_KEY; empty: one is made and printed)")
	payFailure := fs.Float64("payment-failure", 0, "share of payments the simulated payment service declines, 0 to 1 (with -load: 0.1 unless given)")
	payDelay := fs.Duration("payment-delay", 20*time.Millisecond, "time a simulated payment takes")
	invoiceDelay := fs.Duration("invoice-delay", 50*time.Millisecond, "time writing an invoice takes (simulated I/O)")
	orderCount := fs.Int("load", 0, "place this many orders through the gateway, check the stores, print the figures and exit")
	concurrency := fs.Int("concurrency", 16, "requests in flight at once with -load")
	dashAddr := fs.String("dashboard", dashboard.DefaultAddr, `where the gateway's process serves the live dashboard ("off": not at all)`)
	refuseSKU := fs.String("refuse-sku", "", "the worker dead-letters the order-placed event of an order of this product, until it is replayed (try it with the dashboard)")
	var loadErr error
	return errors.Join(ferry.RunSystem(ctx, fs, args,
		ferry.Part{Name: "gateway",
			New: func() (*ferry.Service, error) {
				if *apiKey == "" {
					*apiKey = newKey()
				}
				return gateway.New([]ferry.APIKey{{Name: "shop", Hash: ferry.HashAPIKey(*apiKey)}})
			},
			Started: func(ctx context.Context, svc *ferry.Service) error {
				base := "http://" + hostPort(svc)
				if *orderCount == 0 {
					fmt.Printf("\nshop: the API is %s (docs %[1]s/docs, metrics %[1]s/metrics); API key %s\n", base, *apiKey)
					fmt.Printf("try:  curl -si %s/orders -H 'X-API-Key: %s' -H 'Content-Type: application/json' -d '{\"sku\":\"mug\",\"quantity\":2}'\n", base, *apiKey)
					fmt.Printf("then: curl -s %s/orders/<order_id> -H 'X-API-Key: %s'    (or …/events to follow it)\n", base, *apiKey)
					fmt.Println("ops:  go run ./cmd/ferry services    (in this directory; also call, tail, dlq, jobs, runs: docs/cli.md)")
					return serveDashboard(ctx, svc.Client(), *dashAddr)
				}
				loadErr = drive(ctx, svc, base, *apiKey, *orderCount, *concurrency)
				stop()
				return nil
			}},
		ferry.Part{Name: "catalog",
			New: func() (*ferry.Service, error) { return catalog.New() },
			Started: func(ctx context.Context, svc *ferry.Service) error {
				for _, p := range seed {
					p.IfNew = true
					if _, err := catalogapi.AddStock.Call(ctx, svc.Client(), &p); err != nil {
						return fmt.Errorf("seed the catalog: %w", err)
					}
				}
				return nil
			}},
		ferry.Part{Name: "orders", New: func() (*ferry.Service, error) {
			failure := *payFailure
			if *orderCount > 0 && !given(fs, "payment-failure") {
				failure = 0.1 // a load shows declined payments and their compensations
			}
			return orders.New(orders.Settings{PaymentFailure: failure, PaymentDelay: *payDelay})
		}},
		ferry.Part{Name: "worker", New: func() (*ferry.Service, error) {
			return worker.New(worker.Settings{InvoiceDelay: *invoiceDelay, RefuseSKU: *refuseSKU})
		}},
	), loadErr)
}

// serveDashboard serves the live dashboard on addr until ctx ends, unless
// addr is "off".
func serveDashboard(ctx context.Context, c *ferry.Client, addr string) error {
	if addr == "off" {
		fmt.Println()
		return nil
	}
	d, err := dashboard.Start(ctx, c, dashboard.Config{Addr: addr})
	if err != nil {
		return err
	}
	fmt.Printf("dashboard: %s\n\n", d.URL())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return d.Shutdown(sctx)
}

// drive places n orders through the gateway at base, prints what it
// measured and checks the stores.
func drive(ctx context.Context, svc *ferry.Service, base, key string, n, concurrency int) error {
	fmt.Printf("shop: placing %d orders through %s, %d at a time\n", n, base, concurrency)
	// The catalog may still be seeding.
	for {
		if _, err := catalogapi.GetProduct.Call(ctx, svc.Client(), &catalogapi.SKUInput{SKU: seed[len(seed)-1].SKU}); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	report, err := load.Run(ctx, load.Options{URLs: []string{base}, APIKey: key, Orders: n, Concurrency: concurrency, Client: svc.Client(), Seed: uint64(time.Now().UnixNano())})
	if err != nil {
		return err
	}
	fmt.Print(report)
	bad, err := load.Check(ctx, svc.Client(), report.Orders)
	if err != nil {
		return err
	}
	for _, b := range bad {
		fmt.Println("VIOLATION:", b)
	}
	if len(bad) > 0 || report.Unfinished > 0 {
		return fmt.Errorf("%d invariant violations, %d unfinished orders", len(bad), report.Unfinished)
	}
	fmt.Println("invariants: hold (every accepted order ended; none invoiced twice; stock + reserved + sold = received)")
	return nil
}

// given reports whether the command line set the flag.
func given(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// hostPort is where svc listens, as a client reaches it.
func hostPort(svc *ferry.Service) string {
	addr := svc.Addr().String()
	if len(addr) > 5 && addr[:5] == "[::]:" {
		return "localhost:" + addr[5:]
	}
	if len(addr) > 8 && addr[:8] == "0.0.0.0:" {
		return "localhost:" + addr[8:]
	}
	return addr
}

// newKey makes an API key for a shop run without one.
func newKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "shop_" + hex.EncodeToString(b)
}
