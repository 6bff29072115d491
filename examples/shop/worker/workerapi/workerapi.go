// Package workerapi is the contract of the worker service: the invoice
// job, the invoices it keeps and the event of an invoiced order. Other
// services import it, and nothing else of the worker.
package workerapi

import (
	"time"

	"github.com/ferrygo/ferry"
)

// Invoices is the bucket the worker keeps invoices in: one key i.<order_id>
// per order, written once.
var Invoices = ferry.Bucket{Name: "shop-invoices", Description: "The shop's invoices, one per order."}

// InvoiceRequest is an order to invoice.
type InvoiceRequest struct {
	OrderID  string `json:"order_id"`
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
	Total    int    `json:"total"`
}

// Invoice is an order's invoice.
type Invoice struct {
	Number   string    `json:"number"`
	OrderID  string    `json:"order_id"`
	Total    int       `json:"total"`
	IssuedAt time.Time `json:"issued_at"`
}

// InvoiceOrder is the job that writes an order's invoice (once, however
// often it runs) and publishes [Invoiced].
var InvoiceOrder = ferry.Job[InvoiceRequest, Invoice]{Name: "invoice-order", Description: "Writes an order's invoice and publishes order-invoiced."}

// Invoiced is published once an order's invoice is written (its message
// ID is the order's).
var Invoiced = ferry.Topic[Invoice]{Name: "order-invoiced", Subject: "shop.orders.invoiced", Description: "An order was invoiced."}
