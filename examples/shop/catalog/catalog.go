// Package catalog is the catalog service: products and their stock, kept
// in a JetStream key-value bucket so that any replica answers any call.
// Orders reserve, sell and release units by order ID; each of those is
// idempotent, so a retried call — after a timeout, a crash, a redelivery —
// moves the units once.
package catalog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/shop/catalog/catalogapi"
)

// New builds the catalog service.
func New(opts ...ferry.Option) (*ferry.Service, error) {
	svc, err := ferry.New("catalog", "1.0.0", append([]ferry.Option{ferry.WithNATS(),
		ferry.WithDescription("Products and their stock; reservations of units by order.")}, opts...)...)
	if err != nil {
		return nil, err
	}
	c := &catalog{store: ferry.UseBucket(svc, catalogapi.Products)}
	ferry.Handle(svc, catalogapi.ListProducts, c.list)
	ferry.Handle(svc, catalogapi.GetProduct, func(ctx context.Context, in *catalogapi.SKUInput) (*catalogapi.Product, error) {
		p, _, err := c.product(ctx, in.SKU)
		if err != nil {
			return nil, err
		}
		return &p.Product, nil
	})
	ferry.Handle(svc, catalogapi.AddStock, c.addStock)
	ferry.Handle(svc, catalogapi.Reserve, func(ctx context.Context, in *catalogapi.ReserveInput) (*catalogapi.Reservation, error) {
		return c.move(ctx, in.OrderID, in.SKU, in.Quantity, catalogapi.StateReserved)
	})
	ferry.Handle(svc, catalogapi.Sell, func(ctx context.Context, in *catalogapi.OrderInput) (*catalogapi.Reservation, error) {
		return c.move(ctx, in.OrderID, "", 0, catalogapi.StateSold)
	})
	ferry.Handle(svc, catalogapi.Release, func(ctx context.Context, in *catalogapi.OrderInput) (*catalogapi.Reservation, error) {
		return c.move(ctx, in.OrderID, "", 0, catalogapi.StateReleased)
	})
	ferry.Handle(svc, catalogapi.GetReservation, func(ctx context.Context, in *catalogapi.OrderInput) (*catalogapi.Reservation, error) {
		r, _, err := c.reservation(ctx, in.OrderID)
		if err == nil && r == nil {
			err = &ferry.Error{Status: http.StatusNotFound, Code: "no_reservation", Detail: "order " + in.OrderID + " holds no reservation"}
		}
		return r, err
	})
	return svc, nil
}

// catalog is the service's logic over its bucket.
type catalog struct {
	store *ferry.Store
}

// record is a product as stored under p.<sku>: the product, and the moves
// of units whose reservation record is not yet written.
type record struct {
	catalogapi.Product
	// Pending holds, by order ID, a move the counters already made whose
	// reservation record may not be written yet (a crash between the two
	// writes leaves it; the next call for the order finishes it).
	Pending map[string]move `json:"pending,omitempty"`
}

// move is units of an order going from one reservation state to another
// ("" is no reservation), computed from the reservation record at
// revision Rev (0: none).
type move struct {
	ID       string `json:"id"`
	From     string `json:"from"`
	To       string `json:"to"`
	Quantity int    `json:"quantity"`
	Price    int    `json:"price"`
	Rev      uint64 `json:"rev"`
}

func productKey(sku string) string    { return "p." + sku }
func reservationKey(id string) string { return "r." + id }

// maxConflicts bounds the compare-and-set retries of one call.
const maxConflicts = 64

var errBusy = &ferry.Error{Status: http.StatusServiceUnavailable, Code: "busy", Detail: "too many concurrent changes to the product; try again"}

func (c *catalog) list(ctx context.Context, _ *struct{}) (*catalogapi.ProductList, error) {
	kv, err := c.store.KeyValue()
	if err != nil {
		return nil, err
	}
	keys, err := kv.ListKeysFiltered(ctx, "p.>")
	if err != nil {
		return nil, err
	}
	out := &catalogapi.ProductList{Products: []catalogapi.Product{}}
	for key := range keys.Keys() {
		p, _, err := c.product(ctx, strings.TrimPrefix(key, "p."))
		if unknown(err) {
			continue // deleted since it was listed
		}
		if err != nil {
			return nil, err
		}
		out.Products = append(out.Products, p.Product)
	}
	slices.SortFunc(out.Products, func(a, b catalogapi.Product) int { return strings.Compare(a.SKU, b.SKU) })
	return out, nil
}

// unknown reports whether err is product's answer for an unknown SKU.
func unknown(err error) bool {
	var fe *ferry.Error
	return errors.As(err, &fe) && fe.Code == "unknown_product"
}

