// Package checkoutapi is the contract of the checkout service: its
// endpoint and the event it publishes.
package checkoutapi

import (
	"net/http"

	"github.com/ferrygo/ferry"
)

// Order is what a customer checks out: a quantity of one product.
type Order struct {
	SKU string `json:"sku" pattern:"^[a-z0-9-]+$" maxLength:"32"`
	Qty int    `json:"qty" minimum:"1" maximum:"1000"`
}

// CheckoutCompleted is a checked-out order: the answer of [Checkout] and
// the event of [Completed].
type CheckoutCompleted struct {
	OrderID string `json:"order_id" minLength:"1"`
	SKU     string `json:"sku" minLength:"1"`
	Qty     int    `json:"qty" minimum:"1"`
}

// Checkout reserves an order's stock with the inventory, publishes
// [Completed] and answers 201, or the inventory's 409 insufficient_stock.
var Checkout = ferry.Endpoint[Order, CheckoutCompleted]{
	Service:       "checkout",
	Name:          "checkout",
	Method:        http.MethodPost,
	Path:          "/checkout",
	DefaultStatus: http.StatusCreated,
	Errors:        []int{http.StatusConflict},
}

// Completed is the topic of completed checkouts.
var Completed = ferry.Topic[CheckoutCompleted]{
	Name:        "checkout-completed",
	Subject:     "checkout.completed",
	Description: "An order was checked out: its stock is reserved.",
}
