// Package load drives the shop: it places orders through the gateway's
// HTTP API with bounded concurrency, waits until each accepted order has
// ended, and measures orders/s and the time from request to invoiced.
// [Check] then verifies the shop's invariants by reading its stores.
package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/shop/catalog/catalogapi"
	"github.com/ferrygo/ferry/examples/shop/orders/ordersapi"
)

// Options say what load to drive.
type Options struct {
	// URLs are the base URLs of the gateway's replicas, such as
	// http://127.0.0.1:8000; orders go to each in turn.
	URLs []string
	// APIKey is a key the gateway accepts.
	APIKey string
	// Orders is how many orders to place; Concurrency how many requests
	// are in flight at once (default 16).
	Orders, Concurrency int
	// Client reads the orders while they run (the orders service's view,
	// over NATS).
	Client *ferry.Client
	// Wait bounds the wait for accepted orders to end (default 2 minutes).
	Wait time.Duration
	// Seed makes the products and quantities ordered reproducible.
	Seed uint64
}

// Report is what a load run measured.
type Report struct {
	// Accepted orders got their 202; Refused a 409 (out of stock);
	// Errors any other answer or none (a request the driver could not
	// place: a 5xx or no answer is retried with the same Idempotency-Key
	// for about 11s first).
	Accepted, Refused, Errors int
	// Invoiced, Failed and Cancelled count the accepted orders by how
	// they ended; Unfinished those that had not ended by the wait's end.
	Invoiced, Failed, Cancelled, Unfinished int
	// Elapsed is from the first request to the last order's end.
	Elapsed time.Duration
	// OrdersPerSecond is invoiced orders over Elapsed.
	OrdersPerSecond float64
	// P50 and P99 are the time from request to invoiced.
	P50, P99 time.Duration
	// Orders are the accepted orders' IDs, for [Check]; Pending those
	// that had not ended when the wait was over.
	Orders, Pending []string
	// Start is when the first request was sent; Done is when each
	// invoiced order was invoiced (by the order's record), in order.
	Start time.Time
	Done  []time.Time
	// FirstError is the first unexpected answer, if any.
	FirstError string
}

