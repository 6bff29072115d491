// Package gateway is the shop's public HTTP API: it authenticates callers
// (an API key on every order endpoint), validates their requests and
// passes them to the services behind it over NATS. It holds no state.
package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/shop/catalog/catalogapi"
	"github.com/ferrygo/ferry/examples/shop/gateway/gatewayapi"
	"github.com/ferrygo/ferry/examples/shop/orders/ordersapi"
)

// New builds the gateway; it accepts the API keys given (none: every
// order endpoint refuses every caller).
func New(keys []ferry.APIKey, opts ...ferry.Option) (*ferry.Service, error) {
	svc, err := ferry.New("gateway", "1.0.0", append([]ferry.Option{ferry.WithNATS(), ferry.WithAPIKeys(keys...),
		ferry.WithDescription("The shop's public API: orders (an API key: header X-API-Key, or Authorization: ApiKey <key>) and products.")}, opts...)...)
	if err != nil {
		return nil, err
	}
	ferry.Handle(svc, gatewayapi.PlaceOrder, func(ctx context.Context, in *gatewayapi.PlaceOrderInput) (*gatewayapi.PlaceOrderOutput, error) {
		key := ""
		if in.IdempotencyKey != "" { // scoped to the caller and the order: two callers' keys never meet
			key = fmt.Sprintf("%s\x00%s\x00%d\x00%s", ferry.PrincipalFromContext(ctx).Subject, in.Body.SKU, in.Body.Quantity, in.IdempotencyKey)
		}
		order, err := ordersapi.Place.Call(ctx, svc.Client(), &ordersapi.PlaceInput{SKU: in.Body.SKU, Quantity: in.Body.Quantity, Key: key})
		if err != nil {
			return nil, ferry.PassOn(err)
		}
		return &gatewayapi.PlaceOrderOutput{Location: "/orders/" + order.OrderID, Body: *order}, nil
	})
	pass(svc, gatewayapi.GetOrder, ordersapi.Get)
	pass(svc, gatewayapi.CancelOrder, ordersapi.Cancel)
	pass(svc, gatewayapi.GetOrderRun, ordersapi.GetRun)
	pass(svc, gatewayapi.ListProducts, catalogapi.ListProducts)
	pass(svc, gatewayapi.GetProduct, catalogapi.GetProduct)
	ferry.Handle(svc, gatewayapi.OrderEvents, func(ctx context.Context, in *ordersapi.OrderIDInput) (*huma.StreamResponse, error) {
		order, err := ordersapi.Get.Call(ctx, svc.Client(), in)
		if err != nil {
			return nil, ferry.PassOn(err) // 404 before the stream starts
		}
		return &huma.StreamResponse{Body: func(hctx huma.Context) { follow(hctx, svc.Client(), order) }}, nil
	})
	return svc, nil
}

// pass serves ep by calling the same input and output on the service
// behind, its answers and problems passed on as they are.
func pass[In, Out any](svc *ferry.Service, ep, behind ferry.Endpoint[In, Out]) {
	ferry.Handle(svc, ep, func(ctx context.Context, in *In) (*Out, error) {
		out, err := behind.Call(ctx, svc.Client(), in)
		return out, ferry.PassOn(err)
	})
}

// followPoll is how often an order's events stream looks at it;
// followMax bounds one stream (the client reconnects for more).
const (
	followPoll = 250 * time.Millisecond
	followMax  = 10 * time.Minute
)

// follow writes the order now, then each change, as Server-Sent Events,
// until it ends, the client leaves, the server drains or followMax.
func follow(hctx huma.Context, c *ferry.Client, order *ordersapi.Order) {
	ctx, cancel := context.WithTimeout(hctx.Context(), followMax)
	defer cancel()
	hctx.SetHeader("Content-Type", "text/event-stream")
	hctx.SetHeader("Cache-Control", "no-cache")
	hctx.SetStatus(http.StatusOK)
	w := hctx.BodyWriter()
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	var last []byte
	for {
		data, _ := json.Marshal(order)
		if string(data) != string(last) {
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", order.State, data); err != nil {
				return
			}
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			last = data
		}
		if order.Terminal() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ferry.Draining(ctx):
			return
		case <-tick.C:
		}
		next, err := ordersapi.Get.Call(ctx, c, &ordersapi.OrderIDInput{OrderID: order.OrderID})
		if err != nil {
			if ctx.Err() == nil {
				_, _ = io.WriteString(w, "event: error\ndata: {\"detail\":\"the order is unavailable; reconnect\"}\n\n")
			}
			return
		}
		order = next
	}
}
