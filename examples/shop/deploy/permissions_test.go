package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/shop/catalog"
	"github.com/ferrygo/ferry/examples/shop/catalog/catalogapi"
	"github.com/ferrygo/ferry/examples/shop/gateway"
	"github.com/ferrygo/ferry/examples/shop/orders"
	"github.com/ferrygo/ferry/examples/shop/orders/ordersapi"
	"github.com/ferrygo/ferry/examples/shop/worker"
	"github.com/ferrygo/ferry/ferrytest"
)

// violations collects the permission violations nats-server logs.
type violations struct {
	mu   sync.Mutex
	seen []string
}

func (v *violations) add(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if strings.Contains(line, "Violation") {
		v.mu.Lock()
		v.seen = append(v.seen, line)
		v.mu.Unlock()
	}
}
func (v *violations) Noticef(format string, args ...any) { v.add(format, args...) }
func (v *violations) Warnf(format string, args ...any)   { v.add(format, args...) }
func (v *violations) Fatalf(format string, args ...any)  { v.add(format, args...) }
func (v *violations) Errorf(format string, args ...any)  { v.add(format, args...) }
func (v *violations) Debugf(format string, args ...any)  { v.add(format, args...) }
func (v *violations) Tracef(format string, args ...any)  { v.add(format, args...) }

func (v *violations) lines() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.seen...)
}

