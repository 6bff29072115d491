// Package itemsapi is the contract of the items service: the endpoint
// declarations and types that callers import, without the handlers.
package itemsapi

import (
	"net/http"

	"github.com/ferrygo/ferry"
)

// GetItemInput is the input of [GetItem].
type GetItemInput struct {
	ItemID int `path:"item_id" doc:"The item's ID."`
}

// Item is the body [GetItem] answers: exactly {"item_id": N}.
type Item struct {
	ItemID int `json:"item_id" doc:"The item's ID."`
}

// GetItemOutput is the output of [GetItem].
type GetItemOutput struct {
	Body Item
}

// GetItem reads one item: the seed service's GET /items/{item_id}.
var GetItem = ferry.Endpoint[GetItemInput, GetItemOutput]{
	Service:     "items",
	Name:        "get-item",
	Method:      http.MethodGet,
	Path:        "/items/{item_id}",
	Summary:     "Read an item",
	Description: "Waits for a simulated I/O call, then answers the item's ID.",
	Tags:        []string{"items"},
}
