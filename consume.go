package ferry

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/naming"
	"github.com/ferrygo/ferry/internal/natsproto"
)

// subscriber is a subscription without its type parameter, as a host runs
// it.
type subscriber interface {
	decl() topicDecl
	consumerName() string
	idempotent() bool
	start(js jetstream.JetStream, kv jetstream.KeyValue) error
	stopPulling()
	wait(ctx context.Context) error
}

// subscription runs one Subscribe: a durable pull consumer shared by the
// service's replicas, a bounded set of handler goroutines, acks after
// success, delayed naks with backoff after failures, dead letters past
// the delivery limit.
type subscription[T any] struct {
	svc      *Service
	topic    topicDecl
	consumer string
	opts     subscribeOptions
	handler  func(context.Context, *T) error
	decode   func([]byte, *T) error // checks and decodes a payload

	js       jetstream.JetStream
	kv       jetstream.KeyValue // idempotency records, when enabled
	base     context.Context    // cancelled when the grace period is over
	cancel   context.CancelFunc
	stopping chan struct{}
	stopOnce sync.Once
	loopDone chan struct{}

	mu       sync.Mutex
	iter     jetstream.MessagesContext
	warnOnce sync.Once
	running  sync.Map // jetstream.Msg → its handler's context, while it runs
}

var _ subscriber = (*subscription[struct{}])(nil)

func (s *subscription[T]) decl() topicDecl      { return s.topic }
func (s *subscription[T]) consumerName() string { return s.consumer }
func (s *subscription[T]) idempotent() bool     { return s.opts.idempotency > 0 }

// consumerConfig is the durable consumer: explicit acks; the server's
// delivery limit two above Ferry's own, so Ferry sees the delivery past
// its limit (and dead-letters it without running the handler) even when
// the last run hung or crashed, with room for a failed dead-letter write.
func (s *subscription[T]) consumerConfig() jetstream.ConsumerConfig {
	name := naming.Durable(s.svc.name, s.consumer)
	cfg := jetstream.ConsumerConfig{
		Durable:        name,
		Description:    "Ferry subscription " + s.consumer + " of service " + s.svc.name + " to topic " + s.topic.name,
		FilterSubjects: []string{s.topic.subject, naming.ReplaySubject(s.topic.name, s.svc.name, s.consumer)},
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        s.opts.ackWait,
		MaxDeliver:     s.opts.maxDeliveries + 2,
		MaxAckPending:  max(DefaultMaxAckPending, 4*s.opts.concurrency),
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		Metadata:       map[string]string{"ferry_service": s.svc.name, "ferry_consumer": s.consumer, "ferry_topic": s.topic.name},
	}
	if s.opts.deliverNew {
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	return cfg
}

func (s *subscription[T]) start(js jetstream.JetStream, kv jetstream.KeyValue) error {
	s.js, s.kv = js, kv
	s.base, s.cancel = context.WithCancel(context.Background())
	s.stopping = make(chan struct{})
	s.loopDone = make(chan struct{})
	ctx, cancel := context.WithTimeout(s.base, 30*time.Second)
	defer cancel()
	if _, err := s.ensureConsumer(ctx); err != nil {
		s.cancel()
		return fmt.Errorf("ferry: subscription %s of service %s to %s: %w", s.consumer, s.svc.name, s.topic.name, err)
	}
	go s.loop()
	go s.reportProgress()
	return nil
}

// ensureConsumer creates the durable consumer, or updates it to the
// subscription's configuration. A change JetStream cannot apply to an
// existing consumer (its deliver or ack policy, say) does not stop the
// service: it keeps consuming with the consumer as it is, and the log says
// so once (docs/events.md, "Migrating a stream").
func (s *subscription[T]) ensureConsumer(ctx context.Context) (jetstream.Consumer, error) {
	stream := naming.TopicStream(s.topic.name)
	cons, err := s.js.CreateOrUpdateConsumer(ctx, stream, s.consumerConfig())
	var apiErr *jetstream.APIError
	if err == nil || !errors.As(err, &apiErr) || !strings.Contains(apiErr.Description, "can not be updated") {
		return cons, err
	}
	existing, gerr := s.js.Consumer(ctx, stream, naming.Durable(s.svc.name, s.consumer))
	if gerr != nil {
		return nil, err
	}
	s.warnOnce.Do(func() {
		s.svc.logger.Warn("ferry: consumer configuration changed in a way JetStream cannot apply in place; consuming with the existing consumer until it is migrated (docs/events.md, \"Migrating a stream\")",
			slog.String("consumer", naming.Durable(s.svc.name, s.consumer)), slog.String("stream", stream), slog.String("reason", apiErr.Description))
	})
	return existing, nil
}

// reportProgress tells JetStream, every third of the ack wait, that each
// running handler is still at work, so a long handler keeps its event; a
// handler past its timeout is no longer reported, so an event whose
// handler hangs goes back to JetStream after the ack wait.
func (s *subscription[T]) reportProgress() {
	t := time.NewTicker(s.opts.ackWait / 3)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.running.Range(func(k, v any) bool {
				if v.(context.Context).Err() == nil {
					_ = k.(jetstream.Msg).InProgress()
				}
				return true
			})
		case <-s.loopDone:
			return
		}
	}
}

