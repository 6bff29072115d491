package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/shop/catalog"
	"github.com/ferrygo/ferry/examples/shop/catalog/catalogapi"
	"github.com/ferrygo/ferry/examples/shop/gateway"
	"github.com/ferrygo/ferry/examples/shop/load"
	"github.com/ferrygo/ferry/examples/shop/orders"
	"github.com/ferrygo/ferry/examples/shop/orders/ordersapi"
	"github.com/ferrygo/ferry/examples/shop/worker"
	"github.com/ferrygo/ferry/ferrytest"
)

const testKey = "shop_test_key"

// startShop runs the four services in one host under test, seeded, and
// returns the host and the gateway's base URL.
func startShop(t *testing.T, payFailure float64) (*ferrytest.Host, string) {
	t.Helper()
	s := startShopServices(t, payFailure)
	return s.h, ferrytest.URL(t, s.gateway)
}

// shopUnderTest is the four services in one started host.
type shopUnderTest struct {
	h                                *ferrytest.Host
	gateway, catalog, orders, worker *ferry.Service
}

// startShopServices is startShop, returning each service too.
func startShopServices(t *testing.T, payFailure float64) shopUnderTest {
	t.Helper()
	return startShopWith(t, payFailure, worker.Settings{InvoiceDelay: time.Millisecond})
}

// startShopWith is startShopServices with the worker's settings.
func startShopWith(t *testing.T, payFailure float64, ws worker.Settings) shopUnderTest {
	t.Helper()
	gw, err := gateway.New([]ferry.APIKey{{Name: "tester", Hash: ferry.HashAPIKey(testKey)}})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.New()
	if err != nil {
		t.Fatal(err)
	}
	ord, err := orders.New(orders.Settings{PaymentFailure: payFailure})
	if err != nil {
		t.Fatal(err)
	}
	wrk, err := worker.New(ws)
	if err != nil {
		t.Fatal(err)
	}
	h := ferrytest.Start(t, gw, cat, ord, wrk)
	for _, p := range seed {
		if _, err := catalogapi.AddStock.Call(context.Background(), h.Client, &p); err != nil {
			t.Fatal(err)
		}
	}
	return shopUnderTest{h: h, gateway: gw, catalog: cat, orders: ord, worker: wrk}
}

// do sends a request to the gateway and decodes the answer's body into
// out, if given.
func do(t *testing.T, method, url, key, idem, body string, out any) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		_ = json.Unmarshal(raw, out)
	}
	return resp.StatusCode, resp.Header, string(raw)
}

// waitOrder waits until the order has ended and returns it.
func waitOrder(t *testing.T, base, id string) *ordersapi.Order {
	t.Helper()
	var order ordersapi.Order
	ferrytest.Eventually(t, func() bool {
		status, _, _ := do(t, "GET", base+"/orders/"+id, testKey, "", "", &order)
		return status == http.StatusOK && order.Terminal()
	}, "order %s ends", id)
	return &order
}

func TestOrderEndsInvoiced(t *testing.T) {
	_, base := startShop(t, 0)
	var placed ordersapi.Order
	status, h, body := do(t, "POST", base+"/orders", testKey, "", `{"sku":"mug","quantity":2}`, &placed)
	if status != http.StatusAccepted || placed.OrderID == "" || h.Get("Location") != "/orders/"+placed.OrderID || placed.State != ordersapi.StatePlaced {
		t.Fatalf("POST /orders: %d %s %s", status, h.Get("Location"), body)
	}
	order := waitOrder(t, base, placed.OrderID)
	if order.State != ordersapi.StateInvoiced || order.Total != 2*1250 || order.Invoice == "" || order.Payment == "" {
		t.Fatalf("the order ended %+v", order)
	}
	var mug catalogapi.Product
	do(t, "GET", base+"/products/mug", "", "", "", &mug)
	if mug.Sold != 2 || mug.Reserved != 0 || mug.Stock != 100000-2 {
		t.Errorf("mug after one order of 2: %+v", mug)
	}
	var run ordersapi.Run
	if status, _, body := do(t, "GET", base+"/orders/"+placed.OrderID+"/run", testKey, "", "", &run); status != 200 || run.Run.State != ferry.JobSucceeded || run.Run.Steps != 6 {
		t.Errorf("GET …/run: %d %s", status, body)
	}
	// The events of an ended order: its state now, and the stream ends.
	if status, _, body := do(t, "GET", base+"/orders/"+placed.OrderID+"/events", testKey, "", "", nil); status != 200 || !strings.Contains(body, "event: invoiced") {
		t.Errorf("GET …/events: %d %s", status, body)
	}
}

func TestOrderRefusals(t *testing.T) {
	_, base := startShop(t, 0)
	tests := []struct {
		name, key, body string
		status          int
		code            string
	}{
		{"out of stock", testKey, `{"sku":"kettle","quantity":26}`, http.StatusConflict, "out_of_stock"},
		{"unknown product", testKey, `{"sku":"spoon","quantity":1}`, http.StatusNotFound, "unknown_product"},
		{"no key", "", `{"sku":"mug","quantity":1}`, http.StatusUnauthorized, ""},
		{"wrong key", "nope", `{"sku":"mug","quantity":1}`, http.StatusUnauthorized, ""},
		{"bad quantity", testKey, `{"sku":"mug","quantity":0}`, http.StatusUnprocessableEntity, ""},
		{"bad body", testKey, `{"sku":`, http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var problem ferry.Error
			status, h, body := do(t, "POST", base+"/orders", tt.key, "", tt.body, &problem)
			if status != tt.status || (tt.code != "" && problem.Code != tt.code) || !strings.HasPrefix(h.Get("Content-Type"), "application/problem+json") {
				t.Errorf("%d %s, want %d %s", status, body, tt.status, tt.code)
			}
		})
	}
	var kettle catalogapi.Product
	do(t, "GET", base+"/products/kettle", "", "", "", &kettle)
	if kettle.Stock != 25 || kettle.Reserved != 0 {
		t.Errorf("a refused order held stock: %+v", kettle)
	}
}

