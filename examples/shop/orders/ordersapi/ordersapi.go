// Package ordersapi is the contract of the orders service: placing an
// order (a durable workflow), reading and cancelling one, and the event
// of a placed order. Other services import it, and nothing else of orders.
// Its endpoints are NATSOnly: the gateway calls them, with the caller
// authenticated; the orders service's HTTP port serves none of them.
package ordersapi

import (
	"net/http"
	"time"

	"github.com/ferrygo/ferry"
)

// The states of an [Order].
const (
	StatePlaced    = "placed"    // accepted; its workflow reserves and charges
	StatePaid      = "paid"      // reserved, charged, sold; an invoice is on its way
	StateInvoiced  = "invoiced"  // invoiced: done
	StateFailed    = "failed"    // refused (out of stock, payment declined); whatever it held is released
	StateCancelled = "cancelled" // cancelled before it was paid; whatever it held is released
)

// Orders is the bucket the orders service keeps its orders in (o.<id>).
var Orders = ferry.Bucket{Name: "shop-orders", Description: "The shop's orders."}

// Order is an order and where it is.
type Order struct {
	OrderID  string `json:"order_id"`
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
	State    string `json:"state" enum:"placed,paid,invoiced,failed,cancelled"`
	// Total is what was charged, in cents, once paid.
	Total   int    `json:"total,omitempty"`
	Payment string `json:"payment,omitempty" doc:"The payment's ID, once paid."`
	Invoice string `json:"invoice,omitempty" doc:"The invoice's number, once invoiced."`
	// Reason says why a failed order failed.
	Reason    string    `json:"reason,omitempty"`
	PlacedAt  time.Time `json:"placed_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Terminal reports whether the order will not change any more.
func (o *Order) Terminal() bool {
	return o.State == StateInvoiced || o.State == StateFailed || o.State == StateCancelled
}

// PlaceInput is an order to place.
type PlaceInput struct {
	SKU      string `json:"sku" pattern:"^[a-z0-9-]{1,32}$" doc:"The product to order."`
	Quantity int    `json:"quantity" minimum:"1" maximum:"1000" doc:"How many."`
	// Key makes a retried placement place one order: the same key within
	// a day answers the first order.
	Key string `json:"key,omitempty" maxLength:"512"`
}

// Place places an order: it is stored, and its workflow runs, before the
// answer. 409 out_of_stock (nothing is made), 404 unknown_product.
var Place = ferry.Endpoint[PlaceInput, Order]{
	Service: "orders", Name: "place-order", Method: http.MethodPost, Path: "/orders",
	NATSOnly: true,
	Summary:  "Place an order", Errors: []int{http.StatusNotFound, http.StatusConflict},
}

// OrderIDInput names an order.
type OrderIDInput struct {
	OrderID string `path:"order_id" pattern:"^[a-z2-7]{26}$" doc:"The order's ID."`
}

// Get reads an order; 404 unknown_order.
var Get = ferry.Endpoint[OrderIDInput, Order]{
	Service: "orders", Name: "get-order", Method: http.MethodGet, Path: "/orders/{order_id}",
	NATSOnly: true,
	Summary:  "Read an order", Errors: []int{http.StatusNotFound},
}

// Cancel cancels an order that is not paid yet (what it holds is
// released); a paid order is not cancelled. The order after.
var Cancel = ferry.Endpoint[OrderIDInput, Order]{
	Service: "orders", Name: "cancel-order", Method: http.MethodDelete, Path: "/orders/{order_id}",
	NATSOnly: true,
	Summary:  "Cancel an order", Errors: []int{http.StatusNotFound},
}

// Run is an order's workflow run and its recorded steps.
type Run struct {
	Run   *ferry.JobRecord[Paid] `json:"run"`
	Steps []ferry.WorkflowStep   `json:"steps"`
}

// GetRun reads an order's workflow run and its steps.
var GetRun = ferry.Endpoint[OrderIDInput, Run]{
	Service: "orders", Name: "get-order-run", Method: http.MethodGet, Path: "/orders/{order_id}/run",
	NATSOnly: true,
	Summary:  "Read an order's workflow run and steps", Errors: []int{http.StatusNotFound},
}

// Paid is the result of a [PlaceOrder] run.
type Paid struct {
	Total   int    `json:"total"`
	Payment string `json:"payment"`
}

// OrderRequest is the input of a [PlaceOrder] run.
type OrderRequest struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// PlaceOrder is the workflow of an order: reserve the stock, take the
// payment, mark the stock sold, publish [Placed]. A failure after the
// reservation refunds the payment and releases the stock.
var PlaceOrder = ferry.Workflow[OrderRequest, Paid]{Name: "place-order", Description: "Reserves stock, takes payment, sells the stock and publishes order-placed."}

// OrderPlaced is an order that was paid.
type OrderPlaced struct {
	OrderID  string `json:"order_id"`
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
	Total    int    `json:"total"`
	Payment  string `json:"payment"`
}

// Placed is published once per paid order (its message ID is the order's).
var Placed = ferry.Topic[OrderPlaced]{Name: "order-placed", Subject: "shop.orders.placed", Description: "An order was paid."}