// Run drives the load and waits for the accepted orders to end.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.Wait <= 0 {
		o.Wait = 2 * time.Minute
	}
	if len(o.URLs) == 0 {
		return nil, fmt.Errorf("load: no gateway URL")
	}
	products, err := products(ctx, o.URLs[0])
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x5eed))
	type job struct {
		sku, key, url string
		qty           int
	}
	jobs := make(chan job)
	go func() {
		defer close(jobs)
		for i := range o.Orders {
			j := job{sku: products[rng.IntN(len(products))], qty: 1 + rng.IntN(3), key: fmt.Sprintf("load-%d-%d", o.Seed, i), url: o.URLs[i%len(o.URLs)]}
			select {
			case jobs <- j:
			case <-ctx.Done():
				return
			}
		}
	}()
	r := &Report{Start: time.Now()}
	started := map[string]time.Time{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for range o.Concurrency {
		wg.Go(func() {
			for j := range jobs {
				begin := time.Now()
				id, status, detail := place(ctx, client, j.url, o.APIKey, j.sku, j.qty, j.key)
				mu.Lock()
				switch {
				case status == http.StatusAccepted:
					r.Accepted++
					r.Orders = append(r.Orders, id)
					started[id] = begin
				case status == http.StatusConflict:
					r.Refused++
				default:
					r.Errors++
					if r.FirstError == "" {
						r.FirstError = fmt.Sprintf("%d %s", status, detail)
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	ended, err := waitEnded(ctx, o.Client, r.Orders, o.Wait)
	if err != nil {
		return nil, err
	}
	var latencies []time.Duration
	last := r.Start
	for _, id := range r.Orders {
		order := ended[id]
		switch {
		case order == nil:
			r.Unfinished++
			r.Pending = append(r.Pending, id)
			continue
		case order.State == ordersapi.StateInvoiced:
			r.Invoiced++
			latencies = append(latencies, order.UpdatedAt.Sub(started[id]))
			r.Done = append(r.Done, order.UpdatedAt)
		case order.State == ordersapi.StateFailed:
			r.Failed++
		case order.State == ordersapi.StateCancelled:
			r.Cancelled++
		}
		if order.UpdatedAt.After(last) {
			last = order.UpdatedAt
		}
	}
	slices.SortFunc(r.Done, func(a, b time.Time) int { return a.Compare(b) })
	r.Elapsed = last.Sub(r.Start)
	if r.Elapsed > 0 {
		r.OrdersPerSecond = float64(r.Invoiced) / r.Elapsed.Seconds()
	}
	slices.Sort(latencies)
	if n := len(latencies); n > 0 {
		r.P50, r.P99 = latencies[n/2], latencies[min(n-1, n*99/100)]
	}
	return r, nil
}

// products returns the SKUs the gateway lists.
func products(ctx context.Context, url string) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/products", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("load: list products: %w", err)
	}
	defer resp.Body.Close()
	var list catalogapi.ProductList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("load: list products: status %d: %v", resp.StatusCode, err)
	}
	var skus []string
	for _, p := range list.Products {
		skus = append(skus, p.SKU)
	}
	if len(skus) == 0 {
		return nil, fmt.Errorf("load: the catalog has no products")
	}
	return skus, nil
}

// place places one order, retrying a request that got no answer or a 5xx
// with the same Idempotency-Key (so a retry places no second order). It
// returns the order's ID, the last status (0: no answer) and its body.
func place(ctx context.Context, client *http.Client, url, apiKey, sku string, qty int, key string) (string, int, string) {
	body, _ := json.Marshal(map[string]any{"sku": sku, "quantity": qty})
	status, detail := 0, ""
	for attempt := range 8 { // ~11s of retries: a client outlasting a leader election
		if attempt > 0 {
			select {
			case <-time.After(min(time.Duration(attempt)*500*time.Millisecond, 2*time.Second)):
			case <-ctx.Done():
				return "", 0, ctx.Err().Error()
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/orders", bytes.NewReader(body))
		if err != nil {
			return "", 0, err.Error()
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", apiKey)
		req.Header.Set("Idempotency-Key", key)
		resp, err := client.Do(req)
		if err != nil {
			status, detail = 0, err.Error()
			continue
		}
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		status, detail = resp.StatusCode, string(raw)
		if status == http.StatusAccepted {
			var order ordersapi.Order
			if err := json.Unmarshal(raw, &order); err != nil || order.OrderID == "" {
				return "", 0, "202 without an order: " + string(raw)
			}
			return order.OrderID, status, ""
		}
		if status < 500 {
			break
		}
	}
	return "", status, detail
}

// waitEnded polls the accepted orders until each has ended or wait is
// over, and returns the ended ones by ID.
func waitEnded(ctx context.Context, c *ferry.Client, ids []string, wait time.Duration) (map[string]*ordersapi.Order, error) {
	deadline := time.Now().Add(wait)
	ended := map[string]*ordersapi.Order{}
	pending := slices.Clone(ids)
	for len(pending) > 0 && time.Now().Before(deadline) {
		var mu sync.Mutex
		var still []string
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for _, id := range pending {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				order, err := ordersapi.Get.Call(ctx, c, &ordersapi.OrderIDInput{OrderID: id})
				mu.Lock()
				defer mu.Unlock()
				if err == nil && order.Terminal() {
					ended[id] = order
					return
				}
				still = append(still, id)
			})
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pending = still
		if len(pending) > 0 {
			time.Sleep(250 * time.Millisecond)
		}
	}
	return ended, nil
}

// String is the report in a few lines.
func (r *Report) String() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "orders: %d accepted, %d refused (out of stock), %d errors\n", r.Accepted, r.Refused, r.Errors)
	fmt.Fprintf(&b, "ended:  %d invoiced, %d failed (payment declined or stock gone), %d cancelled, %d unfinished\n", r.Invoiced, r.Failed, r.Cancelled, r.Unfinished)
	fmt.Fprintf(&b, "speed:  %.0f orders/s invoiced over %s; request to invoiced p50 %s, p99 %s\n",
		r.OrdersPerSecond, r.Elapsed.Round(time.Millisecond), r.P50.Round(time.Millisecond), r.P99.Round(time.Millisecond))
	if r.FirstError != "" {
		fmt.Fprintf(&b, "first error: %s\n", r.FirstError)
	}
	return b.String()
}

// Rate is invoiced orders per second between from and to.
func (r *Report) Rate(from, to time.Time) float64 {
	if !to.After(from) {
		return 0
	}
	n := 0
	for _, t := range r.Done {
		if !t.Before(from) && t.Before(to) {
			n++
		}
	}
	return float64(n) / to.Sub(from).Seconds()
}
