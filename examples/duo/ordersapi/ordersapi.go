// Package ordersapi is the contract of the orders service.
package ordersapi

import (
	"net/http"

	"github.com/ferrygo/ferry"
)

// Order is a placed order.
type Order struct {
	ID       int    `json:"id"`
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
	Total    int    `json:"total" doc:"Total price in cents, priced by the catalog."`
}

// PlaceOrderInput is the input of [PlaceOrder].
type PlaceOrderInput struct {
	Body struct {
		SKU      string `json:"sku" pattern:"^[a-z0-9-]+$" maxLength:"32"`
		Quantity int    `json:"quantity" minimum:"1" maximum:"1000"`
	}
}

// PlaceOrderOutput is the output of [PlaceOrder].
type PlaceOrderOutput struct {
	Body Order
}

// PlaceOrder places an order, priced by the catalog.
var PlaceOrder = ferry.Endpoint[PlaceOrderInput, PlaceOrderOutput]{
	Service:       "orders",
	Name:          "place-order",
	Method:        http.MethodPost,
	Path:          "/orders",
	DefaultStatus: http.StatusCreated,
	Summary:       "Place an order",
	Description:   "Fails with 422 unknown_product when the catalog has no product of that SKU.",
	Errors:        []int{http.StatusUnprocessableEntity},
}

// CountOrdersInput is the input of [CountOrders].
type CountOrdersInput struct {
	SKU string `path:"sku"`
}

// CountOrdersOutput is the output of [CountOrders].
type CountOrdersOutput struct {
	Body struct {
		SKU    string `json:"sku"`
		Orders int    `json:"orders"`
	}
}

// CountOrders counts the orders of a product.
var CountOrders = ferry.Endpoint[CountOrdersInput, CountOrdersOutput]{
	Service: "orders",
	Name:    "count-orders",
	Method:  http.MethodGet,
	Path:    "/orders/count/{sku}",
	Summary: "Count the orders of a product",
}
