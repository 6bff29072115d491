// Package ordersapi is the contract of the orders service: its endpoint
// and the event it publishes.
package ordersapi

import (
	"net/http"

	"github.com/ferrygo/ferry"
)

// OrderPlaced is the event published for each order.
type OrderPlaced struct {
	OrderID  string `json:"order_id" minLength:"1" doc:"The order's ID."`
	SKU      string `json:"sku" pattern:"^[a-z0-9-]+$" doc:"What was ordered."`
	Quantity int    `json:"quantity" minimum:"1"`
}

// Placed is the topic of placed orders.
var Placed = ferry.Topic[OrderPlaced]{
	Name:        "order-placed",
	Subject:     "orders.placed",
	Description: "An order was placed and must be shipped.",
}

// PlaceOrderInput is the input of [PlaceOrder].
type PlaceOrderInput struct {
	// IdempotencyKey, when given, makes a retried request (the same key
	// and the same body) place the same order: its ID and its event's
	// message ID derive from the key.
	IdempotencyKey string `header:"Idempotency-Key" maxLength:"128" doc:"Send the same key when retrying a request, so the order is placed once."`
	Body           struct {
		SKU      string `json:"sku" pattern:"^[a-z0-9-]+$" maxLength:"32"`
		Quantity int    `json:"quantity" minimum:"1" maximum:"100"`
	}
}

// PlaceOrderOutput is the output of [PlaceOrder].
type PlaceOrderOutput struct {
	// Replayed is "true" when the order had already been placed with the
	// request's Idempotency-Key.
	Replayed string `header:"Idempotent-Replayed" doc:"true when a request with this Idempotency-Key had already placed the order."`
	Body     OrderPlaced
}

// PlaceOrder accepts an order and publishes [Placed]; it answers once the
// event is durably stored.
var PlaceOrder = ferry.Endpoint[PlaceOrderInput, PlaceOrderOutput]{
	Service:       "orders",
	Name:          "place-order",
	Method:        http.MethodPost,
	Path:          "/orders",
	DefaultStatus: http.StatusAccepted,
	Summary:       "Place an order (shipped asynchronously)",
}
