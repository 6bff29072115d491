package ferry_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/items/itemsapi"
	"github.com/ferrygo/ferry/ferrytest"
)

// brokerProcess is a nats-server in a child process on a fixed loopback
// port and store, so it can be killed and started again in place.
type brokerProcess struct {
	t    *testing.T
	addr string
	dir  string
	cmd  *exec.Cmd
}

func newBrokerProcess(t *testing.T) *brokerProcess {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	b := &brokerProcess{t: t, addr: addr, dir: t.TempDir()}
	b.start()
	t.Cleanup(b.kill)
	return b
}

func (b *brokerProcess) url() string { return "nats://" + b.addr }

func (b *brokerProcess) start() {
	b.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FERRY_TEST_BROKER_ADDR="+b.addr, "FERRY_TEST_BROKER_DIR="+b.dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		_ = cmd.Process.Kill()
		b.t.Fatalf("broker child did not start: %q", line)
	}
	b.cmd = cmd
}

// kill stops the broker with SIGKILL: no goodbye to its clients.
func (b *brokerProcess) kill() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
	b.cmd = nil
}

func TestReconnectToExternalBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker child process")
	}
	broker := newBrokerProcess(t)
	logs := &syncBuffer{}
	cfg := ferrytest.Config(t)
	cfg.NATSURL, cfg.NATSEmbed = broker.url(), false
	items := ferry.MustNew("items", "1.0.0", ferry.WithoutHTTP(), ferry.WithNATS(), quiet)
	ferry.Handle(items, itemsapi.GetItem, func(ctx context.Context, in *itemsapi.GetItemInput) (*itemsapi.GetItemOutput, error) {
		return &itemsapi.GetItemOutput{Body: itemsapi.Item{ItemID: in.ItemID}}, nil
	})
	h, err := ferry.NewHost(ferry.WithConfig(cfg), ferry.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	_ = h.Add(items)
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	client := items.Client()
	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := itemsapi.GetItem.Call(ctx, client, &itemsapi.GetItemInput{ItemID: 5})
		return err
	}
	if err := call(); err != nil {
		t.Fatalf("before the outage: %v", err)
	}

	broker.kill()
	ferrytest.Eventually(t, func() bool { return strings.Contains(logs.String(), "broker connection lost") },
		"the outage is logged")
	if err := call(); err == nil {
		t.Error("a call succeeded with the broker down")
	}

	broker.start()
	ferrytest.Eventually(t, func() bool { return strings.Contains(logs.String(), "broker connection restored") },
		"the reconnect is logged")
	ferrytest.Eventually(t, func() bool { return call() == nil }, "calls are served again")
}

// TestSubscriptionResumesAfterBrokerRestart: the external broker is
// killed and started again on the same store; the subscription resumes by
// itself and every event published after the broker returned is handled.
func TestSubscriptionResumesAfterBrokerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker child process")
	}
	broker := newBrokerProcess(t)
	var calls counter
	cfg := ferrytest.Config(t)
	cfg.NATSURL, cfg.NATSEmbed = broker.url(), false
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svc, placed, "ship", func(_ context.Context, e *OrderPlaced) error { calls.add(e.OrderID); return nil }, fast...)
	pub := ferry.NewPublisher(svc, placed)
	ferrytest.StartWith(t, cfg, svc)

	publishNow := func(id string) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := pub.Publish(ctx, &OrderPlaced{OrderID: id, Quantity: 1}, ferry.PublishMessageID(id))
		return err
	}
	if err := publishNow("before"); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool { return calls.get("before") == 1 }, "the first event is handled")

	broker.kill()
	broker.start()
	// Publishing works again once the connection is back.
	ferrytest.Eventually(t, func() bool { return publishNow("after-0") == nil }, "publishing resumes")
	for i := 1; i <= 50; i++ {
		if err := publishNow(fmt.Sprintf("after-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	ferrytest.Eventually(t, func() bool { return calls.distinct() == 52 }, "every event published after the restart is handled (%d of 52)", calls.distinct())
}
