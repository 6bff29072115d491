package ferry_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
	"github.com/ferrygo/ferry/internal/envelope"
)

// Line is one line of an order: a nested object in a request body.
type Line struct {
	SKU string `json:"sku" minLength:"1"`
	Qty int    `json:"qty" minimum:"1"`
}

// Address is shared by a request body and a response body.
type Address struct {
	City string `json:"city"`
}

// OrderInput is a request whose body has nested objects and a list.
type OrderInput struct {
	Body struct {
		Lines   []Line  `json:"lines" minItems:"1"`
		Address Address `json:"address"`
	}
}

// Receipt is a body that only responses carry.
type Receipt struct {
	Lines   int     `json:"lines"`
	Address Address `json:"address"`
}

// ReceiptOutput answers an order.
type ReceiptOutput struct {
	Body Receipt
}

// StrictLine is a body whose type opts out of the tolerant default.
type StrictLine struct {
	_   struct{} `additionalProperties:"false"`
	SKU string   `json:"sku"`
}

// StrictInput carries a StrictLine.
type StrictInput struct {
	Body StrictLine
}

func newCompatService(t *testing.T) *ferry.Service {
	t.Helper()
	svc := ferry.MustNew("compat", "1.0.0", ferry.WithConfig(ferrytest.Config(t)), ferry.WithNATS(), quiet)
	// A response registers Address first; the request body below still
	// makes it tolerant.
	ferry.Get(svc, "address", "/address", func(context.Context, *Empty) (*struct{ Body Address }, error) {
		return &struct{ Body Address }{}, nil
	})
	ferry.Post(svc, "order", "/orders", func(_ context.Context, in *OrderInput) (*ReceiptOutput, error) {
		return &ReceiptOutput{Body: Receipt{Lines: len(in.Body.Lines), Address: in.Body.Address}}, nil
	})
	ferry.Post(svc, "strict", "/strict", func(_ context.Context, in *StrictInput) (*Empty, error) {
		return &Empty{}, nil
	})
	return svc
}

// TestRequestBodiesAreTolerant: an endpoint accepts, and ignores, body
// properties its input type does not declare, at every depth and over
// every transport, so a caller that sends a new field does not break the
// replicas that do not know it yet. A body type may opt out.
func TestRequestBodiesAreTolerant(t *testing.T) {
	svc := newCompatService(t)
	h := ferrytest.Start(t, svc)
	nc, base := h.NATS(), ferrytest.URL(t, svc)
	tests := []struct {
		name, endpoint, path, body string
		status                     int
		answer                     string // the body answered, when 200
	}{
		{"unknown top-level property", "order", "/orders", `{"lines":[{"sku":"a","qty":1}],"address":{"city":"Oslo"},"coupon":"X1"}`,
			200, `{"lines":1,"address":{"city":"Oslo"}}`},
		{"unknown nested properties", "order", "/orders", `{"lines":[{"sku":"a","qty":1,"gift":true}],"address":{"city":"Oslo","zip":"0150"}}`,
			200, `{"lines":1,"address":{"city":"Oslo"}}`},
		{"declared properties still validated", "order", "/orders", `{"lines":[{"sku":"","qty":1,"gift":true}],"address":{"city":"Oslo"}}`,
			422, ""},
		{"a type that opts out stays strict", "strict", "/strict", `{"sku":"a","extra":1}`, 422, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := http.Header{"Content-Type": {"application/json"}, ferry.HeaderRequestID: {"compat-1"}}
			status, _, body := callHTTP(t, base, "POST", tt.path, tt.body, header)
			resp := callNATS(t, nc, "compat", tt.endpoint, &envelope.Request{Header: header.Clone(), Body: []byte(tt.body)})
			if status != tt.status || resp.Status != tt.status {
				t.Fatalf("HTTP %d %s, NATS %d %s; want %d", status, body, resp.Status, resp.Body.String(), tt.status)
			}
			if body != resp.Body.String() {
				t.Errorf("bodies differ\nHTTP: %s\nNATS: %s", body, resp.Body.String())
			}
			if tt.answer != "" && body != tt.answer {
				t.Errorf("answered %s, want %s", body, tt.answer)
			}
		})
	}
}

// TestOpenAPISaysBodiesAreTolerant: the OpenAPI document says what the
// server does: schemas reached from a request body allow additional
// properties (explicitly), schemas only responses use keep
// additionalProperties false, and a type that opts out keeps it.
func TestOpenAPISaysBodiesAreTolerant(t *testing.T) {
	svc := newCompatService(t)
	rec := do(t, svc.Handler(), "GET", "/openapi.json", "", nil)
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				AdditionalProperties any `json:"additionalProperties"`
			}
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"OrderInputBody":        true,  // the request body
		"ferry_test.Line":       true,  // nested in it
		"ferry_test.Address":    true,  // shared with a response: what requests may send
		"ferry_test.Receipt":    false, // responses only
		"ferry_test.StrictLine": false, // opted out
	}
	for name, addl := range want {
		s, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("no schema %s; have %v", name, keys(doc.Components.Schemas))
			continue
		}
		if s.AdditionalProperties != addl {
			t.Errorf("%s: additionalProperties %v, want %v", name, s.AdditionalProperties, addl)
		}
	}
}