func TestIdempotencyKeyPlacesOneOrder(t *testing.T) {
	_, base := startShop(t, 0)
	var first, second ordersapi.Order
	do(t, "POST", base+"/orders", testKey, "k-1", `{"sku":"kettle","quantity":5}`, &first)
	status, _, body := do(t, "POST", base+"/orders", testKey, "k-1", `{"sku":"kettle","quantity":5}`, &second)
	if status != http.StatusAccepted || first.OrderID == "" || second.OrderID != first.OrderID {
		t.Fatalf("a retried request: %d %s, first %s", status, body, first.OrderID)
	}
	waitOrder(t, base, first.OrderID)
	var kettle catalogapi.Product
	do(t, "GET", base+"/products/kettle", "", "", "", &kettle)
	if kettle.Sold != 5 {
		t.Errorf("two requests with one key sold %d, want 5", kettle.Sold)
	}
}

func TestDeclinedPaymentReleasesStock(t *testing.T) {
	_, base := startShop(t, 1) // every payment declined
	var placed ordersapi.Order
	do(t, "POST", base+"/orders", testKey, "", `{"sku":"shirt","quantity":3}`, &placed)
	order := waitOrder(t, base, placed.OrderID)
	if order.State != ordersapi.StateFailed || !strings.Contains(order.Reason, "declined") {
		t.Fatalf("the order ended %+v", order)
	}
	var shirt catalogapi.Product
	do(t, "GET", base+"/products/shirt", "", "", "", &shirt)
	if shirt.Stock != 50000 || shirt.Reserved != 0 || shirt.Sold != 0 {
		t.Errorf("a failed order's units are not back: %+v", shirt)
	}
}

// TestLoadKeepsInvariants drives a few hundred orders, one in ten
// declined, and checks the stores.
func TestLoadKeepsInvariants(t *testing.T) {
	h, base := startShop(t, 0.1)
	n := 300
	if testing.Short() {
		n = 60
	}
	ctx := context.Background()
	report, err := load.Run(ctx, load.Options{URLs: []string{base}, APIKey: testKey, Orders: n, Concurrency: 8, Client: h.Client, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(report)
	if report.Accepted+report.Refused != n || report.Errors != 0 || report.Unfinished != 0 || report.Invoiced == 0 || report.Failed == 0 {
		t.Errorf("report %+v", report)
	}
	bad, err := load.Check(ctx, h.Client, report.Orders)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Error(b)
	}
}

// TestQuickStart runs the command as the README's quick start does and
// replays the curl line it prints: the order ends invoiced.
func TestQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the command")
	}
	lines := startShopCommand(t, ferrytest.Build(t, "."), "-addr", "127.0.0.1:0", "-data-dir", t.TempDir())
	m := scanFor(t, lines, regexp.MustCompile(`^try:\s+curl -si (\S+) -H 'X-API-Key: (\S+)' -H 'Content-Type: application/json' -d '(.+)'$`))
	dash := scanFor(t, lines, regexp.MustCompile(`^dashboard: (\S+)$`))[1]
	go func() { // the rest of its output
		for lines.Scan() {
		}
	}()
	if status, _, body := do(t, "GET", dash, "", "", "", nil); status != http.StatusOK || !strings.Contains(body, "ferry-dashboard-token") {
		t.Errorf("the printed dashboard %q: %d %.200s", dash, status, body)
	}
	var placed ordersapi.Order
	status, _, body := do(t, "POST", m[1], m[2], "", m[3], &placed)
	if status != http.StatusAccepted {
		t.Fatalf("the printed curl line: %d %s", status, body)
	}
	base := strings.TrimSuffix(m[1], "/orders")
	var order ordersapi.Order
	ferrytest.Eventually(t, func() bool {
		do(t, "GET", base+"/orders/"+placed.OrderID, m[2], "", "", &order)
		return order.Terminal()
	}, "the order ends")
	if order.State != ordersapi.StateInvoiced {
		t.Errorf("the quick start's order ended %+v", order)
	}
}

// startShopCommand runs the shop's binary with args until the test ends,
// its standard error in the test's output, and returns its standard
// output's lines.
func startShopCommand(t *testing.T, bin string, args ...string) *bufio.Scanner {
	t.Helper()
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return bufio.NewScanner(out)
}

// scanFor reads lines until one matches re and returns its submatches; it
// fails the test when the output ends first.
func scanFor(t *testing.T, lines *bufio.Scanner, re *regexp.Regexp) []string {
	t.Helper()
	for lines.Scan() {
		if m := re.FindStringSubmatch(lines.Text()); m != nil {
			return m
		}
	}
	t.Fatalf("the shop printed no line matching %s", re)
	return nil
}