// product reads a product and its revision.
func (c *catalog) product(ctx context.Context, sku string) (*record, uint64, error) {
	kv, err := c.store.KeyValue()
	if err != nil {
		return nil, 0, err
	}
	e, err := kv.Get(ctx, productKey(sku))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, &ferry.Error{Status: http.StatusNotFound, Code: "unknown_product", Detail: "no product " + sku}
	}
	if err != nil {
		return nil, 0, err
	}
	var p record
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		return nil, 0, fmt.Errorf("product %s: %w", sku, err)
	}
	return &p, e.Revision(), nil
}

// reservation reads an order's reservation (nil when it has none) and its
// revision.
func (c *catalog) reservation(ctx context.Context, orderID string) (*catalogapi.Reservation, uint64, error) {
	kv, err := c.store.KeyValue()
	if err != nil {
		return nil, 0, err
	}
	e, err := kv.Get(ctx, reservationKey(orderID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var r catalogapi.Reservation
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, 0, fmt.Errorf("reservation %s: %w", orderID, err)
	}
	return &r, e.Revision(), nil
}

// put writes v under key: created when rev is 0, else only over revision
// rev. A false result is a conflict: someone wrote first.
func put(ctx context.Context, kv jetstream.KeyValue, key string, rev uint64, v any) (bool, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return false, err
	}
	if rev == 0 {
		_, err = kv.Create(ctx, key, b)
	} else {
		_, err = kv.Update(ctx, key, b, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return false, nil
	}
	return err == nil, err
}

func (c *catalog) addStock(ctx context.Context, in *catalogapi.StockInput) (*catalogapi.Product, error) {
	kv, err := c.store.KeyValue()
	if err != nil {
		return nil, err
	}
	for range maxConflicts {
		p, rev, err := c.product(ctx, in.SKU)
		switch {
		case unknown(err):
			p, rev = &record{Product: catalogapi.Product{SKU: in.SKU}}, 0
		case err != nil:
			return nil, err
		case in.IfNew:
			return &p.Product, nil
		}
		p.Name, p.Price = in.Name, in.Price
		p.Stock += in.Quantity
		p.Received += in.Quantity
		if ok, err := put(ctx, kv, productKey(in.SKU), rev, p); err != nil || ok {
			return &p.Product, err
		}
	}
	return nil, errBusy
}

// counter returns the product's count of units in reservation state s
// ("" and released units are in stock).
func counter(p *catalogapi.Product, s string) *int {
	switch s {
	case catalogapi.StateReserved:
		return &p.Reserved
	case catalogapi.StateSold:
		return &p.Sold
	}
	return &p.Stock
}

// shift moves n units of p from state from to state to.
func shift(p *catalogapi.Product, from, to string, n int) {
	*counter(p, from) -= n
	*counter(p, to) += n
}

// allowed reports whether a reservation may go from state from to to.
func allowed(from, to string) bool {
	switch to {
	case catalogapi.StateReserved:
		return from == ""
	case catalogapi.StateSold:
		return from == catalogapi.StateReserved
	case catalogapi.StateReleased:
		return from == "" || from == catalogapi.StateReserved || from == catalogapi.StateSold
	}
	return false
}

// move takes an order's reservation to state to: the units move on the
// product with one compare-and-set that also records the move as
// pending — with the revision of the reservation record it was computed
// from — then the reservation record is written (compare-and-set on that
// revision, naming the move), then the pending move is cleared. A call
// that finds a pending move of its order finishes it first (finish), so
// however calls repeat, interleave or die, an order's units move once per
// state. sku and n are the reservation's for a new one; for the others
// the reservation's record says them (or, when it has none, the product
// with a pending move of the order).
func (c *catalog) move(ctx context.Context, orderID, sku string, n int, to string) (*catalogapi.Reservation, error) {
	kv, err := c.store.KeyValue()
	if err != nil {
		return nil, err
	}
	for range maxConflicts {
		r, rrev, err := c.reservation(ctx, orderID)
		if err != nil {
			return nil, err
		}
		price := -1 // the product's, for a new reservation
		cur := ""
		if r != nil {
			cur = r.State
			if to == catalogapi.StateReserved && r.SKU != "" && (r.SKU != sku || r.Quantity != n) {
				return nil, &ferry.Error{Status: http.StatusConflict, Code: "reservation_mismatch",
					Detail: fmt.Sprintf("order %s already reserved %d of %s", orderID, r.Quantity, r.SKU)}
			}
			if r.SKU != "" { // a tombstone has none
				sku, n, price = r.SKU, r.Quantity, r.Price
			}
		}
		if sku == "" { // no reservation: a move of the order may be pending on a product
			if sku, err = c.pendingSKU(ctx, kv, orderID); err != nil {
				return nil, err
			}
		}
		if sku == "" { // nothing known of the order
			if to != catalogapi.StateReleased {
				return nil, &ferry.Error{Status: http.StatusConflict, Code: "not_reserved", Detail: "order " + orderID + " holds no reservation"}
			}
			if cur == to {
				return r, nil
			}
			// A tombstone: a reservation arriving after its release is refused.
			tomb := &catalogapi.Reservation{OrderID: orderID, State: catalogapi.StateReleased, Move: newMoveID()}
			if ok, err := put(ctx, kv, reservationKey(orderID), rrev, tomb); err != nil || ok {
				return tomb, err
			}
			continue
		}
		p, prev, err := c.product(ctx, sku)
		if err != nil {
			return nil, err
		}
		if pm, ok := p.Pending[orderID]; ok {
			if err := c.finish(ctx, kv, orderID, r, rrev, p, prev, pm); err != nil {
				return nil, err
			}
			continue
		}
		if cur == to {
			return r, nil
		}
		if !allowed(cur, to) {
			return nil, &ferry.Error{Status: http.StatusConflict, Code: "order_" + cur,
				Detail: fmt.Sprintf("order %s's reservation is %s; it cannot become %s", orderID, cur, to)}
		}
		if to == catalogapi.StateReserved && p.Stock < n {
			return nil, &ferry.Error{Status: http.StatusConflict, Code: "out_of_stock",
				Detail: fmt.Sprintf("%d of %s wanted, %d in stock", n, sku, p.Stock)}
		}
		if price < 0 {
			price = p.Price
		}
		shift(&p.Product, cur, to, n)
		if p.Pending == nil {
			p.Pending = map[string]move{}
		}
		m := move{ID: newMoveID(), From: cur, To: to, Quantity: n, Price: price, Rev: rrev}
		p.Pending[orderID] = m
		if ok, err := put(ctx, kv, productKey(sku), prev, p); err != nil {
			return nil, err
		} else if !ok {
			continue
		}
		next := &catalogapi.Reservation{OrderID: orderID, SKU: sku, Quantity: n, Price: price, State: to, Move: m.ID}
		if ok, err := put(ctx, kv, reservationKey(orderID), rrev, next); err != nil {
			return nil, err
		} else if !ok {
			continue // the record changed under the move: the next round undoes it
		}
		c.clearPending(ctx, kv, orderID, sku, m.ID)
		return next, nil
	}
	return nil, errBusy
}

// finish settles a pending move of an order, whose counts p already
// shows: done if the reservation record names the move; completed (the
// record written) if the record is still the one the move was computed
// from; undone (its counts shifted back) if the record changed since —
// the move was computed from a state that no longer holds. Then it is
// cleared. A record read before the move's (an older revision: the
// caller read it, then the move was made) decides nothing.
func (c *catalog) finish(ctx context.Context, kv jetstream.KeyValue, orderID string, r *catalogapi.Reservation, rrev uint64, p *record, prev uint64, pm move) error {
	switch {
	case r != nil && r.Move == pm.ID:
	case rrev < pm.Rev:
		return nil // the record was read before the move's: look again
	case rrev == pm.Rev:
		next := &catalogapi.Reservation{OrderID: orderID, SKU: p.SKU, Quantity: pm.Quantity, Price: pm.Price, State: pm.To, Move: pm.ID}
		_, err := put(ctx, kv, reservationKey(orderID), rrev, next)
		return err // written or not, the next round looks again
	default:
		shift(&p.Product, pm.To, pm.From, pm.Quantity)
	}
	delete(p.Pending, orderID)
	_, err := put(ctx, kv, productKey(p.SKU), prev, p)
	return err
}

// pendingSKU returns the product with a pending move of the order, or ""
// (a scan of the products: the path of an order whose reservation record
// was never written).
func (c *catalog) pendingSKU(ctx context.Context, kv jetstream.KeyValue, orderID string) (string, error) {
	keys, err := kv.ListKeysFiltered(ctx, "p.>")
	if err != nil {
		return "", err
	}
	defer func() { _ = keys.Stop() }()
	for key := range keys.Keys() {
		p, _, err := c.product(ctx, strings.TrimPrefix(key, "p."))
		if unknown(err) {
			continue
		}
		if err != nil {
			return "", err
		}
		if _, ok := p.Pending[orderID]; ok {
			return p.SKU, nil
		}
	}
	return "", nil
}

// newMoveID names a move.
func newMoveID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// clearPending removes an order's finished move from its product — that
// move, not another call's move of the order made since; a conflict is
// retried, and one left behind is cleared by the next call.
func (c *catalog) clearPending(ctx context.Context, kv jetstream.KeyValue, orderID, sku, moveID string) {
	for range maxConflicts {
		p, prev, err := c.product(ctx, sku)
		if err != nil {
			return
		}
		if pm, ok := p.Pending[orderID]; !ok || pm.ID != moveID {
			return
		}
		delete(p.Pending, orderID)
		if ok, err := put(ctx, kv, productKey(sku), prev, p); err != nil || ok {
			return
		}
	}
}
