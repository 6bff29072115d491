package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrygo/ferry/examples/shop/catalog/catalogapi"
	"github.com/ferrygo/ferry/examples/shop/orders/ordersapi"
)

// maxInFlight bounds each driver's requests in flight; a tick that finds
// them all busy is counted as skipped, not queued (the load stays open
// loop, and a stalled system shows as skipped work, not as memory).
const maxInFlight = 64

// driver issues the soak's own requests at fixed rates.
type driver struct {
	shop    *shop
	st      *stats
	http    *http.Client
	skipped atomic.Int64

	mu       sync.Mutex
	accepted []string // IDs of the orders answered 202
	seq      atomic.Int64
	failures sync.Map // kind name + error text → count (*atomic.Int64), for the report
}

// recent returns an accepted order's ID, one of the last 100, or "".
func (d *driver) recent() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := len(d.accepted)
	if n == 0 {
		return ""
	}
	return d.accepted[n-1-rand.IntN(min(n, 100))]
}

// fail records a failed request of kind k, with why.
func (d *driver) fail(k kind, why string) {
	v, _ := d.failures.LoadOrStore(kindNames[k]+": "+why, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// run issues op rate times a second until ctx ends, each in its own
// goroutine, at most maxInFlight at once, and waits for the last.
func (d *driver) run(ctx context.Context, k kind, rate float64, op func(ctx context.Context) error) {
	if rate <= 0 {
		return
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			d.skipped.Add(1)
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			start := time.Now()
			err := op(rctx)
			d.st.add(k, time.Since(start), err != nil)
			if err != nil {
				d.fail(k, err.Error())
			}
		})
	}
}

// placeOrder places one order through the gateway's HTTP API.
func (d *driver) placeOrder(ctx context.Context) error {
	p := products[rand.IntN(len(products))]
	body, _ := json.Marshal(map[string]any{"sku": p.SKU, "quantity": 1 + rand.IntN(3)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.shop.gateway+"/orders", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", d.shop.apiKey)
	req.Header.Set("Idempotency-Key", "soak-"+strconv.FormatInt(d.seq.Add(1), 10))
	raw, status, err := d.do(req)
	if err != nil {
		return err
	}
	if status != http.StatusAccepted {
		return fmt.Errorf("status %d", status)
	}
	var order ordersapi.Order
	if err := json.Unmarshal(raw, &order); err != nil || order.OrderID == "" {
		return fmt.Errorf("202 without an order")
	}
	d.mu.Lock()
	d.accepted = append(d.accepted, order.OrderID)
	d.mu.Unlock()
	return nil
}

// httpRead reads a product, or a recent order, through the gateway.
func (d *driver) httpRead(ctx context.Context) error {
	path, key := "/products/"+products[rand.IntN(len(products))].SKU, ""
	if id := d.recent(); id != "" && rand.IntN(2) == 0 {
		path, key = "/orders/"+id, d.shop.apiKey
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.shop.gateway+path, nil)
	if err != nil {
		return err
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	_, status, err := d.do(req)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("status %d", status)
	}
	return nil
}

// natsCall calls the catalog or the orders service over NATS.
func (d *driver) natsCall(ctx context.Context) error {
	if id := d.recent(); id != "" && rand.IntN(2) == 0 {
		_, err := ordersapi.Get.Call(ctx, d.shop.client, &ordersapi.OrderIDInput{OrderID: id})
		return err
	}
	_, err := catalogapi.GetProduct.Call(ctx, d.shop.client, &catalogapi.SKUInput{SKU: products[rand.IntN(len(products))].SKU})
	return err
}

// do sends req and reads the answer's body.
func (d *driver) do(req *http.Request) ([]byte, int, error) {
	resp, err := d.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return raw, resp.StatusCode, err
}
