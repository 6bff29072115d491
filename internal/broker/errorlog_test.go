package broker

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestErrorLogIsRateLimited: the same asynchronous error on the same
// subject is logged once per interval, with the count of repeats left out;
// other subjects and errors are logged at once.
func TestErrorLogIsRateLimited(t *testing.T) {
	var buf bytes.Buffer
	l := newErrorLog(slog.New(slog.NewTextHandler(&buf, nil)), 10*time.Second)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	slow := errors.New("nats: slow consumer, messages dropped")
	for range 500 {
		l.report("a.b", slow)
	}
	l.report("c.d", slow)
	l.report("a.b", errors.New("nats: permissions violation"))
	if n := strings.Count(buf.String(), "ferry: broker error"); n != 3 {
		t.Fatalf("%d lines for 500 repeats and two others, want 3:\n%s", n, &buf)
	}
	now = now.Add(11 * time.Second)
	l.report("a.b", slow)
	if !strings.Contains(buf.String(), "repeated=499") {
		t.Errorf("the line after the interval does not count the 499 left out:\n%s", &buf)
	}
}
