// Package ordersapi is the contract of the orders service: the workflow
// that places an order, the endpoint that starts one and the endpoint
// that approves one. Callers import it without the handlers.
package ordersapi

import (
	"net/http"

	"github.com/ferrygo/ferry"
)

// OrderRequest is an order to place.
type OrderRequest struct {
	SKU      string `json:"sku" minLength:"1" maxLength:"64" doc:"The product to order."`
	Quantity int    `json:"quantity" minimum:"1" maximum:"1000" doc:"How many."`
	Card     string `json:"card" minLength:"1" maxLength:"64" doc:"The card to charge (\"declined\" is refused by the simulated payment service)."`
}

// Order is a placed order.
type Order struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
	Total    int    `json:"total" doc:"What was charged, in cents."`
	Payment  string `json:"payment" doc:"The payment's ID."`
	Shipment string `json:"shipment" doc:"The shipment's ID."`
}

// Approval is a reviewer's decision on a large order.
type Approval struct {
	Approved bool   `json:"approved"`
	By       string `json:"by,omitempty" maxLength:"64"`
}

// PlaceOrder is the workflow that places an order: reserve the stock,
// charge the card, wait for a reviewer's approval when the order is
// large, hold it for a cooling-off period, ship it. A failure after the
// reservation refunds the charge and releases the stock.
var PlaceOrder = ferry.Workflow[OrderRequest, Order]{Name: "place-order", Description: "Reserves stock, charges the card, waits for approval if large, ships."}

// StartOrder places an order: 202 Accepted, with the run's URL in
// Location. GET it for the order, GET …/events to follow it.
var StartOrder = ferry.Endpoint[ferry.JobRequest[OrderRequest], ferry.JobAccepted[Order]]{
	Service: "orders", Name: "start-order", Method: http.MethodPost, Path: "/orders",
	Summary: "Place an order", Description: "Answers 202 Accepted at once; the order is placed by a durable workflow.",
	Tags: []string{"orders"},
}

// ApproveInput is a decision on the order whose run is RunID.
type ApproveInput struct {
	RunID string `path:"run_id" pattern:"^[a-z2-7]{26}$" doc:"The order's run ID."`
	Body  Approval
}

// Approve sends a reviewer's decision to a large order waiting for it.
var Approve = ferry.Endpoint[ApproveInput, struct{}]{
	Service: "orders", Name: "approve-order", Method: http.MethodPost, Path: "/orders/{run_id}/approval",
	Summary: "Approve or reject a large order", DefaultStatus: http.StatusAccepted, Tags: []string{"orders"},
}
