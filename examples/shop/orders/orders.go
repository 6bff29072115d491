// Package orders is the orders service: placing an order is a durable
// workflow — reserve the stock, take the payment, mark the stock sold,
// publish order-placed — whose completed steps survive any crash, and
// whose compensations release the stock and refund the payment when a
// later step fails or the order is cancelled. Orders are kept in a
// JetStream key-value bucket; the service holds no state in memory.
package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/shop/catalog/catalogapi"
	"github.com/ferrygo/ferry/examples/shop/orders/ordersapi"
	"github.com/ferrygo/ferry/examples/shop/worker/workerapi"
)

// Settings are the simulated payment service's behaviour.
type Settings struct {
	// PaymentFailure is the share of orders whose payment is declined,
	// from 0 to 1 (which ones is decided by the order ID, so a retry
	// decides the same).
	PaymentFailure float64
	// PaymentDelay is how long a payment takes.
	PaymentDelay time.Duration
}

// keyWindow is how long an order's idempotency key answers the same order.
const keyWindow = 24 * time.Hour

// New builds the orders service.
func New(s Settings, opts ...ferry.Option) (*ferry.Service, error) {
	svc, err := ferry.New("orders", "1.0.0", append([]ferry.Option{ferry.WithNATS(),
		ferry.WithDescription("Places orders in durable workflows; cancels and reads them.")}, opts...)...)
	if err != nil {
		return nil, err
	}
	o := &orders{svc: svc, s: s, store: ferry.UseBucket(svc, ordersapi.Orders), placed: ferry.NewPublisher(svc, ordersapi.Placed)}
	ferry.Handle(svc, ordersapi.Place, o.place)
	ferry.Handle(svc, ordersapi.Get, func(ctx context.Context, in *ordersapi.OrderIDInput) (*ordersapi.Order, error) {
		return o.get(ctx, in.OrderID)
	})
	ferry.Handle(svc, ordersapi.Cancel, o.cancel)
	ferry.Handle(svc, ordersapi.GetRun, o.run)
	// A replica that dies hands its runs and events to another within 5s.
	ferry.HandleWorkflow(svc, ordersapi.PlaceOrder, o.workflow, ferry.JobAckWait(5*time.Second))
	// A broker that lost a node answers errors for a few seconds: retried
	// for minutes before an event is given up.
	ferry.Subscribe(svc, workerapi.Invoiced, "mark-invoiced", o.invoiced, ferry.SubscribeAckWait(5*time.Second),
		ferry.SubscribeMaxDeliveries(20), ferry.SubscribeBackoff(time.Second, 30*time.Second))
	return svc, nil
}

type orders struct {
	svc    *ferry.Service
	s      Settings
	store  *ferry.Store
	placed *ferry.Publisher[ordersapi.OrderPlaced]
}

func orderKey(id string) string { return "o." + id }

// place starts the order's workflow and stores the order. With a key, a
// retried placement finds the first run, and its order. An order the
// stock cannot serve is refused with 409 and its run cancelled (if two
// orders race for the last units, the loser's run fails at its
// reservation instead: the order ends failed, holding nothing). The
// order is stored here, or by its run once paid if this call died first.
func (o *orders) place(ctx context.Context, in *ordersapi.PlaceInput) (*ordersapi.Order, error) {
	c := o.svc.Client()
	var opts []ferry.EnqueueOption
	if in.Key != "" {
		opts = append(opts, ferry.EnqueueKey(in.Key, keyWindow))
	}
	id, err := ordersapi.PlaceOrder.Start(ctx, c, &ordersapi.OrderRequest{SKU: in.SKU, Quantity: in.Quantity}, opts...)
	if err != nil {
		return nil, err
	}
	if order, _, err := o.read(ctx, id); err != nil || order != nil {
		return order, err // a retried placement: the first order
	}
	if in.Key != "" {
		// The key's first request was refused (its run cancelled, no order
		// stored): a retry is answered the same, not given a dead order.
		if run, err := ordersapi.PlaceOrder.Get(ctx, c, id); err == nil && run.State.Final() {
			return nil, &ferry.Error{Status: http.StatusConflict, Code: "refused",
				Detail: "a request with this Idempotency-Key was refused; send the order again with a new key"}
		}
	}
	product, err := catalogapi.GetProduct.Call(ctx, c, &catalogapi.SKUInput{SKU: in.SKU})
	if err == nil && product.Stock < in.Quantity {
		// Unless the run already reserved them: then they left the stock.
		if r, rerr := catalogapi.GetReservation.Call(ctx, c, &catalogapi.OrderInput{OrderID: id}); rerr != nil || r.State == catalogapi.StateReleased {
			err = &ferry.Error{Status: http.StatusConflict, Code: "out_of_stock", Detail: fmt.Sprintf("%d of %s wanted, %d in stock", in.Quantity, in.SKU, product.Stock)}
		}
	}
	if err != nil {
		if cerr := o.stop(ctx, id); cerr != nil {
			o.svc.Logger().Warn("orders: stop a refused order's run", "order", id, "err", cerr)
		}
		return nil, ferry.PassOn(err) // the catalog's 404, or the 409
	}
	return o.record(ctx, id, in.SKU, in.Quantity)
}

