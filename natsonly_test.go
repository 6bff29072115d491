package ferry_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

type internalIn struct {
	SKU string `json:"sku"`
}

var internalEndpoint = ferry.Endpoint[internalIn, internalIn]{
	Service: "inner", Name: "set-price", Method: http.MethodPost, Path: "/prices", NATSOnly: true,
}

// TestNATSOnly: a NATSOnly endpoint answers over NATS, answers 404 over
// HTTP as an unknown path does, and is not in the OpenAPI document.
func TestNATSOnly(t *testing.T) {
	svc := ferry.MustNew("inner", "1.0.0", ferry.WithNATS())
	ferry.Handle(svc, internalEndpoint, func(ctx context.Context, in *internalIn) (*internalIn, error) { return in, nil })
	h := ferrytest.Start(t, svc)
	out, err := internalEndpoint.Call(context.Background(), h.Client, &internalIn{SKU: "mug"})
	if err != nil || out.SKU != "mug" {
		t.Fatalf("over NATS: %+v, %v", out, err)
	}
	base := ferrytest.URL(t, svc)
	resp, err := http.Post(base+"/prices", "application/json", strings.NewReader(`{"sku":"mug"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "no endpoint at /prices") {
		t.Errorf("over HTTP: %d %s, want the 404 of an unknown path", resp.StatusCode, body)
	}
	resp, err = http.Get(base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(doc), "/prices") || strings.Contains(string(doc), "set-price") {
		t.Errorf("the OpenAPI document lists the NATS-only endpoint")
	}
}

func TestNATSOnlyAndHTTPOnly(t *testing.T) {
	defer func() {
		if v := recover(); v == nil || !strings.Contains(v.(string), "no transport") {
			t.Errorf("recovered %v, want a panic saying the endpoint has no transport", v)
		}
	}()
	ep := internalEndpoint
	ep.HTTPOnly = true
	ferry.Handle(ferry.MustNew("inner", "1.0.0"), ep, func(ctx context.Context, in *internalIn) (*internalIn, error) { return in, nil })
}
