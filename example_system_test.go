package ferry_test

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/ferrygo/ferry"
)

func newCatalogService() (*ferry.Service, error) { return ferry.New("catalog", "1.0.0") }
func newBillingService() (*ferry.Service, error) { return ferry.New("billing", "1.0.0") }

// One program is the whole system on a laptop and each of its services in
// production:
//
//	go run .                                     # catalog on :8000, billing on :8001, embedded broker
//	go run . -service billing                    # billing alone, against FERRY_NATS_URL
//	go run . -service catalog,billing -addr :9000
func ExampleRunSystem() {
	fs := flag.NewFlagSet("shop", flag.ContinueOnError)
	err := ferry.RunSystem(context.Background(), fs, os.Args[1:],
		ferry.Part{Name: "catalog", New: newCatalogService},
		ferry.Part{Name: "billing", New: newBillingService})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}