// record stores a new order (or returns the one stored).
func (o *orders) record(ctx context.Context, id, sku string, quantity int) (*ordersapi.Order, error) {
	kv, err := o.store.KeyValue()
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	order := &ordersapi.Order{OrderID: id, SKU: sku, Quantity: quantity, State: ordersapi.StatePlaced, PlacedAt: now, UpdatedAt: now}
	b, _ := json.Marshal(order)
	if _, err := kv.Create(ctx, orderKey(id), b); errors.Is(err, jetstream.ErrKeyExists) {
		stored, _, err := o.read(ctx, id)
		if err == nil && stored == nil {
			err = errors.New("order vanished")
		}
		return stored, err
	} else if err != nil {
		return nil, err
	}
	return order, nil
}

// read returns the stored order (nil if none) and its revision.
func (o *orders) read(ctx context.Context, id string) (*ordersapi.Order, uint64, error) {
	kv, err := o.store.KeyValue()
	if err != nil {
		return nil, 0, err
	}
	e, err := kv.Get(ctx, orderKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var order ordersapi.Order
	if err := json.Unmarshal(e.Value(), &order); err != nil {
		return nil, 0, fmt.Errorf("order %s: %w", id, err)
	}
	return &order, e.Revision(), nil
}

// update changes the stored order with fn, compare-and-set; fn returns
// false to change nothing.
func (o *orders) update(ctx context.Context, id string, fn func(*ordersapi.Order) bool) (*ordersapi.Order, error) {
	kv, err := o.store.KeyValue()
	if err != nil {
		return nil, err
	}
	for range 64 {
		order, rev, err := o.read(ctx, id)
		if err != nil {
			return nil, err
		}
		if order == nil {
			return nil, fmt.Errorf("order %s is not stored", id)
		}
		if !fn(order) {
			return order, nil
		}
		order.UpdatedAt = time.Now().UTC()
		b, _ := json.Marshal(order)
		_, err = kv.Update(ctx, orderKey(id), b, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		return order, err
	}
	return nil, fmt.Errorf("order %s: too many concurrent updates", id)
}

var errUnknownOrder = &ferry.Error{Status: http.StatusNotFound, Code: "unknown_order", Detail: "no such order"}

// get returns the order, its state following its workflow run: paid or
// invoiced as the order records, failed or cancelled as the run ended.
func (o *orders) get(ctx context.Context, id string) (*ordersapi.Order, error) {
	order, _, err := o.read(ctx, id)
	if err != nil {
		return nil, err
	}
	if order == nil {
		return nil, errUnknownOrder
	}
	if order.State == ordersapi.StateInvoiced {
		return order, nil
	}
	if order.State != ordersapi.StatePlaced {
		return order, nil // paid: its run may end cancelled, the order does not
	}
	run, err := ordersapi.PlaceOrder.Get(ctx, o.svc.Client(), id)
	if err != nil {
		return nil, err
	}
	switch run.State {
	case ferry.JobFailed:
		order.State, order.Reason = ordersapi.StateFailed, run.LastError
	case ferry.JobCancelled:
		order.State = ordersapi.StateCancelled
	}
	return order, nil
}

func (o *orders) cancel(ctx context.Context, in *ordersapi.OrderIDInput) (*ordersapi.Order, error) {
	order, err := o.get(ctx, in.OrderID)
	if err != nil {
		return nil, err
	}
	if order.State != ordersapi.StatePlaced {
		return order, nil // paid orders are not cancelled; ended ones stay as they are
	}
	if err := o.stop(ctx, in.OrderID); err != nil {
		return nil, err
	}
	return o.get(ctx, in.OrderID)
}

// stopWait bounds how long stop waits for a cancelled run to end.
const stopWait = 15 * time.Second

// stop cancels an order's run, waits for it to end, and releases its
// units unless it succeeded: the run's compensations release what its
// completed steps reserved, and the release here covers a reservation
// still in flight when the run was cancelled (a reservation that arrives
// after its release is refused). A run that had passed its last
// cancellable step succeeds: the order ends paid.
func (o *orders) stop(ctx context.Context, id string) error {
	c := o.svc.Client()
	if _, err := ordersapi.PlaceOrder.Cancel(ctx, c, id); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, stopWait)
	defer cancel()
	run, err := ordersapi.PlaceOrder.Wait(wctx, c, id)
	if err != nil {
		return &ferry.Error{Status: http.StatusServiceUnavailable, Code: "cancel_pending",
			Detail: "the order is being cancelled; ask again shortly", Header: http.Header{"Retry-After": {"1"}}}
	}
	if run.State == ferry.JobSucceeded {
		return nil
	}
	return o.release(ctx, id)
}

// release releases an order's units, unless it is paid: a run cancelled
// after its order was paid (a cancel that saw it placed a moment before,
// or an operator's) keeps the sale, and publishes order-placed — which it
// may not have got to — so that the order is invoiced.
func (o *orders) release(ctx context.Context, id string) error {
	order, err := o.paidOrder(ctx, id)
	switch {
	case err != nil:
		return err
	case order != nil && order.State == ordersapi.StatePaid:
		return o.publishPlaced(ctx, order)
	case order != nil:
		return nil // invoiced
	}
	_, err = catalogapi.Release.Call(ctx, o.svc.Client(), &catalogapi.OrderInput{OrderID: id})
	return err
}

// paidOrder returns the order if it is stored paid or invoiced, nil
// otherwise.
func (o *orders) paidOrder(ctx context.Context, id string) (*ordersapi.Order, error) {
	order, _, err := o.read(ctx, id)
	if err != nil || order == nil || order.State != ordersapi.StatePaid && order.State != ordersapi.StateInvoiced {
		return nil, err
	}
	return order, nil
}

// publishPlaced publishes a paid order's order-placed, with the order's
// ID as its message ID (the broker keeps one of two copies; the worker
// invoices an order once).
func (o *orders) publishPlaced(ctx context.Context, order *ordersapi.Order) error {
	// Past the cancel's reach: once published, the order is paid.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, err := o.placed.Publish(ctx, &ordersapi.OrderPlaced{OrderID: order.OrderID, SKU: order.SKU, Quantity: order.Quantity, Total: order.Total, Payment: order.Payment},
		ferry.PublishMessageID("placed-"+order.OrderID))
	return err
}

