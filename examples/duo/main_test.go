package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/duo/catalogapi"
	"github.com/ferrygo/ferry/examples/duo/ordersapi"
	"github.com/ferrygo/ferry/ferrytest"
)

func TestServicesCallEachOther(t *testing.T) {
	cfg := ferrytest.Config(t)
	opts := []ferry.Option{ferry.WithConfig(cfg), ferry.WithLogger(ferrytest.Logger(t))}
	h := ferrytest.StartWith(t, cfg, newCatalog(opts...), newOrders(opts...))
	ctx := context.Background()
	for range 2 {
		in := &ordersapi.PlaceOrderInput{}
		in.Body.SKU, in.Body.Quantity = "kettle", 3
		o, err := ordersapi.PlaceOrder.Call(ctx, h.Client, in)
		if err != nil || o.Body.Total != 3*2900 {
			t.Fatalf("PlaceOrder = %+v, %v", o, err)
		}
	}
	p, err := catalogapi.GetProduct.Call(ctx, h.Client, &catalogapi.GetProductInput{SKU: "kettle"})
	if err != nil || p.Body.Orders != 2 || p.Body.Price != 2900 {
		t.Fatalf("GetProduct = %+v, %v", p, err)
	}
	in := &ordersapi.PlaceOrderInput{}
	in.Body.SKU, in.Body.Quantity = "spoon", 1
	_, err = ordersapi.PlaceOrder.Call(ctx, h.Client, in)
	var fe *ferry.Error
	if !errors.As(err, &fe) || fe.Status != 422 || fe.Code != "unknown_product" || len(fe.Errors) != 1 || fe.Errors[0].Location != "body.sku" {
		t.Errorf("ordering an unknown product: %v", err)
	}
}

// TestTwoProcesses runs catalog and orders as two real processes on one
// embedded broker: the first listens on loopback, the second joins it
// through their shared data directory; each calls the other.
func TestTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example as two processes")
	}
	procs := ferrytest.StartSystem(t, ferrytest.Build(t, "."), []string{"catalog", "orders"})
	catalogAddr, ordersAddr, dataDir := procs[0].Addr, procs[1].Addr, procs[0].DataDir

	status, body := httpDo(t, "POST", "http://"+ordersAddr+"/orders", `{"sku":"teapot","quantity":2}`, "")
	if status != 201 || !strings.Contains(body, `"total":7000`) {
		t.Fatalf("POST /orders: %d %s", status, body)
	}
	status, httpBody := httpDo(t, "GET", "http://"+catalogAddr+"/products/teapot", "", "same-id")
	if status != 200 || httpBody != `{"sku":"teapot","name":"Teapot","price":3500,"orders":1}` {
		t.Fatalf("GET /products/teapot: %d %s", status, httpBody)
	}

	// A plain NATS client, as `nats req` is: discovery lists both services,
	// and a request on the endpoint's subject answers what HTTP answered.
	// catalog published its broker's URL (and server ID) as JSON in the data directory.
	raw, err := os.ReadFile(filepath.Join(dataDir, "broker.url"))
	if err != nil {
		t.Fatal(err)
	}
	var record struct{ URL string }
	if err := json.Unmarshal(raw, &record); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(record.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	names := map[string]bool{}
	inbox := nats.NewInbox()
	sub, _ := nc.SubscribeSync(inbox)
	_ = nc.PublishRequest("$SRV.INFO", inbox, nil)
	for {
		m, err := sub.NextMsg(time.Second)
		if err != nil {
			break
		}
		var info struct{ Name string }
		_ = json.Unmarshal(m.Data, &info)
		names[info.Name] = true
	}
	if !names["catalog"] || !names["orders"] {
		t.Errorf("$SRV.INFO found %v", names)
	}
	msg := nats.NewMsg("ferry.catalog.get-product")
	msg.Header.Set("Ferry-Path", "sku=teapot")
	msg.Header.Set("X-Request-Id", "same-id")
	reply, err := nc.RequestMsg(msg, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Header.Get("Ferry-Status") != "200" || string(reply.Data) != httpBody {
		t.Errorf("NATS answered %s %s, HTTP %s", reply.Header.Get("Ferry-Status"), reply.Data, httpBody)
	}

	// SIGTERM: both drain and exit 0.
	ferrytest.StopSystem(t, procs...)
}

func httpDo(t *testing.T, method, url, body, requestID string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if requestID != "" {
		req.Header.Set("X-Request-Id", requestID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
