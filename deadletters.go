package ferry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/naming"
)

// DeadLetter is an event a subscription gave up on, as stored in the
// dead-letter stream: the original payload and headers, where it failed,
// and why.
type DeadLetter struct {
	// Sequence is the dead letter's sequence in the dead-letter stream:
	// what [ReplayDeadLetter], [DeleteDeadLetter] and DeadLetterFilter.After
	// take.
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
	// After, when set, selects only dead letters with a greater sequence:
	// pass the Sequence of the last dead letter a listing returned to get
	// the next page.
	After uint64
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
// first, without removing them. To page through them, set filter.After to
// the Sequence of the last one returned; an empty page is the end.
func ListDeadLetters(ctx context.Context, c *Client, filter DeadLetterFilter, limit int) ([]DeadLetter, error) {
	js, err := c.jetStream()
	if err != nil {
		return nil, err
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter.subject()}, InactiveThreshold: 30 * time.Second}
	if filter.After > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, filter.After+1
	}
	cons, err := js.OrderedConsumer(ctx, naming.DeadLetterStream, cfg)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ferry: dead letters: %w", err)
	}
	defer func() { // the server would keep it until its inactivity threshold
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = js.DeleteConsumer(dctx, naming.DeadLetterStream, cons.CachedInfo().Name)
	}()
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
	var seq uint64
	if md, err := msg.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	return deadLetterFrom(seq, msg.Headers(), msg.Data())
}

// deadLetterFrom reads a dead letter from its stored message.
func deadLetterFrom(seq uint64, h nats.Header, data []byte) DeadLetter {
	dl := DeadLetter{
		Sequence: seq,
		Topic:    h.Get(naming.HeaderDLQTopic), Service: h.Get(naming.HeaderDLQService), Consumer: h.Get(naming.HeaderDLQConsumer),
		Error: h.Get(naming.HeaderDLQError), Stream: h.Get(naming.HeaderDLQStream), Subject: h.Get(naming.HeaderDLQSubject),
		MessageID: h.Get(naming.HeaderDLQMsgID), Header: h, Data: data,
	}
	dl.Deliveries, _ = strconv.ParseUint(h.Get(naming.HeaderDLQDeliveries), 10, 64)
	dl.StreamSequence, _ = strconv.ParseUint(h.Get(naming.HeaderDLQSequence), 10, 64)
	dl.Time, _ = headerTime(time.RFC3339Nano, h.Get(naming.HeaderDLQTime))
	return dl
}

// ReplayDeadLetter publishes the dead letter with sequence seq (its
// [DeadLetter].Sequence) again, to the one subscription that gave up on it:
// its payload and original headers go on the replay subject
// ferry.replay.<topic>.<service>.<consumer>, which is in the topic's
// stream and which only that consumer filters on, so the topic's other
// subscriptions do not see the event again. The replay has a new message
// ID, "replay:<seq>:<original message ID>", so the topic's de-duplication
// does not swallow it, and a retried replay of the same dead letter is
// stored once. Once JetStream has stored the replay, the dead letter is
// deleted from the dead-letter stream; if that fails, the error says so
// and [DeleteDeadLetter] removes it.
//
// A dead letter that does not exist is a 404 *[Error]
// ("dead_letter_not_found"). The replay is handled like any delivery: it
// is validated, retried and, failing again, dead-lettered again.
func ReplayDeadLetter(ctx context.Context, c *Client, seq uint64) (PublishResult, error) {
	stream, err := deadLetterStream(ctx, c, seq)
	if err != nil {
		return PublishResult{}, err
	}
	raw, err := stream.GetMsg(ctx, seq)
	if err != nil {
		return PublishResult{}, deadLetterError(seq, err)
	}
	msg, target, res, err := replayMessage(seq, raw.Header, raw.Data)
	if err != nil {
		return PublishResult{}, err
	}
	topic := raw.Header.Get(naming.HeaderDLQTopic)
	js, _ := c.jetStream() // made by deadLetterStream
	ack, err := js.PublishMsg(ctx, msg, jetstream.WithExpectStream(target))
	if err != nil {
		res.Err = publishError(topic, err)
		return res, fmt.Errorf("ferry: replay dead letter %d: %w", seq, res.Err)
	}
	res.Sequence, res.Duplicate = ack.Sequence, ack.Duplicate
	if err := deleteDeadLetter(ctx, stream, seq); err != nil && !isNotFound(err) {
		res.Err = fmt.Errorf("ferry: dead letter %d replayed (as %s), but not deleted; delete it with DeleteDeadLetter: %w", seq, res.ID, err)
		return res, res.Err
	}
	return res, nil
}

