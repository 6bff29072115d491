// Package catalogapi is the contract of the catalog service: products with
// their stock, and the reservations orders hold on it. Other services
// import it, and nothing else of the catalog. The endpoints that change
// stock are NATSOnly: the system's services call them, the outside cannot
// (the gateway serves the public reads).
package catalogapi

import (
	"net/http"

	"github.com/ferrygo/ferry"
)

// Products is the bucket the catalog keeps its products and reservations
// in: a key p.<sku> per product and r.<order_id> per reservation.
var Products = ferry.Bucket{Name: "shop-catalog", Description: "The shop's products, their stock, and the reservations of orders."}

// Product is a product and its stock. Units move from Stock to Reserved
// when an order reserves them, from Reserved to Sold when it is paid, and
// back to Stock when it is released: Stock + Reserved + Sold = Received.
type Product struct {
	SKU      string `json:"sku" doc:"Stock-keeping unit."`
	Name     string `json:"name"`
	Price    int    `json:"price" doc:"Unit price in cents."`
	Stock    int    `json:"stock" doc:"Units available to order."`
	Reserved int    `json:"reserved" doc:"Units reserved by orders not yet paid."`
	Sold     int    `json:"sold" doc:"Units of paid orders."`
	Received int    `json:"received" doc:"Units ever received: stock + reserved + sold."`
}

// Reservation is an order's hold on a product's units. Its state is
// reserved, sold or released; a released reservation holds nothing.
type Reservation struct {
	OrderID  string `json:"order_id"`
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
	Price    int    `json:"price" doc:"The unit price in cents when the units were reserved."`
	State    string `json:"state" enum:"reserved,sold,released"`
	// Move names the change that gave the reservation its state.
	Move string `json:"move,omitempty"`
}

// The states of a [Reservation].
const (
	StateReserved = "reserved"
	StateSold     = "sold"
	StateReleased = "released"
)

// SKUInput names a product.
type SKUInput struct {
	SKU string `path:"sku" pattern:"^[a-z0-9-]{1,32}$" doc:"The product's SKU."`
}

// ProductList is every product.
type ProductList struct {
	Products []Product `json:"products"`
}

// ListProducts returns every product with its stock.
var ListProducts = ferry.Endpoint[struct{}, ProductList]{
	Service: "catalog", Name: "list-products", Method: http.MethodGet, Path: "/products",
	Summary: "List products with their stock",
}

// GetProduct returns a product with its stock; 404 unknown_product.
var GetProduct = ferry.Endpoint[SKUInput, Product]{
	Service: "catalog", Name: "get-product", Method: http.MethodGet, Path: "/products/{sku}",
	Summary: "Read a product and its stock", Errors: []int{http.StatusNotFound},
}

// StockInput adds units to a product, creating it if it is new.
type StockInput struct {
	SKU      string `json:"sku" pattern:"^[a-z0-9-]{1,32}$"`
	Name     string `json:"name" minLength:"1" maxLength:"100"`
	Price    int    `json:"price" minimum:"0"`
	Quantity int    `json:"quantity" minimum:"0" maximum:"1000000"`
	// IfNew adds the product only if the catalog does not have it (a
	// seed that runs on every start changes nothing the second time).
	IfNew bool `json:"if_new,omitempty"`
}

// AddStock receives units of a product (and sets its name and price).
var AddStock = ferry.Endpoint[StockInput, Product]{
	Service: "catalog", Name: "add-stock", Method: http.MethodPost, Path: "/stock",
	NATSOnly: true,
	Summary:  "Receive units of a product",
}

// ReserveInput reserves units of a product for an order.
type ReserveInput struct {
	OrderID  string `json:"order_id" minLength:"1" maxLength:"64" doc:"The order: a reservation is made once per order ID."`
	SKU      string `json:"sku" pattern:"^[a-z0-9-]{1,32}$"`
	Quantity int    `json:"quantity" minimum:"1" maximum:"1000"`
}

// Reserve reserves units for an order: once per order ID, so a retried
// reservation returns the first. 409 out_of_stock when the product has
// too few units (nothing is reserved), 404 unknown_product.
var Reserve = ferry.Endpoint[ReserveInput, Reservation]{
	Service: "catalog", Name: "reserve", Method: http.MethodPost, Path: "/reservations",
	NATSOnly: true,
	Summary:  "Reserve units for an order", Errors: []int{http.StatusNotFound, http.StatusConflict},
}

// OrderInput names an order's reservation.
type OrderInput struct {
	OrderID string `path:"order_id" minLength:"1" maxLength:"64"`
}

// Release gives an order's units back to the stock, whether reserved or
// sold; releasing twice, or an order that reserved nothing, changes
// nothing (and a reservation that arrives after its release is refused).
var Release = ferry.Endpoint[OrderInput, Reservation]{
	Service: "catalog", Name: "release", Method: http.MethodPost, Path: "/reservations/{order_id}/release",
	NATSOnly: true,
	Summary:  "Release an order's units",
}

// Sell turns an order's reserved units into sold ones (idempotent);
// 409 not_reserved when the order holds no reservation.
var Sell = ferry.Endpoint[OrderInput, Reservation]{
	Service: "catalog", Name: "sell", Method: http.MethodPost, Path: "/reservations/{order_id}/sell",
	NATSOnly: true,
	Summary:  "Mark an order's units sold", Errors: []int{http.StatusConflict},
}

// GetReservation returns an order's reservation; 404 when it has none.
var GetReservation = ferry.Endpoint[OrderInput, Reservation]{
	Service: "catalog", Name: "get-reservation", Method: http.MethodGet, Path: "/reservations/{order_id}",
	NATSOnly: true,
	Summary:  "Read an order's reservation", Errors: []int{http.StatusNotFound},
}
