package ferry_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/items/itemsapi"
	"github.com/ferrygo/ferry/internal/envelope"
)

// parityCase is one call made over HTTP and through the in-memory
// transport; both must answer the same status, content type and bytes.
type parityCase struct {
	name     string
	endpoint string
	method   string
	target   string // HTTP request target
	params   map[string]string
	query    string
	body     string
	header   http.Header
	status   int
}

func TestTransportParity(t *testing.T) {
	items := ferry.MustNew("items", "1.0.0", quiet)
	ferry.Handle(items, itemsapi.GetItem, func(_ context.Context, in *itemsapi.GetItemInput) (*itemsapi.GetItemOutput, error) {
		switch in.ItemID {
		case 500:
			return nil, errors.New("storage offline")
		case 501:
			panic("boom")
		}
		return &itemsapi.GetItemOutput{Body: itemsapi.Item{ItemID: in.ItemID}}, nil
	})
	test, _ := newTestService(t)
	services := map[string]*ferry.Service{"get-item": items, "echo": test, "fail-typed": test, "panic": test}

	cases := []parityCase{
		{name: "items 200", endpoint: "get-item", method: "GET", target: "/items/42", params: map[string]string{"item_id": "42"}, status: 200},
		{name: "items 422 abc", endpoint: "get-item", method: "GET", target: "/items/abc", params: map[string]string{"item_id": "abc"}, status: 422},
		{name: "items 422 overflow", endpoint: "get-item", method: "GET", target: "/items/99999999999999999999", params: map[string]string{"item_id": "99999999999999999999"}, status: 422},
		{name: "items 500 error", endpoint: "get-item", method: "GET", target: "/items/500", params: map[string]string{"item_id": "500"}, status: 500},
		{name: "items 500 panic", endpoint: "get-item", method: "GET", target: "/items/501", params: map[string]string{"item_id": "501"}, status: 500},
		{name: "echo all locations", endpoint: "echo", method: "POST", target: "/echo/3?limit=5&tags=a,b", params: map[string]string{"id": "3"}, query: "limit=5&tags=a,b",
			body: `{"name":"n"}`, header: http.Header{"X-Token": {"abc"}}, status: 200},
		{name: "echo 422 query", endpoint: "echo", method: "POST", target: "/echo/3?limit=900", params: map[string]string{"id": "3"}, query: "limit=900", body: `{"name":"n"}`, status: 422},
		{name: "echo 422 header", endpoint: "echo", method: "POST", target: "/echo/3", params: map[string]string{"id": "3"}, body: `{"name":"n"}`, header: http.Header{"X-Token": {"much-too-long"}}, status: 422},
		{name: "echo 422 body", endpoint: "echo", method: "POST", target: "/echo/3", params: map[string]string{"id": "3"}, body: `{"name":""}`, status: 422},
		{name: "echo 400 malformed body", endpoint: "echo", method: "POST", target: "/echo/3", params: map[string]string{"id": "3"}, body: `{`, status: 400},
		{name: "typed error", endpoint: "fail-typed", method: "GET", target: "/fail/typed", status: 409},
		{name: "panic", endpoint: "panic", method: "GET", target: "/panic", status: 500},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc := services[tc.endpoint]
			header := http.Header{ferry.HeaderRequestID: {"parity-1"}}
			for k, v := range tc.header {
				header[k] = v
			}
			rec := do(t, svc.Handler(), tc.method, tc.target, tc.body, header)

			memHeader := header.Clone()
			if tc.body != "" {
				memHeader.Set("Content-Type", "application/json")
			}
			resp := svc.Invoke(context.Background(), tc.endpoint, &envelope.Request{
				Params: tc.params, RawQuery: tc.query, Header: memHeader, Body: []byte(tc.body),
			})
			if rec.Code != tc.status || resp.Status != tc.status {
				t.Fatalf("status: HTTP %d, memory %d, want %d\nHTTP: %s\nmemory: %s", rec.Code, resp.Status, tc.status, rec.Body, resp.Body.String())
			}
			if rec.Body.String() != resp.Body.String() {
				t.Errorf("bodies differ\nHTTP:   %s\nmemory: %s", rec.Body, resp.Body.String())
			}
			for _, h := range []string{"Content-Type", ferry.HeaderRequestID, "X-Trace", "Retry-After"} {
				if rec.Header().Get(h) != resp.Header.Get(h) {
					t.Errorf("%s: HTTP %q, memory %q", h, rec.Header().Get(h), resp.Header.Get(h))
				}
			}
		})
	}
}

func TestInvokeUnknownEndpoint(t *testing.T) {
	svc, _ := newTestService(t)
	resp := svc.Invoke(context.Background(), "nope", &envelope.Request{})
	if resp.Status != 404 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("got %d %s", resp.Status, resp.Body.String())
	}
}
