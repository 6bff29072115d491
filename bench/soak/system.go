package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/shop/catalog"
	"github.com/ferrygo/ferry/examples/shop/catalog/catalogapi"
	"github.com/ferrygo/ferry/examples/shop/gateway"
	"github.com/ferrygo/ferry/examples/shop/orders"
	"github.com/ferrygo/ferry/examples/shop/orders/ordersapi"
	"github.com/ferrygo/ferry/examples/shop/worker"
)

// products are the soak's catalog: stock enough that no order is refused.
var products = []catalogapi.StockInput{
	{SKU: "mug", Name: "Mug", Price: 1250, Quantity: 1_000_000},
	{SKU: "shirt", Name: "T-shirt", Price: 2500, Quantity: 1_000_000},
	{SKU: "poster", Name: "Poster", Price: 900, Quantity: 1_000_000},
}

// shop is the example system started in this process.
type shop struct {
	host    *ferry.Host
	client  *ferry.Client
	gateway string // base URL
	apiKey  string
	dataDir string
}

// startShop starts the shop's four services on an embedded broker in a
// fresh data directory; every service's work passes through count.
func startShop(ctx context.Context, count ferry.Middleware, paymentFailure float64) (*shop, error) {
	dir, err := os.MkdirTemp("", "ferry-soak-")
	if err != nil {
		return nil, err
	}
	s := &shop{dataDir: dir, apiKey: "soak-key-0123456789abcdef"}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	cfg := ferry.Config{Addr: "127.0.0.1:0", NATSEmbed: true, DataDir: dir, LogLevel: slog.LevelError}
	h, err := ferry.NewHost(ferry.WithConfig(cfg), ferry.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	mw := ferry.WithMiddleware(count)
	gw, err := gateway.New([]ferry.APIKey{{Name: "soak", Hash: ferry.HashAPIKey(s.apiKey)}}, mw)
	if err != nil {
		return nil, err
	}
	cat, err := catalog.New(mw)
	if err != nil {
		return nil, err
	}
	ord, err := orders.New(orders.Settings{PaymentFailure: paymentFailure, PaymentDelay: 20 * time.Millisecond}, mw)
	if err != nil {
		return nil, err
	}
	wrk, err := worker.New(worker.Settings{InvoiceDelay: 50 * time.Millisecond}, mw)
	if err != nil {
		return nil, err
	}
	if err := h.Add(gw, cat, ord, wrk); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := h.Start(sctx); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	s.host = h
	s.client = ferry.NewClient(h.NATS())
	s.gateway = "http://" + gw.Addr().String()
	for _, p := range products {
		p.IfNew = true
		if _, err := catalogapi.AddStock.Call(sctx, s.client, &p); err != nil {
			_ = s.stop()
			return nil, fmt.Errorf("seed the catalog: %w", err)
		}
	}
	return s, nil
}

// stop shuts the shop down and removes its data directory.
func (s *shop) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.host.Shutdown(ctx)
	_ = os.RemoveAll(s.dataDir)
	return err
}

// workflowNames are the workflows among the shop's jobs: a KindJob
// request of one of these names is a workflow execution.
var workflowNames = map[string]bool{ordersapi.PlaceOrder.Name: true}

// counting returns the middleware that records every event delivery, job
// run and workflow execution the services handle, with its duration.
func counting(st *stats) ferry.Middleware {
	return func(next ferry.Handler) ferry.Handler {
		return func(ctx context.Context, req *ferry.Request) error {
			var k kind
			switch {
			case req.Kind == ferry.KindEvent:
				k = kindEvent
			case req.Kind == ferry.KindJob && workflowNames[req.Name]:
				k = kindWorkflow
			case req.Kind == ferry.KindJob:
				k = kindJob
			default:
				return next(ctx, req)
			}
			start := time.Now()
			err := next(ctx, req)
			st.add(k, time.Since(start), err != nil)
			return err
		}
	}
}
