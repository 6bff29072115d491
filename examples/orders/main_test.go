package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/orders/ordersapi"
	"github.com/ferrygo/ferry/ferrytest"
)

var quiet = ferry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

// send makes a request with a JSON body and decodes the JSON answer.
func send(t *testing.T, method, url, body string, out any) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
	}
	return resp
}

func TestOrders(t *testing.T) {
	w := newWarehouse()
	svc, err := newService(settings{cooling: time.Second, review: 2 * time.Second}, w, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ferrytest.Start(t, svc)
	base := ferrytest.URL(t, svc)

	place := func(t *testing.T, body string) string {
		t.Helper()
		var rec ferry.JobRecord[ordersapi.Order]
		resp := send(t, http.MethodPost, base+"/orders", body, &rec)
		if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Location") != "/runs/"+rec.ID {
			t.Fatalf("POST /orders: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		return rec.ID
	}
	get := func(t *testing.T, id string) ferry.JobRecord[ordersapi.Order] {
		t.Helper()
		var rec ferry.JobRecord[ordersapi.Order]
		if resp := send(t, http.MethodGet, base+"/runs/"+id, "", &rec); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /runs/%s: %d", id, resp.StatusCode)
		}
		return rec
	}
	ended := func(t *testing.T, id string) ferry.JobRecord[ordersapi.Order] {
		t.Helper()
		var rec ferry.JobRecord[ordersapi.Order]
		ferrytest.Eventually(t, func() bool { rec = get(t, id); return rec.State.Final() }, "order %s ends", id)
		return rec
	}

	t.Run("a small order ships after its cooling-off sleep", func(t *testing.T) {
		id := place(t, `{"sku":"mug","quantity":2,"card":"4242"}`)
		ferrytest.Eventually(t, func() bool { return get(t, id).Waiting == "sleep" }, "the order cools off")
		rec := ended(t, id)
		if rec.State != ferry.JobSucceeded || rec.Result.Total != 2500 || rec.Result.Shipment == "" || w.left("mug") != 98 {
			t.Fatalf("record %+v, %d mugs left", rec, w.left("mug"))
		}
	})
	t.Run("a large order waits for its approval", func(t *testing.T) {
		id := place(t, `{"sku":"shirt","quantity":12,"card":"4242"}`)
		ferrytest.Eventually(t, func() bool { return get(t, id).Waiting == "signal approval" }, "the order waits for approval")
		if resp := send(t, http.MethodPost, base+"/orders/"+id+"/approval", `{"approved":true,"by":"ann"}`, nil); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("approval: %d", resp.StatusCode)
		}
		if rec := ended(t, id); rec.State != ferry.JobSucceeded || w.left("shirt") != 28 {
			t.Fatalf("record %+v, %d shirts left", rec, w.left("shirt"))
		}
	})
	t.Run("a declined card releases the stock", func(t *testing.T) {
		id := place(t, `{"sku":"poster","quantity":3,"card":"declined"}`)
		if rec := ended(t, id); rec.State != ferry.JobFailed || rec.LastError != "the card was declined" || w.left("poster") != 5 {
			t.Fatalf("record %+v, %d posters left", rec, w.left("poster"))
		}
	})
	t.Run("an order not approved in time is refunded and released", func(t *testing.T) {
		id := place(t, `{"sku":"mug","quantity":10,"card":"4242"}`)
		rec := ended(t, id)
		if rec.State != ferry.JobFailed || !strings.Contains(rec.LastError, "not approved") || w.left("mug") != 98 || len(w.refunded) != 1 {
			t.Fatalf("record %+v, %d mugs left, refunds %v", rec, w.left("mug"), w.refunded)
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		for _, tc := range []struct {
			method, path, body string
			status             int
		}{
			{http.MethodPost, "/orders", `{"sku":"","quantity":0}`, http.StatusUnprocessableEntity},
			{http.MethodPost, "/orders/aaaaaaaaaaaaaaaaaaaaaaaaaa/approval", `{"approved":true}`, http.StatusNotFound},
			{http.MethodGet, "/runs/aaaaaaaaaaaaaaaaaaaaaaaaaa", "", http.StatusNotFound},
		} {
			if resp := send(t, tc.method, base+tc.path, tc.body, nil); resp.StatusCode != tc.status {
				t.Errorf("%s %s: %d; want %d", tc.method, tc.path, resp.StatusCode, tc.status)
			}
		}
	})
}