func (o *orders) run(ctx context.Context, in *ordersapi.OrderIDInput) (*ordersapi.Run, error) {
	c := o.svc.Client()
	run, err := ordersapi.PlaceOrder.Get(ctx, c, in.OrderID)
	if err != nil {
		return nil, err
	}
	steps, err := ordersapi.PlaceOrder.Steps(ctx, c, in.OrderID)
	if err != nil {
		return nil, err
	}
	return &ordersapi.Run{Run: run, Steps: steps}, nil
}

// workflow places an order. Each effect is a step; the catalog's calls
// are idempotent by order ID and the payment by the step's key, so a step
// run again after a crash reserves, charges and sells once.
func (o *orders) workflow(ctx ferry.WorkflowContext, in *ordersapi.OrderRequest) (*ordersapi.Paid, error) {
	id, c := ctx.RunID(), o.svc.Client()
	// The release is registered before the reservation is asked for:
	// a reservation whose answer was lost may have reserved, and a run
	// that fails or is cancelled then releases it too (a release of
	// nothing refuses a late reservation). A failed order holds nothing.
	// A run cancelled once its order is paid keeps the sale (release).
	if _, err := ferry.StepWithCompensation(ctx, "hold-stock",
		func(context.Context) (bool, error) { return true, nil },
		func(ctx context.Context, _ bool) error { return o.release(ctx, id) }); err != nil {
		return nil, err
	}
	reservation, err := ferry.Step(ctx, "reserve-stock", func(ctx context.Context) (*catalogapi.Reservation, error) {
		return decided(catalogapi.Reserve.Call(ctx, c, &catalogapi.ReserveInput{OrderID: id, SKU: in.SKU, Quantity: in.Quantity}))
	})
	if err != nil {
		return nil, err
	}
	total := reservation.Quantity * reservation.Price
	payment, err := ferry.StepWithCompensation(ctx, "take-payment",
		func(ctx context.Context) (string, error) { return o.pay(ctx, ferry.StepKey(ctx), id, total) },
		func(ctx context.Context, payment string) error {
			if paid, err := o.paidOrder(ctx, id); err != nil || paid != nil {
				return err // a paid order keeps its payment
			}
			ferry.Logger(ctx).Info("orders: payment refunded", "order", id, "payment", payment, "total", total)
			return nil
		})
	if err != nil {
		return nil, err
	}
	if _, err := ferry.Step(ctx, "sell-stock", func(ctx context.Context) (*catalogapi.Reservation, error) {
		return decided(catalogapi.Sell.Call(ctx, c, &catalogapi.OrderInput{OrderID: id}))
	}); err != nil {
		return nil, err
	}
	if _, err := ferry.Step(ctx, "record-paid", func(ctx context.Context) (bool, error) {
		if _, err := o.record(ctx, id, in.SKU, in.Quantity); err != nil { // stored by place, unless it died first
			return false, err
		}
		_, err := o.update(ctx, id, func(order *ordersapi.Order) bool {
			if order.State != ordersapi.StatePlaced {
				return false
			}
			order.State, order.Total, order.Payment = ordersapi.StatePaid, total, payment
			return true
		})
		return true, err
	}); err != nil {
		return nil, err
	}
	// Retried until it lands, never compensated: a publish whose
	// acknowledgement was lost may have gone out, and the order is then
	// invoiced.
	if _, err := ferry.Step(ctx, "publish-placed", func(ctx context.Context) (bool, error) {
		return true, o.publishPlaced(ctx, &ordersapi.Order{OrderID: id, SKU: in.SKU, Quantity: in.Quantity, Total: total, Payment: payment})
	}, ferry.StepMaxAttempts(math.MaxInt32)); err != nil {
		return nil, err
	}
	return &ordersapi.Paid{Total: total, Payment: payment}, nil
}

