package dashboard

import (
	"slices"
	"testing"
)

// TestEdgesOf: the edges a service's AsyncAPI document gives.
func TestEdgesOf(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []Edge
	}{
		{"publish and receive", `{"channels":{"order-placed":{"address":"shop.orders.placed"},"order-invoiced":{"address":"shop.orders.invoiced"}},
			"operations":{"publish-order-placed":{"action":"send","channel":{"$ref":"#/channels/order-placed"}},
			"receive-order-invoiced-mark":{"action":"receive","channel":{"$ref":"#/channels/order-invoiced"},"x-ferry-consumer":"mark"}}}`,
			[]Edge{{Kind: "publish", From: "orders", To: "order-placed"}, {Kind: "consume", From: "order-invoiced", To: "orders", Label: "mark"}}},
		{"a call: send on another service's endpoint channel", `{"channels":{"catalog-reserve":{"address":"ferry.catalog.reserve"}},
			"operations":{"call-catalog-reserve":{"action":"send","channel":{"$ref":"#/channels/catalog-reserve"},"reply":{"channel":{"$ref":"#/channels/catalog-reserve-reply"}}}}}`,
			[]Edge{{Kind: "call", From: "orders", To: "catalog", Label: "reserve"}}},
		{"a call: send replying from another service's endpoint channel", `{"channels":{"req":{"address":"ferry.catalog.reserve.requests"},"rep":{"address":"ferry.catalog.sell"}},
			"operations":{"call":{"action":"send","channel":{"$ref":"#/channels/req"},"reply":{"channel":{"$ref":"#/channels/rep"}}}}}`,
			[]Edge{{Kind: "call", From: "orders", To: "catalog", Label: "sell"}}},
		{"its own endpoint: no edge", `{"channels":{"own":{"address":"ferry.orders.place-order"}},
			"operations":{"serve":{"action":"receive","channel":{"$ref":"#/channels/own"}}}}`, nil},
		{"not JSON", `<html>`, nil},
		{"a dangling reference", `{"operations":{"x":{"action":"send","channel":{"$ref":"#/components/x"}}}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := edgesOf("orders", []byte(tt.doc)); !slices.Equal(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
