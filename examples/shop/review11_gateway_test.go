package main

// The review11 tests were written by an adversarial review to fail: each
// doc comment says what it proved. They pass since the fixes, which they
// guard.

// Review 11: tests that break the gateway's claims — an API key on every
// order endpoint, and an Idempotency-Key that answers a retried request
// with the first answer. Each test says what it proves.

import (
	"context"
	"net/http"
	"testing"

	"github.com/ferrygo/ferry/examples/shop/catalog/catalogapi"
	"github.com/ferrygo/ferry/examples/shop/orders/ordersapi"
	"github.com/ferrygo/ferry/ferrytest"
)

// review11Shop runs the four services as main.go does (each with its HTTP
// listener) and returns the host and the base URLs of gateway, catalog
// and orders.
func review11Shop(t *testing.T) (h *ferrytest.Host, gw, cat, ord string) {
	t.Helper()
	s := startShopServices(t, 0)
	return s.h, ferrytest.URL(t, s.gateway), ferrytest.URL(t, s.catalog), ferrytest.URL(t, s.orders)
}

// TestReview11OrderEndpointsWithoutAPIKey proves that the API key guards
// only the gateway's port: the orders service serves the same order
// endpoints over its own HTTP listener (:8002 in the quick start, bound on
// every interface; the Service shop-orders in deploy/kubernetes) with no
// authentication, and the catalog serves stock and reservation writes the
// same way. README: "the public HTTP API … an API key on every order
// endpoint". Each request below is made with no key; each succeeds.
func TestReview11OrderEndpointsWithoutAPIKey(t *testing.T) {
	_, gw, cat, ord := review11Shop(t)
	if status, _, _ := do(t, "POST", gw+"/orders", "", "", `{"sku":"mug","quantity":1}`, nil); status != http.StatusUnauthorized {
		t.Fatalf("the gateway without a key: %d, want 401", status)
	}
	var placed ordersapi.Order
	status, _, body := do(t, "POST", ord+"/orders", "", "", `{"sku":"mug","quantity":1}`, &placed)
	if status < 300 {
		t.Errorf("POST /orders on the orders service without a key: %d %s (an order placed)", status, body)
	}
	if placed.OrderID != "" {
		if status, _, body := do(t, "DELETE", ord+"/orders/"+placed.OrderID, "", "", "", nil); status < 300 {
			t.Errorf("DELETE /orders/{id} on the orders service without a key: %d %s", status, body)
		}
	}
	if status, _, body := do(t, "POST", cat+"/stock", "", "", `{"sku":"mug","name":"Mug","price":1,"quantity":0}`, nil); status < 300 {
		t.Errorf("POST /stock on the catalog without a key (the mug's price set to 1 cent): %d %s", status, body)
	}
}

// TestReview11IdempotencyKeyAfterRefusal proves that an Idempotency-Key
// does not answer a retried request with the first answer when the first
// was a refusal: a 409 out_of_stock cancels the run started under the key
// (orders.go:98), and the same request retried once the stock is back
// finds that run by its key, stores a new order for it and answers 202 —
// for an order that reads cancelled at once and never runs. The retry
// should answer the 409 again, or place an order that runs.
func TestReview11IdempotencyKeyAfterRefusal(t *testing.T) {
	h, gw, _, _ := review11Shop(t)
	body := `{"sku":"kettle","quantity":30}`
	if status, _, b := do(t, "POST", gw+"/orders", testKey, "retry-1", body, nil); status != http.StatusConflict {
		t.Fatalf("first: %d %s, want 409", status, b)
	}
	// The shop receives kettles; the client, which had no answer, retries.
	if _, err := catalogapi.AddStock.Call(context.Background(), h.Client, &catalogapi.StockInput{SKU: "kettle", Name: "Kettle", Price: 2900, Quantity: 100}); err != nil {
		t.Fatal(err)
	}
	var retried ordersapi.Order
	status, _, b := do(t, "POST", gw+"/orders", testKey, "retry-1", body, &retried)
	if status != http.StatusAccepted {
		return // answered the refusal again: fine
	}
	order := waitOrder(t, gw, retried.OrderID)
	if order.State == ordersapi.StateCancelled {
		t.Errorf("the retry answered 202 %s, and the order, never cancelled by anyone, reads %s", b, order.State)
	}
}