// loop supervises the subscription: it (re)creates the consumer and its
// pull, runs the workers on it, and starts again when JetStream ends the
// pull for good (a deleted consumer, an iterator closed after a server
// restart), until the subscription stops.
func (s *subscription[T]) loop() {
	defer close(s.loopDone)
	log := s.svc.logger.With(slog.String("service", s.svc.name), slog.String("consumer", s.consumer), slog.String("topic", s.topic.name))
	for attempt := 0; ; attempt++ {
		if s.stopped() {
			return
		}
		if attempt > 0 {
			select {
			case <-time.After(min(time.Duration(attempt)*200*time.Millisecond, 5*time.Second)):
			case <-s.stopping:
				return
			}
		}
		ctx, cancel := context.WithTimeout(s.base, 10*time.Second)
		cons, err := s.ensureConsumer(ctx)
		cancel()
		if err != nil {
			log.Warn("ferry: subscription: cannot (re)create the consumer; retrying", slog.String("err", err.Error()))
			continue
		}
		// A short pull expiry bounds how long a pull request the server
		// lost can go unnoticed (the heartbeat is half of it).
		iter, err := cons.Messages(jetstream.PullMaxMessages(s.opts.concurrency), jetstream.PullExpiry(5*time.Second))
		if err != nil {
			log.Warn("ferry: subscription: cannot pull; retrying", slog.String("err", err.Error()))
			continue
		}
		s.mu.Lock()
		s.iter = iter
		s.mu.Unlock()
		if s.stopped() {
			iter.Drain()
		}
		var workers sync.WaitGroup
		for range s.opts.concurrency {
			workers.Go(func() { s.work(iter, log) })
		}
		workers.Wait()
		if s.stopped() {
			return
		}
		iter.Stop()
		attempt = 0
	}
}

// work is one of the subscription's concurrency workers: it takes the next
// event only when it is free to handle it, so events do not wait in a
// local buffer while their ack wait runs. Long-lived workers also spare
// each event a new goroutine and its stack growth. It returns when the
// pull ends; once the subscription is stopping, events still buffered are
// handed back (nak) for another replica instead of handled.
func (s *subscription[T]) work(iter jetstream.MessagesContext, log *slog.Logger) {
	for {
		msg, err := iter.Next()
		if err != nil {
			switch {
			case s.stopped(), errors.Is(err, jetstream.ErrMsgIteratorClosed):
				return
			case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrBadRequest):
				log.Warn("ferry: subscription: pull ended; recreating the consumer", slog.String("err", err.Error()))
				iter.Stop() // ends the other workers' Next too
				return
			default:
				log.Debug("ferry: subscription: pull", slog.String("err", err.Error()))
				continue
			}
		}
		if s.stopped() {
			_ = msg.Nak()
			continue
		}
		s.handle(msg)
	}
}

func (s *subscription[T]) stopped() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}

// stopPulling stops fetching events; running handlers go on, and the
// workers hand back what was fetched but not started.
func (s *subscription[T]) stopPulling() {
	s.stopOnce.Do(func() {
		close(s.stopping)
		s.mu.Lock()
		if s.iter != nil {
			s.iter.Drain()
		}
		s.mu.Unlock()
	})
}

// wait waits for running handlers until ctx ends, then cancels their
// contexts; a handler that ends with its context cancelled naks its event,
// which JetStream redelivers to another replica.
func (s *subscription[T]) wait(ctx context.Context) error {
	s.stopPulling()
	done := s.loopDone // the workers return after their last handler
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		if !waitBriefly(done) {
			return fmt.Errorf("ferry: subscription %s of service %s: grace period over; handlers that ignore their context are still running, their events will be redelivered: %w",
				s.consumer, s.svc.name, ctx.Err())
		}
		return fmt.Errorf("ferry: subscription %s of service %s: grace period over; running handlers were cancelled and their events handed back: %w",
			s.consumer, s.svc.name, ctx.Err())
	}
}

