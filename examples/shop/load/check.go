package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/shop/catalog/catalogapi"
	"github.com/ferrygo/ferry/examples/shop/orders/ordersapi"
	"github.com/ferrygo/ferry/examples/shop/worker/workerapi"
)

// Check verifies the shop's invariants by reading its stores — the
// catalog's products and reservations, the orders, the invoices and the
// order-invoiced stream — not the driver's memory, and returns each
// violation found:
//
//   - every accepted order (orders, their IDs) has ended: invoiced with
//     its units sold and one invoice, or failed or cancelled with its
//     units released and no invoice — none lost;
//   - no order was invoiced twice (one order-invoiced event each);
//   - every product's counts are non-negative, stock + reserved + sold
//     equals the units received, and its reserved and sold units are
//     those its reservations hold;
//   - no event of order-placed or order-invoiced, nor any invoice job,
//     was dead-lettered.
func Check(ctx context.Context, c *ferry.Client, orders []string) ([]string, error) {
	var bad []string
	fail := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	catalog, err := catalogapi.Products.Open(ctx, c)
	if err != nil {
		return nil, err
	}
	orderStore, err := ordersapi.Orders.Open(ctx, c)
	if err != nil {
		return nil, err
	}
	invoices, err := workerapi.Invoices.Open(ctx, c)
	if err != nil {
		return nil, err
	}
	invoicedEvents, err := countInvoiced(ctx, c)
	if err != nil {
		return nil, err
	}
	for _, id := range orders {
		var order ordersapi.Order
		if found, err := read(ctx, orderStore, "o."+id, &order); err != nil {
			return nil, err
		} else if !found {
			fail("order %s: accepted, but not in the orders store (lost)", id)
			continue
		}
		if order.State == ordersapi.StatePlaced { // failed or cancelled runs leave it placed: ask the run
			view, err := ordersapi.Get.Call(ctx, c, &ordersapi.OrderIDInput{OrderID: id})
			if err != nil {
				return nil, fmt.Errorf("order %s: %w", id, err)
			}
			order.State = view.State
		}
		var res catalogapi.Reservation
		hasRes, err := read(ctx, catalog, "r."+id, &res)
		if err != nil {
			return nil, err
		}
		var inv workerapi.Invoice
		hasInv, err := read(ctx, invoices, "i."+id, &inv)
		if err != nil {
			return nil, err
		}
		switch order.State {
		case ordersapi.StateInvoiced:
			if !hasRes || res.State != catalogapi.StateSold {
				fail("order %s: invoiced, but its reservation is %q, not sold", id, res.State)
			}
			if !hasInv {
				fail("order %s: invoiced, but the worker has no invoice", id)
			}
		case ordersapi.StateFailed, ordersapi.StateCancelled:
			if hasRes && res.State != catalogapi.StateReleased {
				fail("order %s: %s, but its reservation is %s, not released", id, order.State, res.State)
			}
			if hasInv {
				fail("order %s: %s, but invoiced", id, order.State)
			}
		default:
			fail("order %s: still %s (not ended)", id, order.State)
		}
		if n := invoicedEvents[id]; n > 1 {
			fail("order %s: invoiced %d times (order-invoiced events)", id, n)
		}
	}
	stockBad, err := checkStock(ctx, catalog)
	if err != nil {
		return nil, err
	}
	bad = append(bad, stockBad...)
	// A failed order's run is dead-lettered with its reason; the events
	// and the invoice job never should be.
	for _, topic := range []string{ordersapi.Placed.Name, workerapi.Invoiced.Name, workerapi.InvoiceOrder.Name} {
		dls, err := ferry.ListDeadLetters(ctx, c, ferry.DeadLetterFilter{Topic: topic}, 100)
		if err != nil {
			return nil, err
		}
		for _, dl := range dls {
			fail("%s (consumer %s of service %s) dead-lettered after %d deliveries: %s", topic, dl.Consumer, dl.Service, dl.Deliveries, dl.Error)
		}
	}
	return bad, nil
}

