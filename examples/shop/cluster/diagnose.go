package main

import (
	"context"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/shop/orders/ordersapi"
	"github.com/ferrygo/ferry/examples/shop/worker/workerapi"
)

// diagnose prints what an unfinished run leaves to look at: each
// consumer's pending and redelivered messages, and each unfinished
// order's run and invoice.
func diagnose(ctx context.Context, out io.Writer, c *ferry.Client, unfinished []string) {
	js, err := jetstream.New(c.Conn())
	if err != nil {
		return
	}
	for names := js.StreamNames(ctx); ; {
		name, ok := <-names.Name()
		if !ok {
			break
		}
		stream, err := js.Stream(ctx, name)
		if err != nil {
			continue
		}
		for infos := stream.ListConsumers(ctx); ; {
			info, ok := <-infos.Info()
			if !ok {
				break
			}
			if info.NumPending+uint64(info.NumAckPending)+uint64(info.NumRedelivered) > 0 {
				fmt.Fprintf(out, "consumer %s/%s: %d pending, %d awaiting ack, %d redelivered\n", name, info.Name, info.NumPending, info.NumAckPending, info.NumRedelivered)
			}
		}
	}
	invoices, _ := workerapi.Invoices.Open(ctx, c)
	for _, id := range unfinished {
		run, err := ordersapi.PlaceOrder.Get(ctx, c, id)
		if err != nil {
			fmt.Fprintf(out, "order %s: run: %v\n", id, err)
			continue
		}
		invoiced := "no invoice"
		if invoices != nil {
			if _, err := invoices.Get(ctx, "i."+id); err == nil {
				invoiced = "invoice written"
			}
		}
		fmt.Fprintf(out, "order %s: run %s (attempts %d, steps %d, waiting %q, error %q); %s\n", id, run.State, run.Attempts, run.Steps, run.Waiting, run.LastError, invoiced)
	}
}