// handle runs the handler for one delivery and settles it.
func (s *subscription[T]) handle(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		_ = msg.Nak()
		return
	}
	log := s.svc.logger
	id := msg.Headers().Get(naming.HeaderMsgID)
	if id == "" {
		id = strconv.FormatUint(md.Sequence.Stream, 10)
	}
	if md.NumDelivered > uint64(s.opts.maxDeliveries) {
		s.deadLetter(msg, md, fmt.Sprintf("delivered %d times without an acknowledgement: the handler hung past its ack wait, or its process died",
			md.NumDelivered-1))
		return
	}
	var event T
	if err := s.decode(msg.Data(), &event); err != nil {
		s.deadLetter(msg, md, "malformed event: "+err.Error())
		return
	}
	key := ""
	if s.kv != nil && s.opts.idempotency > 0 {
		key = idempotencyKey(s.svc.name, s.consumer, id)
		if _, err := s.kv.Get(s.base, key); err == nil {
			_ = msg.Ack() // handled before: the effect already happened
			return
		}
	}

	header := natsproto.Canonical(msg.Headers()) // read-only: may share the message's map
	req := &Request{
		Kind:      KindEvent,
		Service:   s.svc.name,
		Name:      s.consumer,
		Transport: TransportNATS,
		ID:        requestID(header.Get(HeaderRequestID)),
		header:    header.Get,
	}
	ev := &Event{ID: id, Topic: s.topic.name, Subject: msg.Subject(), Delivery: md.NumDelivered, Published: md.Timestamp, Sequence: md.Sequence.Stream}
	ctx, cancel := context.WithTimeout(context.WithValue(withRequest(s.base, req), eventKey{}, ev), s.opts.timeout)
	defer cancel()
	req.invoke = func(ctx context.Context) error { return s.handler(ctx, &event) }

	// While the handler runs within its timeout, the subscription's
	// progress reporter keeps the event from going to another replica.
	s.running.Store(msg, ctx)
	err = s.svc.chain(ctx, req)
	s.running.Delete(msg)

	switch {
	case err == nil:
		if key != "" {
			if _, kerr := s.kv.Create(s.base, key, []byte(id), jetstream.KeyTTL(s.opts.idempotency)); kerr != nil && !errors.Is(kerr, jetstream.ErrKeyExists) {
				log.Warn("ferry: subscription: idempotency record not written", slog.String("event", id), slog.String("err", kerr.Error()))
			}
		}
		_ = msg.Ack()
	case s.base.Err() != nil:
		_ = msg.Nak() // shutting down: another replica takes it now
	case IsPermanent(err):
		s.deadLetter(msg, md, describe(err))
	case md.NumDelivered >= uint64(s.opts.maxDeliveries):
		s.deadLetter(msg, md, describe(err))
	default:
		_ = msg.NakWithDelay(s.opts.backoff(md.NumDelivered))
	}
}

// describe is the error text kept with a dead letter.
func describe(err error) string {
	var fe *Error
	if errors.As(err, &fe) && fe.cause != nil {
		return fe.cause.Error()
	}
	return err.Error()
}

// deadLetter stores the event in the dead-letter stream with its original
// headers and payload, where it failed and why, then acknowledges it. If
// the dead letter cannot be stored, the event stays in its topic and is
// retried later: nothing is lost.
func (s *subscription[T]) deadLetter(msg jetstream.Msg, md *jetstream.MsgMetadata, reason string) {
	dl := nats.NewMsg(naming.DeadLetterSubject(s.topic.name, s.svc.name, s.consumer))
	for k, vs := range msg.Headers() {
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			continue // JetStream's own: message ID, expectations; kept below where useful
		}
		dl.Header[k] = append([]string(nil), vs...)
	}
	if len(reason) > 2000 {
		reason = reason[:2000] + "…"
	}
	dl.Header.Set(naming.HeaderMsgID, fmt.Sprintf("dlq:%s:%d:%s", md.Stream, md.Sequence.Stream, naming.Durable(s.svc.name, s.consumer)))
	dl.Header.Set(naming.HeaderDLQTopic, s.topic.name)
	dl.Header.Set(naming.HeaderDLQService, s.svc.name)
	dl.Header.Set(naming.HeaderDLQConsumer, s.consumer)
	dl.Header.Set(naming.HeaderDLQError, reason)
	dl.Header.Set(naming.HeaderDLQDeliveries, strconv.FormatUint(md.NumDelivered, 10))
	dl.Header.Set(naming.HeaderDLQStream, md.Stream)
	dl.Header.Set(naming.HeaderDLQSequence, strconv.FormatUint(md.Sequence.Stream, 10))
	dl.Header.Set(naming.HeaderDLQSubject, msg.Subject())
	dl.Header.Set(naming.HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
	if id := msg.Headers().Get(naming.HeaderMsgID); id != "" {
		dl.Header.Set("Ferry-Dlq-Msg-Id", id)
	}
	dl.Data = msg.Data()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.base), 10*time.Second)
	defer cancel()
	if _, err := s.js.PublishMsg(ctx, dl); err != nil {
		s.svc.logger.Error("ferry: dead letter not stored; the event stays in its topic and is retried",
			slog.String("consumer", s.consumer), slog.String("topic", s.topic.name), slog.String("err", err.Error()))
		_ = msg.NakWithDelay(s.opts.backoff(md.NumDelivered))
		return
	}
	s.svc.logger.Warn("ferry: event dead-lettered", slog.String("service", s.svc.name), slog.String("consumer", s.consumer),
		slog.String("topic", s.topic.name), slog.Uint64("sequence", md.Sequence.Stream), slog.String("reason", reason))
	_ = msg.Ack()
}

// idempotencyKey is a valid KV key for a consumer's record of a message.
func idempotencyKey(service, consumer, id string) string {
	return service + "." + consumer + "." + base64.RawURLEncoding.EncodeToString([]byte(id))
}
