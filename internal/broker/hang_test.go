package broker

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// hungServer accepts NATS clients on a loopback port and answers the
// PING a client sends while connecting, then hangs: the connection stays
// open and nothing more is answered, as a stopped or partitioned server.
func hungServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go func() {
				fmt.Fprintf(c, "INFO {\"server_id\":\"HUNG\",\"version\":\"2.12.0\",\"proto\":1,\"headers\":true,\"max_payload\":1048576}\r\n")
				r := bufio.NewReader(c)
				for answered := false; ; {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if strings.HasPrefix(line, "PING") && !answered {
						_, _ = c.Write([]byte("PONG\r\n"))
						answered = true
					}
				}
			}()
		}
	}()
	return "nats://" + ln.Addr().String()
}

// TestHungServerIsFound: a server that stops answering with its connection
// open is found by the connection's pings and the connection leaves the
// CONNECTED state (so readiness turns 503 and calls fail at once) within
// seconds, not after nats.go's default of minutes.
func TestHungServerIsFound(t *testing.T) {
	logs := &logRecords{}
	b, err := Open(context.Background(), Options{URL: hungServer(t), Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Conn().Close()
	bound := 10 * (PingInterval * (MaxPingsOut + 1)) // generous: a loaded machine
	deadline := time.Now().Add(bound)
	for b.Conn().Status() == nats.CONNECTED {
		if time.Now().After(deadline) {
			t.Fatalf("the connection to a hung server is still CONNECTED after %s", bound)
		}
		time.Sleep(50 * time.Millisecond)
	}
	found := false
	for _, line := range logs.all() {
		found = found || strings.Contains(line, "broker connection lost") && strings.Contains(line, "stale")
	}
	if !found {
		t.Errorf("no stale connection logged: %q", logs.all())
	}
}
