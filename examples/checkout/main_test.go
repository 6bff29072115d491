package main

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/checkout/checkoutapi"
	"github.com/ferrygo/ferry/examples/checkout/inventoryapi"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestCheckout runs both services in one host: a checkout over HTTP
// reserves stock, which the typed client reads back; its event reaches
// record-sale, which fails twice and records the sale on the third
// delivery; an order larger than the stock gets the inventory's 409
// through checkout's typed client.
func TestCheckout(t *testing.T) {
	st := newStore()
	checkout := newCheckout()
	h := ferrytest.Start(t, newInventory(st, 2), checkout)
	completed := ferrytest.Capture(t, h, checkoutapi.Completed)
	ctx := t.Context()

	status, body := post(t, ferrytest.URL(t, checkout)+"/checkout", `{"sku":"kettle","qty":3}`)
	if status != http.StatusCreated || !strings.Contains(body, `"sku":"kettle","qty":3`) {
		t.Fatalf("POST /checkout: %d %s", status, body)
	}
	stock, err := inventoryapi.GetStock.Call(ctx, h.Client, &inventoryapi.GetStockInput{SKU: "kettle"})
	if err != nil || *stock != (inventoryapi.Stock{SKU: "kettle", Available: 7}) {
		t.Fatalf("GetStock = %+v, %v", stock, err)
	}

	event := completed.Wait(t, 1)[0]
	if event.SKU != "kettle" || event.Qty != 3 || !strings.Contains(body, event.OrderID) {
		t.Errorf("published %+v; checkout answered %s", event, body)
	}
	ferrytest.Eventually(t, func() bool { return st.sale(event.OrderID) == 3 }, "record-sale records the sale on the third delivery")

	_, err = checkoutapi.Checkout.Call(ctx, h.Client, &checkoutapi.Order{SKU: "teapot", Qty: 6})
	var call *ferry.CallError
	if !errors.As(err, &call) || call.Status != http.StatusConflict || call.Code != "insufficient_stock" {
		t.Errorf("checking out more than the stock: %v", err)
	}
}

// TestTwoProcesses runs inventory and checkout as two processes on one
// embedded broker: checkout reserves over NATS across them.
func TestTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example as two processes")
	}
	procs := ferrytest.StartSystem(t, ferrytest.Build(t, "."), []string{"inventory", "checkout"})
	inventory, checkout := "http://"+procs[0].Addr, "http://"+procs[1].Addr

	if status, body := post(t, checkout+"/checkout", `{"sku":"teapot","qty":2}`); status != http.StatusCreated {
		t.Fatalf("POST /checkout: %d %s", status, body)
	}
	if status, body := get(t, inventory+"/stock/teapot"); status != http.StatusOK || body != `{"sku":"teapot","available":3}` {
		t.Errorf("GET /stock/teapot: %d %s", status, body)
	}
	if status, body := post(t, checkout+"/checkout", `{"sku":"teapot","qty":4}`); status != http.StatusConflict || !strings.Contains(body, `"code":"insufficient_stock"`) {
		t.Errorf("POST /checkout beyond the stock: %d %s", status, body)
	}
	ferrytest.StopSystem(t, procs...)
}

// sale returns the delivery of the order's event that recorded its sale,
// or 0.
func (st *store) sale(orderID string) uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.sales[orderID]
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	return answer(t, resp, err)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	return answer(t, resp, err)
}

func answer(t *testing.T, resp *http.Response, err error) (int, string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
