package broker

import (
	"context"
	"testing"
	"time"
)

// slowHandshakeServer is a healthy server that answers a new connection
// only after delay.
func slowHandshakeServer(t *testing.T, delay time.Duration) string {
	return fake{version: "2.12.0", serverID: "SLOW", delay: delay}.start(t)
}

// TestReview13_SlowHandshakeWithinTheStartDeadlineConnects: a server that
// takes 2.5 s to answer a new connection (a TLS handshake to a remote
// cluster over a long link, a server busy after a restart) is a legitimate
// broker, and the host's start gives Open 30 s. Before the change to
// connect.go, Open waited up to the start's deadline; now every attempt is
// cut at DialTimeout (2 s) and Open makes ONE attempt (no
// RetryOnFailedConnect), so the service cannot start at all against such a
// server, however long its start deadline — and the limit is a constant,
// with no setting to raise it.
//
// FAILS on the current code: Open returns "nats: timeout".
func TestReview13_SlowHandshakeWithinTheStartDeadlineConnects(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Open(ctx, Options{URL: slowHandshakeServer(t, DialTimeout+500*time.Millisecond)})
	if err != nil {
		t.Fatalf("Open with 30 s to go against a server answering in %v: %v", DialTimeout+500*time.Millisecond, err)
	}
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelClose()
	_ = b.Close(closeCtx)
}
