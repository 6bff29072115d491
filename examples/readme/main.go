// Command readme is the sample of the README, kept identical to it by
// its test.
package main

import (
	"context"
	"log"
	"time"

	"github.com/ferrygo/ferry"
)

type ItemInput struct {
	ItemID int `path:"item_id"`
}

type ItemOutput struct {
	Body struct {
		ItemID int `json:"item_id"`
	}
}

func main() {
	svc := ferry.MustNew("items", "1.0.0")
	ferry.Get(svc, "get-item", "/items/{item_id}", func(ctx context.Context, in *ItemInput) (*ItemOutput, error) {
		select { // one second of simulated I/O, abandoned if the caller leaves
		case <-time.After(time.Second):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		out := &ItemOutput{}
		out.Body.ItemID = in.ItemID
		return out, nil
	})
	// Serve on :8000 until SIGINT/SIGTERM, then drain in-flight requests.
	if err := ferry.Run(context.Background(), svc); err != nil {
		log.Fatal(err)
	}
}
