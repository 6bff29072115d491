package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/checkout/checkoutapi"
	"github.com/ferrygo/ferry/examples/checkout/inventoryapi"
)

// store is the inventory's state, in memory.
type store struct {
	mu        sync.Mutex
	available map[string]int    // by SKU
	sales     map[string]uint64 // by order ID: the delivery of its event that recorded it
}

// newStore returns a store with a little stock.
func newStore() *store {
	return &store{available: map[string]int{"kettle": 10, "teapot": 5}, sales: map[string]uint64{}}
}

// newInventory serves st's stock and records the sales of completed
// checkouts, failing the first failFirst deliveries of each to show the
// retries.
func newInventory(st *store, failFirst int) *ferry.Service {
	svc := ferry.MustNew("inventory", "1.0.0", ferry.WithNATS(), ferry.WithDescription("Stock on hand."))
	ferry.Handle(svc, inventoryapi.GetStock, func(ctx context.Context, in *inventoryapi.GetStockInput) (*inventoryapi.Stock, error) {
		st.mu.Lock()
		defer st.mu.Unlock()
		n, ok := st.available[in.SKU]
		if !ok {
			return nil, &ferry.Error{Status: http.StatusNotFound, Code: "unknown_sku", Detail: "no product " + in.SKU}
		}
		return &inventoryapi.Stock{SKU: in.SKU, Available: n}, nil
	})
	ferry.Handle(svc, inventoryapi.Reserve, func(ctx context.Context, in *inventoryapi.Reservation) (*inventoryapi.Stock, error) {
		st.mu.Lock()
		defer st.mu.Unlock()
		if n := st.available[in.SKU]; n < in.Qty {
			return nil, &ferry.Error{Status: http.StatusConflict, Code: "insufficient_stock", Detail: fmt.Sprintf("%d %s available, %d asked", n, in.SKU, in.Qty)}
		}
		st.available[in.SKU] -= in.Qty
		return &inventoryapi.Stock{SKU: in.SKU, Available: st.available[in.SKU]}, nil
	})
	ferry.Subscribe(svc, checkoutapi.Completed, "record-sale", func(ctx context.Context, e *checkoutapi.CheckoutCompleted) error {
		delivery := ferry.EventFromContext(ctx).Delivery
		if delivery <= uint64(failFirst) {
			return fmt.Errorf("failing delivery %d of %d on purpose (-fail-first)", delivery, failFirst)
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		st.sales[e.OrderID] = delivery
		ferry.Logger(ctx).Info("sale recorded", "order_id", e.OrderID, "sku", e.SKU, "qty", e.Qty)
		return nil
	})
	return svc
}
