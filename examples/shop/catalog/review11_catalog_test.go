package catalog_test

// The review11 tests were written by an adversarial review to fail: each
// doc comment says what it proved. They pass since the fixes, which they
// guard.

// Review 11: tests that break the catalog's claim that an order's units
// move "once per order however calls repeat, interleave or die". Each
// test says what it proves.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/shop/catalog"
	"github.com/ferrygo/ferry/examples/shop/catalog/catalogapi"
	"github.com/ferrygo/ferry/ferrytest"
)

// startCatalog runs the catalog with one product of n units.
func startCatalog(t *testing.T, sku string, n int) (*ferrytest.Host, jetstream.KeyValue) {
	t.Helper()
	svc, err := catalog.New()
	if err != nil {
		t.Fatal(err)
	}
	h := ferrytest.Start(t, svc)
	ctx := context.Background()
	if _, err := catalogapi.AddStock.Call(ctx, h.Client, &catalogapi.StockInput{SKU: sku, Name: sku, Price: 100, Quantity: n}); err != nil {
		t.Fatal(err)
	}
	kv, err := catalogapi.Products.Open(ctx, h.Client)
	if err != nil {
		t.Fatal(err)
	}
	return h, kv
}

// rawProduct is a product as the catalog stores it, with its pending moves.
type rawProduct struct {
	catalogapi.Product
	Pending map[string]json.RawMessage `json:"pending,omitempty"`
}

// violations reads the bucket and returns every broken invariant:
// counts never negative, stock + reserved + sold = received, and the
// product's reserved and sold units equal what its reservations hold.
// Unlike load.Check it does not excuse a product with pending moves: it is
// called when no call is in flight, when every move should have settled.
func violations(t *testing.T, kv jetstream.KeyValue) []string {
	t.Helper()
	ctx := context.Background()
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	products := map[string]rawProduct{}
	held := map[string]map[string]int{}
	for key := range keys.Keys() {
		e, err := kv.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(key, "p."):
			var p rawProduct
			if err := json.Unmarshal(e.Value(), &p); err != nil {
				t.Fatal(err)
			}
			products[p.SKU] = p
		case strings.HasPrefix(key, "r."):
			var r catalogapi.Reservation
			if err := json.Unmarshal(e.Value(), &r); err != nil {
				t.Fatal(err)
			}
			if held[r.SKU] == nil {
				held[r.SKU] = map[string]int{}
			}
			held[r.SKU][r.State] += r.Quantity
		}
	}
	var bad []string
	for sku, p := range products {
		if p.Stock < 0 || p.Reserved < 0 || p.Sold < 0 {
			bad = append(bad, fmt.Sprintf("product %s: a negative count: %+v", sku, p.Product))
		}
		if p.Stock+p.Reserved+p.Sold != p.Received {
			bad = append(bad, fmt.Sprintf("product %s: stock+reserved+sold != received: %+v", sku, p.Product))
		}
		if h := held[sku]; p.Reserved != h[catalogapi.StateReserved] || p.Sold != h[catalogapi.StateSold] {
			bad = append(bad, fmt.Sprintf("product %s: reserved %d sold %d, reservations hold %d and %d (pending %d)",
				sku, p.Reserved, p.Sold, h[catalogapi.StateReserved], h[catalogapi.StateSold], len(p.Pending)))
		}
	}
	return bad
}

// TestReview11ReleaseTwiceWithoutReservation proves that releasing an
// order that reserved nothing twice is not "changes nothing" as
// catalogapi.Release documents: the second release finds the tombstone the
// first wrote, tries to create it again, takes the refused create for a
// conflict and loops until errBusy (503 busy), every time.
func TestReview11ReleaseTwiceWithoutReservation(t *testing.T) {
	h, _ := startCatalog(t, "mug", 10)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in := &catalogapi.OrderInput{OrderID: "order-never-reserved"}
	if _, err := catalogapi.Release.Call(ctx, h.Client, in); err != nil {
		t.Fatalf("first release: %v", err)
	}
	if _, err := catalogapi.Release.Call(ctx, h.Client, in); err != nil {
		t.Errorf("second release of an order that reserved nothing: %v (want the released reservation again)", err)
	}
}

