// Command checkout is a small shop of two services: inventory holds the
// stock (GET /stock/{sku}, POST /reservations, over HTTP and NATS) and
// records the sales of completed checkouts; checkout reserves an order's
// stock with the inventory over NATS and publishes checkout-completed.
//
//	go run ./examples/checkout        # both; inventory on :8000, checkout on :8001
//	curl -s localhost:8001/checkout -H 'Content-Type: application/json' -d '{"sku":"kettle","qty":2}'
//	curl -s localhost:8000/stock/kettle
//
// Separate processes: -service inventory -nats-listen 127.0.0.1:4333, then
// -service checkout -addr :8001 (it joins through the shared -data-dir).
// See README.md.
package main

import (
	"context"
	"flag"
	"log"
	"os"

	"github.com/ferrygo/ferry"
)

func main() {
	failFirst := flag.Int("fail-first", 0, "fail the first `n` deliveries of each checkout-completed event in record-sale, to show the retries")
	err := ferry.RunSystem(context.Background(), flag.CommandLine, os.Args[1:],
		ferry.Part{Name: "inventory", New: func() (*ferry.Service, error) { return newInventory(newStore(), *failFirst), nil }},
		ferry.Part{Name: "checkout", New: func() (*ferry.Service, error) { return newCheckout(), nil }})
	if err != nil {
		log.Fatal(err)
	}
}