// replayMessage is the message that replays the dead letter with sequence
// seq, stored with header h and payload data, and the stream it must land
// in. A dead letter whose topic, service or consumer is not a valid name
// (anyone with the right to publish on the dead-letter subjects could
// write one) is refused: its names become the replay's subject.
func replayMessage(seq uint64, h nats.Header, data []byte) (*nats.Msg, string, PublishResult, error) {
	topic, service, consumer := h.Get(naming.HeaderDLQTopic), h.Get(naming.HeaderDLQService), h.Get(naming.HeaderDLQConsumer)
	if topic == "" || service == "" || consumer == "" {
		return nil, "", PublishResult{}, fmt.Errorf("ferry: replay dead letter %d: it names no topic, service and consumer (%s headers); not a Ferry dead letter", seq, dlqHeaderPrefix)
	}
	if naming.CheckTopicName(topic) != nil || naming.CheckServiceName(service) != nil ||
		consumer != naming.JobDeadLetterConsumer && naming.CheckEndpointName(consumer) != nil {
		return nil, "", PublishResult{}, fmt.Errorf("ferry: replay dead letter %d: its topic %q, service %q or consumer %q is not a valid name; not a Ferry dead letter", seq, topic, service, consumer)
	}
	res := PublishResult{ID: "replay:" + strconv.FormatUint(seq, 10) + ":" + h.Get(naming.HeaderDLQMsgID)}
	msg := nats.NewMsg(naming.ReplaySubject(topic, service, consumer))
	target := naming.TopicStream(topic)
	if consumer == naming.JobDeadLetterConsumer { // a failed job: its kind's queue, run again
		msg.Subject, target = JobPriority(h.Get(naming.HeaderJobPriority)).subject(topic), naming.JobStream(topic)
		msg.Header.Set(naming.HeaderJobReplay, "1")
	}
	for k, vs := range h {
		lower := strings.ToLower(k)
		if strings.HasPrefix(lower, "nats-") || strings.HasPrefix(lower, strings.ToLower(dlqHeaderPrefix)) {
			continue // the dead letter's own, and JetStream's
		}
		msg.Header[k] = append([]string(nil), vs...)
	}
	if consumer == naming.JobDeadLetterConsumer {
		msg.Header.Del(naming.HeaderJobAttempts) // its attempts start afresh, runs of rescheduled retries included
	}
	msg.Header.Set(naming.HeaderMsgID, res.ID)
	msg.Data = data
	return msg, target, res, nil
}

// DeleteDeadLetter removes the dead letter with sequence seq from the
// dead-letter stream, for good. A dead letter that does not exist is a 404
// *[Error] ("dead_letter_not_found").
func DeleteDeadLetter(ctx context.Context, c *Client, seq uint64) error {
	stream, err := deadLetterStream(ctx, c, seq)
	if err != nil {
		return err
	}
	if err := deleteDeadLetter(ctx, stream, seq); err != nil {
		return deadLetterError(seq, err)
	}
	return nil
}

// dlqHeaderPrefix starts the headers Ferry adds to a dead letter.
const dlqHeaderPrefix = "Ferry-Dlq-"

// deadLetterStream returns the dead-letter stream; without one, there is
// no dead letter seq.
func deadLetterStream(ctx context.Context, c *Client, seq uint64) (jetstream.Stream, error) {
	js, err := c.jetStream()
	if err != nil {
		return nil, err
	}
	stream, err := js.Stream(ctx, naming.DeadLetterStream)
	if err != nil {
		return nil, deadLetterError(seq, err)
	}
	return stream, nil
}

// deleteDeadLetter deletes the message seq; a missing one fails with
// jetstream.ErrMsgNotFound (the delete itself only says "unsuccessful").
func deleteDeadLetter(ctx context.Context, stream jetstream.Stream, seq uint64) error {
	err := stream.DeleteMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
		if _, gerr := stream.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
			return gerr
		}
	}
	return err
}

func isNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)
}

// deadLetterError is a 404 *Error for a dead letter that does not exist,
// and err wrapped otherwise.
func deadLetterError(seq uint64, err error) error {
	if isNotFound(err) {
		return &Error{Status: http.StatusNotFound, Code: "dead_letter_not_found",
			Detail: fmt.Sprintf("no dead letter %d", seq), cause: err}
	}
	return fmt.Errorf("ferry: dead letter %d: %w", seq, err)
}
