// Package catalogapi is the contract of the catalog service.
package catalogapi

import (
	"net/http"

	"github.com/ferrygo/ferry"
)

// Product is a catalog entry, with how many orders it has.
type Product struct {
	SKU    string `json:"sku" doc:"Stock-keeping unit."`
	Name   string `json:"name"`
	Price  int    `json:"price" doc:"Price in cents."`
	Orders int    `json:"orders" doc:"Number of orders placed for it, from the orders service."`
}

// GetProductInput is the input of [GetProduct].
type GetProductInput struct {
	SKU string `path:"sku" pattern:"^[a-z0-9-]+$" maxLength:"32"`
}

// GetProductOutput is the output of [GetProduct].
type GetProductOutput struct {
	Body Product
}

// GetProduct reads a product.
var GetProduct = ferry.Endpoint[GetProductInput, GetProductOutput]{
	Service: "catalog",
	Name:    "get-product",
	Method:  http.MethodGet,
	Path:    "/products/{sku}",
	Summary: "Read a product and its order count",
}
