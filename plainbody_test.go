package ferry_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// Plain request and response structs: no Body wrapper, no parameters.
type reserveRequest struct {
	SKU      string `json:"sku" minLength:"1"`
	Quantity int    `json:"quantity" minimum:"1"`
}

type reservation struct {
	SKU  string `json:"sku"`
	Left int    `json:"left"`
}

var reserveStock = ferry.Endpoint[reserveRequest, reservation]{Service: "stock", Name: "reserve", Method: http.MethodPost, Path: "/reservations"}

type stockInput struct {
	SKU string `path:"sku"`
}

var getStock = ferry.Endpoint[stockInput, reservation]{Service: "stock", Name: "get-stock", Method: http.MethodGet, Path: "/stock/{sku}"}

// TestPlainBodies: an endpoint whose input and output are plain structs
// takes and answers them as the body, over HTTP and over NATS alike, with
// the schema's validation, and documents them as such.
func TestPlainBodies(t *testing.T) {
	svc := ferry.MustNew("stock", "1.0.0", ferry.WithNATS(), quiet)
	ferry.Handle(svc, reserveStock, func(ctx context.Context, in *reserveRequest) (*reservation, error) {
		if in.Quantity > 10 {
			return nil, ferry.NewError(http.StatusConflict, "only 10 left")
		}
		return &reservation{SKU: in.SKU, Left: 10 - in.Quantity}, nil
	})
	ferry.Handle(svc, getStock, func(ctx context.Context, in *stockInput) (*reservation, error) {
		return &reservation{SKU: in.SKU, Left: 10}, nil
	})
	h := ferrytest.Start(t, svc)
	base := ferrytest.URL(t, svc)
	ctx := context.Background()

	post := func(body string) (int, string) {
		resp, err := http.Post(base+"/reservations", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := post(`{"sku":"mug","quantity":3}`); status != 200 || body != `{"sku":"mug","left":7}` {
		t.Errorf("POST: %d %s", status, body)
	}
	out, err := reserveStock.Call(ctx, h.Client, &reserveRequest{SKU: "mug", Quantity: 3})
	if err != nil || *out != (reservation{SKU: "mug", Left: 7}) {
		t.Errorf("call: %+v, %v", out, err)
	}
	got, err := getStock.Call(ctx, h.Client, &stockInput{SKU: "mug"})
	if err != nil || *got != (reservation{SKU: "mug", Left: 10}) {
		t.Errorf("call get-stock: %+v, %v", got, err)
	}

	// Validation and errors, the same over both transports.
	status, body := post(`{"sku":"","quantity":0}`)
	_, err = reserveStock.Call(ctx, h.Client, &reserveRequest{SKU: "", Quantity: 0})
	var ce *ferry.CallError
	if status != 422 || !strings.Contains(body, "body.sku") || !errors.As(err, &ce) || ce.Status != 422 {
		t.Errorf("invalid input: HTTP %d %s; NATS %v", status, body, err)
	}
	if status, _ := post(`{"sku":"mug","quantity":11}`); status != 409 {
		t.Errorf("conflict over HTTP: %d", status)
	}
	if _, err := reserveStock.Call(ctx, h.Client, &reserveRequest{SKU: "mug", Quantity: 11}); !errors.As(err, &ce) || ce.Status != 409 {
		t.Errorf("conflict over NATS: %v", err)
	}

	// The document: the request and the response bodies are the structs.
	var doc struct {
		Paths map[string]map[string]struct {
			RequestBody struct {
				Content map[string]struct {
					Schema struct {
						Ref string `json:"$ref"`
					} `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
			Responses map[string]struct {
				Content map[string]struct {
					Schema struct {
						Ref string `json:"$ref"`
					} `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	raw, _ := json.Marshal(svc.API().OpenAPI())
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	op := doc.Paths["/reservations"]["post"]
	if req, resp := op.RequestBody.Content["application/json"].Schema.Ref, op.Responses["200"].Content["application/json"].Schema.Ref; !strings.HasSuffix(req, "ReserveRequest") || !strings.HasSuffix(resp, "Reservation") {
		t.Errorf("OpenAPI: request %q, response %q", req, resp)
	}
}
