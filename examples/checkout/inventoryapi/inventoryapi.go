// Package inventoryapi is the contract of the inventory service.
package inventoryapi

import (
	"net/http"

	"github.com/ferrygo/ferry"
)

// Stock is how much of a product is available.
type Stock struct {
	SKU       string `json:"sku"`
	Available int    `json:"available"`
}

// GetStockInput is the input of [GetStock].
type GetStockInput struct {
	SKU string `path:"sku" pattern:"^[a-z0-9-]+$" maxLength:"32"`
}

// GetStock reads a product's stock; 404 unknown_sku for a product the
// inventory does not hold.
var GetStock = ferry.Endpoint[GetStockInput, Stock]{
	Service: "inventory",
	Name:    "get-stock",
	Method:  http.MethodGet,
	Path:    "/stock/{sku}",
	Errors:  []int{http.StatusNotFound},
}

// Reservation is a request to take qty of a product out of stock.
type Reservation struct {
	SKU string `json:"sku" pattern:"^[a-z0-9-]+$" maxLength:"32"`
	Qty int    `json:"qty" minimum:"1" maximum:"1000"`
}

// Reserve takes a reservation out of stock and answers 201 with what is
// left, or 409 insufficient_stock when too little is available.
var Reserve = ferry.Endpoint[Reservation, Stock]{
	Service:       "inventory",
	Name:          "reserve",
	Method:        http.MethodPost,
	Path:          "/reservations",
	DefaultStatus: http.StatusCreated,
	Errors:        []int{http.StatusConflict},
}
