package ferry_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ferrygo/ferry"
)

// TestMain lets the test binary double as a nats-server child process for
// the reconnect tests: with FERRY_TEST_BROKER_ADDR set, it runs a broker
// there (JetStream in FERRY_TEST_BROKER_DIR) until SIGTERM or SIGKILL. It
// is also the subscriber of the crash test and the two-service host of the
// drain test (drain_test.go), and the job worker of the job crash tests
// (jobs_crash_test.go).
func TestMain(m *testing.M) {
	if addr := os.Getenv("FERRY_TEST_BROKER_ADDR"); addr != "" {
		os.Exit(runBrokerChild(addr, os.Getenv("FERRY_TEST_BROKER_DIR")))
	}
	if out := os.Getenv("FERRY_TEST_SUBSCRIBER_OUT"); out != "" {
		os.Exit(runSubscriberChild(os.Getenv("FERRY_NATS_URL"), out))
	}
	if out := os.Getenv("FERRY_TEST_DRAIN_OUT"); out != "" {
		os.Exit(runDrainChild(out))
	}
	if out := os.Getenv("FERRY_TEST_JOB_WORKER_OUT"); out != "" {
		os.Exit(runJobWorkerChild(out))
	}
	if out := os.Getenv("FERRY_TEST_FLOW_WORKER_OUT"); out != "" {
		os.Exit(runFlowWorkerChild(out))
	}
	os.Exit(m.Run())
}

// runSubscriberChild subscribes to the test topic on the broker at url and
// appends the order ID of each handled event to the file out, before the
// event is acknowledged, until it is killed.
func runSubscriberChild(url, out string) int {
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svc, placed, "ship", func(_ context.Context, e *OrderPlaced) error {
		time.Sleep(time.Millisecond) // some work, so the kill lands mid-stream
		_, err := f.WriteString(e.OrderID + "\n")
		return err
	}, ferry.SubscribeAckWait(2*time.Second), ferry.SubscribeConcurrency(8))
	h, err := ferry.NewHost(ferry.WithConfig(ferry.Config{NATSURL: url}), quiet)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	_ = h.Add(svc)
	if err := h.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func runBrokerChild(addr, dir string) int {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	port, _ := strconv.Atoi(portText)
	srv, err := server.NewServer(&server.Options{Host: host, Port: port, JetStream: true, StoreDir: dir, NoSigs: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		fmt.Fprintln(os.Stderr, "broker child: not ready")
		return 1
	}
	fmt.Println("ready")
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	srv.Shutdown()
	srv.WaitForShutdown()
	return 0
}