// TestLeastPrivilege runs the shop's four services against a nats-server
// configured by nats-permissions.conf, each as its own user, places an
// order end to end, and checks that each user is refused what its service
// must not do. The server is nats-server's own code in this process, so
// the test needs no binary and runs with go test ./....
func TestLeastPrivilege(t *testing.T) {
	users := []string{"gateway", "catalog", "orders", "worker", "admin"}
	for _, u := range users {
		t.Setenv(strings.ToUpper(u)+"_PASSWORD", u+"-secret-pw")
	}
	opts, err := server.ProcessConfigFile("nats-permissions.conf")
	if err != nil {
		t.Fatalf("nats-permissions.conf: %v", err)
	}
	opts.Host, opts.Port, opts.JetStream, opts.StoreDir, opts.NoSigs = "127.0.0.1", server.RANDOM_PORT, true, t.TempDir(), true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	viol := &violations{}
	srv.SetLogger(viol, false, false)
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	addr := srv.Addr().String()
	url := func(user string) string { return "nats://" + user + ":" + user + "-secret-pw@" + addr }

	const apiKey = "least-privilege-test-key"
	logger := ferrytest.Logger(t)
	start := func(svc *ferry.Service, err error) *ferry.Service {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		cfg := ferrytest.Config(t)
		cfg.NATSEmbed, cfg.NATSURL, cfg.DataDir = false, url(svc.Name()), ""
		h, err := ferry.NewHost(ferry.WithConfig(cfg), ferry.WithLogger(logger))
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Add(svc); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := h.Start(ctx); err != nil {
			t.Fatalf("%s does not start with its user's permissions: %v\nviolations: %s", svc.Name(), err, strings.Join(viol.lines(), "\n"))
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = h.Shutdown(ctx)
		})
		return svc
	}
	cat := start(catalog.New())
	start(orders.New(orders.Settings{PaymentDelay: time.Millisecond}))
	start(worker.New(worker.Settings{InvoiceDelay: time.Millisecond}))
	gw := start(gateway.New([]ferry.APIKey{{Name: "shop", Hash: ferry.HashAPIKey(apiKey)}}))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := catalogapi.AddStock.Call(ctx, cat.Client(), &catalogapi.StockInput{SKU: "mug", Name: "Mug", Price: 1250, Quantity: 10}); err != nil {
		t.Fatalf("the catalog stocks itself: %v", err)
	}
	// An order end to end, through the gateway's HTTP API.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+gw.Addr().String()+"/orders", strings.NewReader(`{"sku":"mug","quantity":2}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var order ordersapi.Order
	err = jsonDecode(resp, &order)
	if resp.StatusCode != http.StatusAccepted || err != nil {
		t.Fatalf("place an order: %d %v\nviolations: %s", resp.StatusCode, err, strings.Join(viol.lines(), "\n"))
	}
	admin, err := nats.Connect(url("admin"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := ordersapi.Get.Call(ctx, ferry.NewClient(admin), &ordersapi.OrderIDInput{OrderID: order.OrderID})
		if err == nil && got.State == ordersapi.StateInvoiced {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the order did not reach invoiced with the services' permissions: %+v %v\nviolations: %s", got, err, strings.Join(viol.lines(), "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v := viol.lines(); len(v) > 0 {
		t.Errorf("the shop's own work was refused by its permissions:\n%s", strings.Join(v, "\n"))
	}

	// What each user must not do.
	refused := []struct {
		user, what string
		try        func(ctx context.Context, nc *nats.Conn) error
	}{
		{"worker", "publish an order-placed event", func(ctx context.Context, nc *nats.Conn) error {
			return publishAck(ctx, nc, "shop.orders.placed")
		}},
		{"worker", "read the catalog's bucket", func(ctx context.Context, nc *nats.Conn) error {
			js, _ := jetstream.New(nc)
			kv, err := js.KeyValue(ctx, catalogapi.Products.Name)
			if err != nil {
				return err
			}
			_, err = kv.Get(ctx, "p.mug")
			return err
		}},
		{"worker", "call the catalog's stock endpoints", func(ctx context.Context, nc *nats.Conn) error {
			_, err := nc.RequestWithContext(ctx, "ferry.catalog.sell", []byte(`{}`))
			return err
		}},
		{"gateway", "write the orders' bucket", func(ctx context.Context, nc *nats.Conn) error {
			return publishAck(ctx, nc, "$KV.shop-orders.o.forged")
		}},
		{"gateway", "call the catalog's stock endpoints", func(ctx context.Context, nc *nats.Conn) error {
			_, err := nc.RequestWithContext(ctx, "ferry.catalog.add-stock", []byte(`{}`))
			return err
		}},
		{"gateway", "enqueue a job", func(ctx context.Context, nc *nats.Conn) error {
			return publishAck(ctx, nc, "ferry.job.invoice-order.run")
		}},
		{"catalog", "publish an order-invoiced event", func(ctx context.Context, nc *nats.Conn) error {
			return publishAck(ctx, nc, "shop.orders.invoiced")
		}},
		{"catalog", "serve the orders' endpoints", func(ctx context.Context, nc *nats.Conn) error {
			sub, err := nc.QueueSubscribeSync("ferry.orders.place", "q")
			if err != nil {
				return err
			}
			defer sub.Unsubscribe()
			return nc.FlushTimeout(2 * time.Second)
		}},
		{"orders", "delete the order-placed stream", func(ctx context.Context, nc *nats.Conn) error {
			js, _ := jetstream.New(nc)
			return js.DeleteStream(ctx, "ferry-order-placed")
		}},
		{"orders", "read the invoices", func(ctx context.Context, nc *nats.Conn) error {
			js, _ := jetstream.New(nc)
			kv, err := js.KeyValue(ctx, "shop-invoices")
			if err != nil {
				return err
			}
			_, err = kv.Get(ctx, "i."+order.OrderID)
			return err
		}},
	}
	for _, r := range refused {
		t.Run(r.user+" may not "+r.what, func(t *testing.T) {
			var errs []error
			nc, err := nats.Connect(url(r.user), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs = append(errs, err) }))
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			tctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			err = r.try(tctx, nc)
			_ = nc.FlushTimeout(time.Second)
			time.Sleep(100 * time.Millisecond) // the server's -ERR arrives asynchronously
			if err == nil && nc.LastError() == nil && len(errs) == 0 {
				t.Errorf("%s could %s", r.user, r.what)
			}
		})
	}
}

// publishAck publishes to JetStream on subject and waits for the ack: a
// publish the user may not make gets none (the server drops it).
func publishAck(ctx context.Context, nc *nats.Conn, subject string) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = js.Publish(pctx, subject, []byte(`{}`))
	return err
}

// jsonDecode reads resp's JSON body into v and closes it.
func jsonDecode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
