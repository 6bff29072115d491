package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// wireShape is what one contender puts on the wire for one call.
type wireShape struct {
	RequestHeaders []string `json:"request_headers"`
	RequestBytes   int      `json:"request_bytes"` // headers block + payload
	ReplyHeaders   []string `json:"reply_headers"`
	ReplyBytes     int      `json:"reply_bytes"`
	ReplyPayload   string   `json:"reply_payload"`
}

// headerBytes is the size of a NATS header block as nats.go writes it.
func headerBytes(h nats.Header) int {
	if len(h) == 0 {
		return 0
	}
	n := len("NATS/1.0\r\n") + len("\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	return n
}

func headerNames(h nats.Header) []string {
	var out []string
	for k := range h {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// sniff makes one call with each contender while a separate connection
// listens to the request subject and to the reply inboxes, and returns
// what each put on the wire. The listening subscription is removed before
// anything is measured.
func (e *env) sniff(ctx context.Context) (map[string]wireShape, error) {
	nc, err := nats.Connect(e.url, nats.Name("bench sniffer"))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	msgs := make(chan *nats.Msg, 64)
	for _, s := range []string{ferrySubject, rawSubject, rawInlineSubject, rawBareSubject, "_INBOX.>"} {
		if _, err := nc.ChanSubscribe(s, msgs); err != nil {
			return nil, err
		}
	}
	if err := nc.Flush(); err != nil {
		return nil, err
	}
	out := map[string]wireShape{}
	for _, c := range e.contenders() {
		if err := c.call(ctx, 7); err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		var w wireShape
		for got := 0; got < 2; {
			select {
			case m := <-msgs:
				if strings.HasPrefix(m.Subject, "_INBOX.") {
					w.ReplyHeaders, w.ReplyBytes, w.ReplyPayload = headerNames(m.Header), headerBytes(m.Header)+len(m.Data), string(m.Data)
				} else {
					w.RequestHeaders, w.RequestBytes = headerNames(m.Header), headerBytes(m.Header)+len(m.Data)
				}
				got++
			case <-time.After(5 * time.Second):
				return nil, fmt.Errorf("%s: the sniffer saw %d of 2 messages", c.name, got)
			}
		}
		out[c.name] = w
	}
	return out, nil
}
