package ferry_test

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestMain lets the test binary double as a nats-server child process for
// the reconnect tests: with FERRY_TEST_BROKER_ADDR set, it runs a broker
// there (JetStream in FERRY_TEST_BROKER_DIR) until SIGTERM or SIGKILL.
func TestMain(m *testing.M) {
	if addr := os.Getenv("FERRY_TEST_BROKER_ADDR"); addr != "" {
		os.Exit(runBrokerChild(addr, os.Getenv("FERRY_TEST_BROKER_DIR")))
	}
	os.Exit(m.Run())
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
