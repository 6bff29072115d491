// Package gatewayapi is the contract of the gateway, the shop's public
// HTTP API: placing, following and cancelling orders (with an API key),
// and reading products (public). Its documents are at /docs.
package gatewayapi

import (
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/shop/catalog/catalogapi"
	"github.com/ferrygo/ferry/examples/shop/orders/ordersapi"
)

// OrderRequest is an order to place.
type OrderRequest struct {
	SKU      string `json:"sku" pattern:"^[a-z0-9-]{1,32}$" doc:"The product to order." example:"mug"`
	Quantity int    `json:"quantity" minimum:"1" maximum:"1000" doc:"How many." example:"2"`
}

// PlaceOrderInput is a request to place an order.
type PlaceOrderInput struct {
	IdempotencyKey string `header:"Idempotency-Key" maxLength:"255" doc:"A retried request with the same key places no second order: it answers the first."`
	Body           OrderRequest
}

// PlaceOrderOutput is an accepted order: 202, its URL in Location.
type PlaceOrderOutput struct {
	Location string `header:"Location" doc:"The order's URL: GET it for its state, GET …/events to follow it."`
	Body     ordersapi.Order
}

// PlaceOrder places an order: 202 Accepted once it is stored; its
// workflow reserves, charges and sells, then it is invoiced. 409
// out_of_stock places nothing.
var PlaceOrder = ferry.Endpoint[PlaceOrderInput, PlaceOrderOutput]{
	Service: "gateway", Name: "place-order", Method: http.MethodPost, Path: "/orders", DefaultStatus: http.StatusAccepted,
	Summary: "Place an order", Tags: []string{"orders"}, Errors: []int{http.StatusNotFound, http.StatusConflict},
}

// GetOrder reads an order: its state follows its workflow (placed, paid,
// invoiced, failed, cancelled).
var GetOrder = ferry.Endpoint[ordersapi.OrderIDInput, ordersapi.Order]{
	Service: "gateway", Name: "get-order", Method: http.MethodGet, Path: "/orders/{order_id}",
	Summary: "Read an order", Tags: []string{"orders"}, Errors: []int{http.StatusNotFound},
}

// CancelOrder cancels an order not paid yet; the order after.
var CancelOrder = ferry.Endpoint[ordersapi.OrderIDInput, ordersapi.Order]{
	Service: "gateway", Name: "cancel-order", Method: http.MethodDelete, Path: "/orders/{order_id}",
	Summary: "Cancel an order", Tags: []string{"orders"}, Errors: []int{http.StatusNotFound},
}

// GetOrderRun reads an order's workflow run and its recorded steps.
var GetOrderRun = ferry.Endpoint[ordersapi.OrderIDInput, ordersapi.Run]{
	Service: "gateway", Name: "get-order-run", Method: http.MethodGet, Path: "/orders/{order_id}/run",
	Summary: "Read an order's workflow run", Tags: []string{"orders"}, Errors: []int{http.StatusNotFound},
}

// OrderEvents follows an order: Server-Sent Events, the order at each
// change, until it is invoiced, failed or cancelled.
var OrderEvents = ferry.Endpoint[ordersapi.OrderIDInput, huma.StreamResponse]{
	Service: "gateway", Name: "order-events", Method: http.MethodGet, Path: "/orders/{order_id}/events",
	Summary: "Follow an order", Tags: []string{"orders"}, HTTPOnly: true, Streaming: true,
}

// ListProducts lists the products with their stock.
var ListProducts = ferry.Endpoint[struct{}, catalogapi.ProductList]{
	Service: "gateway", Name: "list-products", Method: http.MethodGet, Path: "/products",
	Summary: "List products", Tags: []string{"products"}, Auth: ferry.Auth{Public: true},
}

// GetProduct reads a product: name, price, stock, reserved and sold.
var GetProduct = ferry.Endpoint[catalogapi.SKUInput, catalogapi.Product]{
	Service: "gateway", Name: "get-product", Method: http.MethodGet, Path: "/products/{sku}",
	Summary: "Read a product", Tags: []string{"products"}, Auth: ferry.Auth{Public: true}, Errors: []int{http.StatusNotFound},
}
