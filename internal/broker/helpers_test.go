package broker

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer accepts NATS clients on a loopback port, announcing itself as
// nats-server version with the given server ID and answering PINGs: enough
// for a client to connect, so checks made at connect time can be tested
// against servers that are not linked into this module.
func fakeServer(t *testing.T, version, serverID string) string {
	return fake{version: version, serverID: serverID}.start(t)
}

// fake is a NATS server made up for a test: it sends its INFO after delay
// and answers PINGs — the first one only when hangs, as a server that
// stops answering (stopped, partitioned away) with its connection still
// open; every one otherwise.
type fake struct {
	version, serverID string
	delay             time.Duration
	hangs             bool
}

// start listens on a loopback port until the test ends and returns the
// server's URL.
func (f fake) start(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go f.serve(c)
		}
	}()
	return "nats://" + ln.Addr().String()
}

func (f fake) serve(c net.Conn) {
	defer c.Close()
	time.Sleep(f.delay)
	fmt.Fprintf(c, "INFO {\"server_id\":%q,\"version\":%q,\"proto\":1,\"headers\":true,\"max_payload\":1048576}\r\n", f.serverID, f.version)
	r := bufio.NewReader(c)
	for answered := false; ; {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.HasPrefix(line, "PING") && !(f.hangs && answered) {
			_, _ = c.Write([]byte("PONG\r\n"))
			answered = true
		}
	}
}

// logRecords is a slog.Handler that keeps every record as one line:
// "LEVEL message key=value ...".
type logRecords struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecords) WithGroup(string) slog.Handler            { return l }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	line := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	return nil
}

// logger returns a logger writing to l.
func (l *logRecords) logger() *slog.Logger { return slog.New(l) }

// all returns the lines logged so far.
func (l *logRecords) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// find returns the first line logged so far that contains every one of
// parts, or "".
func (l *logRecords) find(parts ...string) string {
	for _, line := range l.all() {
		if containsAll(line, parts...) {
			return line
		}
	}
	return ""
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// eventually polls cond every 10ms until it holds or 10s pass.
func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: not %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