// checkStock checks every product's counts against its reservations.
func checkStock(ctx context.Context, catalog jetstream.KeyValue) ([]string, error) {
	var bad []string
	keys, err := catalog.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	type pending struct {
		Pending map[string]struct {
			ID string `json:"id"`
		} `json:"pending"`
	}
	products := map[string]*catalogapi.Product{}
	held := map[string]map[string]int{} // sku → state → units
	type pendingMove struct{ sku, id string }
	moves := map[string]pendingMove{} // order → its move left pending on a product
	made := map[string]string{}       // order → the move its reservation names
	unsettled := map[string]int{}     // sku → moves left pending that no reservation names
	for key := range keys.Keys() {
		switch {
		case strings.HasPrefix(key, "p."):
			var p catalogapi.Product
			var pend pending
			if _, err := read(ctx, catalog, key, &p); err != nil {
				return nil, err
			}
			if _, err := read(ctx, catalog, key, &pend); err != nil {
				return nil, err
			}
			products[p.SKU] = &p
			for order, m := range pend.Pending {
				moves[order] = pendingMove{sku: p.SKU, id: m.ID}
			}
		case strings.HasPrefix(key, "r."):
			var r catalogapi.Reservation
			if _, err := read(ctx, catalog, key, &r); err != nil {
				return nil, err
			}
			if held[r.SKU] == nil {
				held[r.SKU] = map[string]int{}
			}
			held[r.SKU][r.State] += r.Quantity
			made[r.OrderID] = r.Move
		}
	}
	// A move its reservation names was made and only not cleared (a crash
	// after its last write); any other was never finished.
	for order, m := range moves {
		if made[order] != m.id {
			unsettled[m.sku]++
		}
	}
	for sku, p := range products {
		if p.Stock < 0 || p.Reserved < 0 || p.Sold < 0 {
			bad = append(bad, fmt.Sprintf("product %s: a negative count: stock %d, reserved %d, sold %d", sku, p.Stock, p.Reserved, p.Sold))
		}
		if p.Stock+p.Reserved+p.Sold != p.Received {
			bad = append(bad, fmt.Sprintf("product %s: stock %d + reserved %d + sold %d != %d received", sku, p.Stock, p.Reserved, p.Sold, p.Received))
		}
		if n := unsettled[sku]; n > 0 {
			// Check runs once every order has ended: no move is in flight.
			bad = append(bad, fmt.Sprintf("product %s: %d moves left unfinished", sku, n))
		}
		if h := held[sku]; p.Reserved != h[catalogapi.StateReserved] || p.Sold != h[catalogapi.StateSold] {
			bad = append(bad, fmt.Sprintf("product %s: reserved %d and sold %d, but its reservations hold %d and %d",
				sku, p.Reserved, p.Sold, h[catalogapi.StateReserved], h[catalogapi.StateSold]))
		}
	}
	return bad, nil
}

// countInvoiced counts the order-invoiced events of each order in the
// topic's stream.
func countInvoiced(ctx context.Context, c *ferry.Client) (map[string]int, error) {
	js, err := jetstream.New(c.Conn())
	if err != nil {
		return nil, err
	}
	stream, err := js.Stream(ctx, "ferry-"+workerapi.Invoiced.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return map[string]int{}, nil
	}
	if err != nil {
		return nil, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	if info.State.Msgs == 0 {
		return counts, nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	for seen := uint64(0); seen < info.State.Msgs; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		batch, err := cons.Fetch(256)
		if err != nil {
			return nil, err
		}
		for msg := range batch.Messages() {
			seen++
			var inv workerapi.Invoice
			if json.Unmarshal(msg.Data(), &inv) == nil {
				counts[inv.OrderID]++
			}
			if seen >= info.State.Msgs {
				break
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoHeartbeat) {
			return nil, err
		}
	}
	return counts, nil
}

// read decodes the value of key into v, reporting whether there is one.
func read(ctx context.Context, kv jetstream.KeyValue, key string, v any) (bool, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, json.Unmarshal(e.Value(), v)
}