// TestReview11ReleaseAfterReserveDiedBetweenWrites proves that a move that
// died between its two writes is not finished by a Release: the product
// holds the order's units as reserved with a pending move, the
// reservation record was never written (the crash), and Release — which
// knows no SKU without the record — writes a tombstone instead of
// finishing the move. The units stay reserved for good: a later Reserve
// (the workflow's retry) is refused by the tombstone, so nothing ever
// finishes the pending move.
func TestReview11ReleaseAfterReserveDiedBetweenWrites(t *testing.T) {
	h, kv := startCatalog(t, "mug", 10)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The state a Reserve of 3 for order o1 leaves when it dies after its
	// product compare-and-set and before its reservation write.
	e, err := kv.Get(ctx, "p.mug")
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		t.Fatal(err)
	}
	p["stock"], p["reserved"] = 7, 3
	p["pending"] = map[string]any{"o1": map[string]any{"from": "", "to": "reserved", "quantity": 3, "price": 100}}
	b, _ := json.Marshal(p)
	if _, err := kv.Update(ctx, "p.mug", b, e.Revision()); err != nil {
		t.Fatal(err)
	}
	// The order is cancelled: its compensation (or a cancel) releases it.
	if _, err := catalogapi.Release.Call(ctx, h.Client, &catalogapi.OrderInput{OrderID: "o1"}); err != nil {
		t.Logf("release: %v", err)
	}
	// The reserve step runs again (a retry after the crash).
	if _, err := catalogapi.Reserve.Call(ctx, h.Client, &catalogapi.ReserveInput{OrderID: "o1", SKU: "mug", Quantity: 3}); err != nil {
		t.Logf("reserve again: %v", err)
	}
	if _, err := catalogapi.Release.Call(ctx, h.Client, &catalogapi.OrderInput{OrderID: "o1"}); err != nil {
		t.Logf("release again: %v", err)
	}
	for _, v := range violations(t, kv) {
		t.Error(v)
	}
}

// TestReview11ReserveRacesRelease proves that a Reserve and a Release of
// the same order sent at once can leave the order's units reserved with
// no reservation holding them: the Release reads no reservation (the
// Reserve has moved the counters but not yet written its record), writes
// a tombstone, and the Reserve's create of its record then fails; its
// next round sees the tombstone and refuses, leaving its pending move.
func TestReview11ReserveRacesRelease(t *testing.T) {
	h, kv := startCatalog(t, "mug", 100000)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		var wg sync.WaitGroup
		for j := range 8 {
			id := fmt.Sprintf("race-%d-%d", i, j)
			wg.Go(func() {
				_, _ = catalogapi.Reserve.Call(ctx, h.Client, &catalogapi.ReserveInput{OrderID: id, SKU: "mug", Quantity: 1})
			})
			wg.Go(func() {
				_, _ = catalogapi.Release.Call(ctx, h.Client, &catalogapi.OrderInput{OrderID: id})
			})
		}
		wg.Wait()
		if bad := violations(t, kv); len(bad) > 0 {
			for _, v := range bad {
				t.Error(v)
			}
			t.Logf("after %d rounds", i+1)
			return
		}
	}
}

// TestReview11ConcurrentCallsOfOneOrder proves that concurrent calls for
// one order can move its units more than once. One call reads the
// reservation (its old state); another finishes its whole move —
// counters, record, pending cleared — before the first reads the product;
// the first then finds no pending move and shifts the units again (its
// compare-and-set on the product succeeds: it read the product's latest
// revision). Its record write fails, and finish() sees the record already
// at the move's end (case pm.To) and keeps the double move. catalog.go:250
// reads the reservation and :275 the product without tying the two.
func TestReview11ConcurrentCallsOfOneOrder(t *testing.T) {
	reserve := func(ctx context.Context, c *ferry.Client, id string) error {
		_, err := catalogapi.Reserve.Call(ctx, c, &catalogapi.ReserveInput{OrderID: id, SKU: "mug", Quantity: 1})
		return err
	}
	sell := func(ctx context.Context, c *ferry.Client, id string) error {
		_, err := catalogapi.Sell.Call(ctx, c, &catalogapi.OrderInput{OrderID: id})
		return err
	}
	release := func(ctx context.Context, c *ferry.Client, id string) error {
		_, err := catalogapi.Release.Call(ctx, c, &catalogapi.OrderInput{OrderID: id})
		return err
	}
	type call func(context.Context, *ferry.Client, string) error
	tests := []struct {
		name string
		prep []call // in order, before the race
		race []call // at once
	}{
		{"reserve x4", nil, []call{reserve, reserve, reserve, reserve}},
		{"sell x4", []call{reserve}, []call{sell, sell, sell, sell}},
		{"release x4 of reserved", []call{reserve}, []call{release, release, release, release}},
		{"release x4 of sold", []call{reserve, sell}, []call{release, release, release, release}},
		{"sell and release", []call{reserve}, []call{sell, release, sell, release}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, kv := startCatalog(t, "mug", 100000)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			deadline := time.Now().Add(10 * time.Second)
			for i := 0; time.Now().Before(deadline); i++ {
				var wg sync.WaitGroup
				for j := range 4 {
					id := fmt.Sprintf("o-%d-%d", i, j)
					for _, c := range tt.prep {
						if err := c(ctx, h.Client, id); err != nil {
							t.Fatal(err)
						}
					}
					for _, c := range tt.race {
						wg.Go(func() { _ = c(ctx, h.Client, id) }) // refusals are fine; the counts are checked
					}
				}
				wg.Wait()
				if bad := violations(t, kv); len(bad) > 0 {
					for _, v := range bad {
						t.Error(v)
					}
					t.Logf("after %d rounds", i+1)
					return
				}
			}
		})
	}
}