// pay is the simulated payment service: it takes delay, and declines the
// share of orders Settings.PaymentFailure says, the same ones every time.
func (o *orders) pay(ctx context.Context, key, orderID string, total int) (string, error) {
	select {
	case <-time.After(o.s.PaymentDelay):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	h := fnv.New32a()
	h.Write([]byte(orderID))
	if float64(h.Sum32()%10000) < o.s.PaymentFailure*10000 {
		return "", &ferry.Error{Status: http.StatusPaymentRequired, Code: "payment_declined", Detail: "the payment was declined"}
	}
	return "pay-" + key, nil
}

// invoiced records an order's invoice.
func (o *orders) invoiced(ctx context.Context, inv *workerapi.Invoice) error {
	_, err := o.update(ctx, inv.OrderID, func(order *ordersapi.Order) bool {
		if order.State == ordersapi.StateInvoiced {
			return false
		}
		order.State, order.Invoice = ordersapi.StateInvoiced, inv.Number
		return true
	})
	return err
}

// decided turns a callee's refusal (a 4xx other than 408 and 429) into
// the step's permanent error, keeping its status, code and detail; a
// failure to get an answer stays retryable.
func decided[T any](out *T, err error) (*T, error) {
	var ce *ferry.CallError
	if errors.As(err, &ce) && ce.Status >= 400 && ce.Status < 500 && ce.Status != http.StatusRequestTimeout && ce.Status != http.StatusTooManyRequests {
		var fe *ferry.Error
		errors.As(err, &fe)
		return nil, &ferry.Error{Status: ce.Status, Code: ce.Code, Detail: fe.Detail}
	}
	return out, err
}
