// Package worker is the worker service: for each paid order (the
// order-placed event) it runs the invoice job, which writes the order's
// invoice once — however often the event is delivered or the job runs —
// and publishes order-invoiced.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/shop/orders/ordersapi"
	"github.com/ferrygo/ferry/examples/shop/worker/workerapi"
)

// Settings are the simulated invoicing system's behaviour.
type Settings struct {
	// InvoiceDelay is how long writing an invoice takes (simulated I/O).
	InvoiceDelay time.Duration
	// RefuseSKU, when set, simulates an invoicing outage for one product:
	// the order-placed event of an order of it is refused at its first
	// delivery — dead-lettered at once — and goes through when it is
	// replayed from the dead letters (by the dashboard, say), as after the
	// outage was fixed.
	RefuseSKU string
}

// New builds the worker service.
func New(s Settings, opts ...ferry.Option) (*ferry.Service, error) {
	svc, err := ferry.New("worker", "1.0.0", append([]ferry.Option{ferry.WithNATS(),
		ferry.WithDescription("Invoices paid orders.")}, opts...)...)
	if err != nil {
		return nil, err
	}
	w := &worker{svc: svc, s: s, store: ferry.UseBucket(svc, workerapi.Invoices), invoiced: ferry.NewPublisher(svc, workerapi.Invoiced)}
	// A replica that dies hands its events and jobs to another within 5s.
	ferry.Subscribe(svc, ordersapi.Placed, "invoice", w.orderPlaced, ferry.SubscribeAckWait(5*time.Second),
		ferry.SubscribeMaxDeliveries(20), ferry.SubscribeBackoff(time.Second, 30*time.Second))
	ferry.HandleJob(svc, workerapi.InvoiceOrder, w.invoice, ferry.JobAckWait(5*time.Second))
	return svc, nil
}

type worker struct {
	svc      *ferry.Service
	s        Settings
	store    *ferry.Store
	invoiced *ferry.Publisher[workerapi.Invoice]
}

// orderPlaced starts the order's invoice job: once per order, however
// often the event arrives (the order ID is the job's idempotency key).
func (w *worker) orderPlaced(ctx context.Context, e *ordersapi.OrderPlaced) error {
	if w.s.RefuseSKU != "" && e.SKU == w.s.RefuseSKU && !strings.HasPrefix(ferry.EventFromContext(ctx).ID, "replay:") {
		return ferry.Permanent(fmt.Errorf("invoicing of %s is down (-refuse-sku): replay this event once it is back", e.SKU))
	}
	_, err := workerapi.InvoiceOrder.Enqueue(ctx, w.svc.Client(),
		&workerapi.InvoiceRequest{OrderID: e.OrderID, SKU: e.SKU, Quantity: e.Quantity, Total: e.Total},
		ferry.EnqueueKey("invoice-"+e.OrderID, 24*time.Hour))
	return err
}

// invoice writes the order's invoice unless it has one, then publishes
// order-invoiced (de-duplicated by the order's ID).
func (w *worker) invoice(ctx context.Context, in *workerapi.InvoiceRequest, _ *ferry.Progress) (*workerapi.Invoice, error) {
	kv, err := w.store.KeyValue()
	if err != nil {
		return nil, err
	}
	key := "i." + in.OrderID
	var inv workerapi.Invoice
	switch e, err := kv.Get(ctx, key); {
	case err == nil:
		if err := json.Unmarshal(e.Value(), &inv); err != nil {
			return nil, ferry.Permanent(fmt.Errorf("invoice of %s: %w", in.OrderID, err))
		}
	case errors.Is(err, jetstream.ErrKeyNotFound):
		select { // simulated I/O: rendering and filing the invoice
		case <-time.After(w.s.InvoiceDelay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		inv = workerapi.Invoice{Number: "INV-" + in.OrderID, OrderID: in.OrderID, Total: in.Total, IssuedAt: time.Now().UTC()}
		b, _ := json.Marshal(inv)
		if _, err := kv.Create(ctx, key, b); errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("invoice of %s written concurrently; run again to read it", in.OrderID)
		} else if err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	if _, err := w.invoiced.Publish(ctx, &inv, ferry.PublishMessageID("invoiced-"+in.OrderID)); err != nil {
		return nil, err
	}
	return &inv, nil
}
