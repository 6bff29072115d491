package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

var update = flag.Bool("update", false, "rewrite the golden AsyncAPI documents")

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestOrdersAreShipped(t *testing.T) {
	cfg := ferrytest.Config(t)
	opts := []ferry.Option{ferry.WithConfig(cfg), ferry.WithLogger(ferrytest.Logger(t))}
	orders, shipping := newOrders(opts...), newShipping(opts...)
	ferrytest.StartWith(t, cfg, orders, shipping)
	ordersURL, shippingURL := ferrytest.URL(t, orders), ferrytest.URL(t, shipping)

	status, body := post(t, ordersURL+"/orders", `{"sku":"kettle","quantity":2}`)
	if status != 202 || !strings.Contains(body, `"sku":"kettle"`) {
		t.Fatalf("POST /orders: %d %s", status, body)
	}
	ferrytest.Eventually(t, func() bool { return strings.Contains(get(t, shippingURL+"/shipments"), `"sku":"kettle"`) }, "the order is shipped")

	if status, _ := post(t, ordersURL+"/orders", `{"sku":"reject-me","quantity":1}`); status != 202 {
		t.Fatalf("POST /orders: %d", status)
	}
	ferrytest.Eventually(t, func() bool {
		return strings.Contains(get(t, shippingURL+"/dead-letters"), `"error":"sku reject-me cannot be shipped"`)
	}, "the refused order is in the dead-letter stream with its reason")
	if strings.Contains(get(t, shippingURL+"/shipments"), "reject-me") {
		t.Error("the refused order was shipped")
	}
	if status, body := post(t, ordersURL+"/orders", `{"sku":"Not Valid","quantity":0}`); status != 422 {
		t.Errorf("an invalid order: %d %s", status, body)
	}
}

// TestRetriedOrderIsStoredOnce: two requests with one Idempotency-Key
// answer the same order, and the order is stored, and shipped, once.
func TestRetriedOrderIsStoredOnce(t *testing.T) {
	cfg := ferrytest.Config(t)
	opts := []ferry.Option{ferry.WithConfig(cfg), ferry.WithLogger(ferrytest.Logger(t))}
	orders, shipping := newOrders(opts...), newShipping(opts...)
	ferrytest.StartWith(t, cfg, orders, shipping)
	ordersURL, shippingURL := ferrytest.URL(t, orders), ferrytest.URL(t, shipping)

	placeOrder := func(key, body string) (string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, ordersURL+"/orders", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			OrderID string `json:"order_id"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusAccepted || out.OrderID == "" {
			t.Fatalf("POST /orders: %d, %v", resp.StatusCode, err)
		}
		return out.OrderID, resp.Header
	}
	first, h1 := placeOrder("retry-me-1", `{"sku":"kettle","quantity":1}`)
	second, h2 := placeOrder("retry-me-1", `{"sku":"kettle","quantity":1}`)
	if first != second {
		t.Errorf("a retried request placed order %s, then %s", first, second)
	}
	if h1.Get("Idempotent-Replayed") != "" || h2.Get("Idempotent-Replayed") != "true" {
		t.Errorf("Idempotent-Replayed: %q, then %q", h1.Get("Idempotent-Replayed"), h2.Get("Idempotent-Replayed"))
	}
	other, _ := placeOrder("", `{"sku":"teapot","quantity":1}`)
	ferrytest.Eventually(t, func() bool {
		shipments := get(t, shippingURL+"/shipments")
		return strings.Contains(shipments, other) && strings.Contains(shipments, first)
	}, "both orders are shipped (in either order: the subscription runs events concurrently)")
	if n := strings.Count(get(t, shippingURL+"/shipments"), first); n != 1 {
		t.Errorf("the retried order was shipped %d times", n)
	}
}

// TestAsyncAPIDocuments holds each service's /asyncapi.json in a golden
// file and checks it with the official AsyncAPI parser.
func TestAsyncAPIDocuments(t *testing.T) {
	for _, svc := range []*ferry.Service{newOrders(), newShipping()} {
		t.Run(svc.Name(), func(t *testing.T) {
			rec := get(t, serve(t, svc)+"/asyncapi.json")
			golden := filepath.Join("testdata", svc.Name()+".asyncapi.json")
			if *update {
				if err := os.WriteFile(golden, []byte(rec), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./examples/events -update)", err)
			}
			if !bytes.Equal([]byte(rec), want) {
				t.Errorf("/asyncapi.json differs from %s (run go test ./examples/events -update if the change is intended):\n%s", golden, rec)
			}
			var doc struct{ AsyncAPI string }
			if err := json.Unmarshal([]byte(rec), &doc); err != nil || doc.AsyncAPI != "3.0.0" {
				t.Fatalf("not an AsyncAPI 3.0.0 document: %v", err)
			}
			validateAsyncAPI(t, golden)
		})
	}
}

func serve(t *testing.T, svc *ferry.Service) string {
	t.Helper()
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// validateAsyncAPI runs the official parser on the document at path.
func validateAsyncAPI(t *testing.T, path string) {
	t.Helper()
	dir := filepath.Join("..", "..", "internal", "asyncapi", "testdata", "validator")
	_, nodeErr := exec.LookPath("node")
	_, modErr := os.Stat(filepath.Join(dir, "node_modules", "@asyncapi", "parser"))
	if nodeErr != nil || modErr != nil {
		msg := "the AsyncAPI validator is not installed: cd internal/asyncapi/testdata/validator && npm ci"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	abs, _ := filepath.Abs(path)
	out, err := exec.Command("node", filepath.Join(dir, "validate.mjs"), abs).CombinedOutput()
	if err != nil {
		t.Errorf("the AsyncAPI parser rejects %s: %v\n%s", path, err, out)
	}
}

// TestTwoProcesses runs orders and shipping as two processes on one broker
// and sends events across.
func TestTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example as two processes")
	}
	bin := ferrytest.Build(t, ".")
	orders := ferrytest.StartSystem(t, bin, []string{"orders"})
	// Published before shipping ever ran: the event waits in the stream.
	if status, body := post(t, "http://"+orders[0].Addr+"/orders", `{"sku":"teapot","quantity":1}`); status != 202 {
		t.Fatalf("POST /orders: %d %s", status, body)
	}
	shipping := ferrytest.JoinSystem(t, bin, orders[0], "shipping")
	ferrytest.Eventually(t, func() bool { return strings.Contains(get(t, "http://"+shipping.Addr+"/shipments"), "teapot") },
		"shipping, started later in its own process, ships the order")
	ferrytest.StopSystem(t, orders[0], shipping)
}
