// Package itemsapi is the contract sample of the README, kept identical to
// it by the test of examples/readme.
package itemsapi

import (
	"net/http"

	"github.com/ferrygo/ferry"
)

type GetItemInput struct {
	ItemID int `path:"item_id"`
}

type GetItemOutput struct {
	Body struct {
		ItemID int `json:"item_id"`
	}
}

// GetItem is served by the items service; callers address it through this value.
var GetItem = ferry.Endpoint[GetItemInput, GetItemOutput]{
	Service: "items", Name: "get-item", Method: http.MethodGet, Path: "/items/{item_id}",
}
