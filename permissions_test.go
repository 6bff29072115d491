package ferry_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestPermissionsTableIsEnough: a subscribing service whose NATS user has
// exactly the rights docs/events.md "Permissions" lists (owner mode)
// starts, handles and acknowledges events, and answers discovery. (Found
// by review: the table used to leave out acknowledgements and replies.)
func TestPermissionsTableIsEnough(t *testing.T) {
	stream, durable, bucket := "ferry-order-placed", "shipping~ship", "ferry-state-shipping"
	pub := []string{
		// subscribe: stream info (and create) for the topic and dead-letter streams
		"$JS.API.STREAM.INFO." + stream, "$JS.API.STREAM.CREATE." + stream,
		"$JS.API.STREAM.INFO.ferry-deadletters", "$JS.API.STREAM.CREATE.ferry-deadletters",
		// the consumer: create, info, next
		"$JS.API.CONSUMER.CREATE." + stream + "." + durable, "$JS.API.CONSUMER.CREATE." + stream + "." + durable + ".>",
		"$JS.API.CONSUMER.INFO." + stream + "." + durable, "$JS.API.CONSUMER.MSG.NEXT." + stream + "." + durable,
		// dead letters
		"ferry.dlq.order-placed.shipping.ship",
		"$JS.API.STREAM.UPDATE.ferry-deadletters",
		// acknowledgements
		"$JS.ACK." + stream + "." + durable + ".>",
		// the state bucket
		"$JS.API.INFO", "$JS.API.STREAM.*.KV_" + bucket, "$JS.API.DIRECT.GET.KV_" + bucket + ".>", "$KV." + bucket + ".>",
		// replies
		"_INBOX.>",
	}
	sub := []string{"_INBOX.>", "$SRV.>"}
	opts := &server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
		Users: []*server.User{
			{Username: "admin", Password: "admin"},
			{Username: "shipping", Password: "shipping", Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: pub},
				Subscribe: &server.SubjectPermission{Allow: sub},
			}},
		},
	}
	addr, admin := startEnforcingServer(t, opts)

	var calls counter
	cfg := ferrytest.Config(t)
	cfg.NATSURL = "nats://shipping:shipping@" + addr
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svc, placed, "ship", func(_ context.Context, e *OrderPlaced) error { calls.add(e.OrderID); return nil },
		ferry.SubscribeAckWait(time.Second))
	h, err := ferry.NewHost(ferry.WithConfig(cfg), quiet)
	if err != nil {
		t.Fatal(err)
	}
	_ = h.Add(svc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		t.Fatalf("a subscriber with the documented permissions does not start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
	})

	if _, err := placed.Publish(context.Background(), ferry.NewClient(admin), &OrderPlaced{OrderID: "a", Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(admin)
	deadline := time.Now().Add(5 * time.Second)
	var info *jetstream.ConsumerInfo
	for time.Now().Before(deadline) {
		c, err := js.Consumer(context.Background(), stream, durable)
		if err == nil {
			info, _ = c.Info(context.Background())
		}
		if info != nil && calls.get("a") > 0 && info.NumAckPending == 0 && info.NumPending == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if info == nil || calls.get("a") != 1 || info.NumAckPending != 0 {
		desc := "no consumer"
		if info != nil {
			desc = fmt.Sprintf("delivered %d, ack pending %d", info.Delivered.Consumer, info.NumAckPending)
		}
		t.Errorf("with the documented permissions the event is not settled: handler ran %d times, %s", calls.get("a"), desc)
	}

	// Discovery: every service answers $SRV.PING.
	if _, err := admin.Request("$SRV.PING.shipping", nil, 2*time.Second); err != nil {
		t.Errorf("the service does not answer discovery with the documented permissions: %v", err)
	}
}

// startEnforcingServer starts a nats-server with opts (its users and their
// permissions, an "admin" user with the password "admin" among them) and
// returns its address and a connection of the admin; both end with the
// test.
func startEnforcingServer(t *testing.T, opts *server.Options) (string, *nats.Conn) {
	t.Helper()
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	addr := srv.Addr().String()
	admin, err := nats.Connect("nats://admin:admin@" + addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	return addr, admin
}
