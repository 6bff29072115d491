package ferry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/naming"
)

// DeadLetter is an event a subscription gave up on, as stored in the
// dead-letter stream: the original payload and headers, where it failed,
// and why.
type DeadLetter struct {
	// Sequence is the dead letter's sequence in the dead-letter stream.
	Sequence uint64
	// Topic, Service and Consumer say which subscription gave up.
	Topic, Service, Consumer string
	// Error is the last error, or why the event never reached the handler
	// (malformed, or never acknowledged).
	Error string
	// Deliveries is how many times the event had been delivered.
	Deliveries uint64
	// Stream, StreamSequence and Subject locate the original event.
	Stream         string
	StreamSequence uint64
	Subject        string
	// MessageID is the original message ID.
	MessageID string
	// Time is when it was dead-lettered.
	Time time.Time
	// Header and Data are the original headers and payload.
	Header nats.Header
	Data   []byte
}

// DeadLetterFilter selects dead letters; empty fields match all.
type DeadLetterFilter struct {
	Topic, Service, Consumer string
}

func (f DeadLetterFilter) subject() string {
	tok := func(s string) string {
		if s == "" {
			return "*"
		}
		return s
	}
	return naming.DeadLetterPrefix + "." + tok(f.Topic) + "." + tok(f.Service) + "." + tok(f.Consumer)
}

// ListDeadLetters returns up to limit dead letters matching filter, oldest
// first, without removing them.
func ListDeadLetters(ctx context.Context, c *Client, filter DeadLetterFilter, limit int) ([]DeadLetter, error) {
	js, err := c.jetStream()
	if err != nil {
		return nil, err
	}
	cons, err := js.OrderedConsumer(ctx, naming.DeadLetterStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter.subject()}})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ferry: dead letters: %w", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("ferry: dead letters: %w", err)
	}
	want := min(limit, int(info.NumPending))
	var out []DeadLetter
	for len(out) < want {
		batch, err := cons.Fetch(want-len(out), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return out, fmt.Errorf("ferry: dead letters: %w", err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			out = append(out, deadLetterOf(msg))
		}
		if n == 0 {
			break
		}
	}
	return out, nil
}

func deadLetterOf(msg jetstream.Msg) DeadLetter {
	h := msg.Headers()
	dl := DeadLetter{
		Topic: h.Get(naming.HeaderDLQTopic), Service: h.Get(naming.HeaderDLQService), Consumer: h.Get(naming.HeaderDLQConsumer),
		Error: h.Get(naming.HeaderDLQError), Stream: h.Get(naming.HeaderDLQStream), Subject: h.Get(naming.HeaderDLQSubject),
		MessageID: h.Get("Ferry-Dlq-Msg-Id"), Header: h, Data: msg.Data(),
	}
	dl.Deliveries, _ = strconv.ParseUint(h.Get(naming.HeaderDLQDeliveries), 10, 64)
	dl.StreamSequence, _ = strconv.ParseUint(h.Get(naming.HeaderDLQSequence), 10, 64)
	dl.Time, _ = time.Parse(time.RFC3339Nano, h.Get(naming.HeaderDLQTime))
	if md, err := msg.Metadata(); err == nil {
		dl.Sequence = md.Sequence.Stream
	}
	return dl
}
