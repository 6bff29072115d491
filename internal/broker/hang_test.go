package broker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// hungServer answers the PING a client sends while connecting, then
// hangs with the connection open.
func hungServer(t *testing.T) string {
	return fake{version: "2.12.0", serverID: "HUNG", hangs: true}.start(t)
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
