package ferry

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/lifecycle"
	"github.com/ferrygo/ferry/internal/naming"
	"github.com/ferrygo/ferry/internal/natsproto"
	"github.com/ferrygo/ferry/internal/telemetry"
	"github.com/ferrygo/ferry/internal/worker"
)

// subscriber is a subscription without its type parameter, as a host runs
// it: a component of the host's lifecycle.
type subscriber interface {
	lifecycle.Component
	decl() topicDecl
	consumerName() string
	idempotent() bool
}

// subscription runs one Subscribe on the durable worker
// (internal/worker): a durable pull consumer shared by the service's
// replicas. Its own policies are the topic's: the payload is decoded and
// validated, an idempotent subscription claims each message ID before the
// handler runs, and the handler runs in the service's middleware chain.
type subscription[T any] struct {
	svc      *Service
	topic    topicDecl
	consumer string
	opts     subscribeOptions
	handler  func(context.Context, *T) error
	decode   func([]byte, *T) error // checks and decodes a payload

	js     jetstream.JetStream
	state  jetstream.KeyValue // the service's state bucket: idempotency and delivery records
	worker *worker.Worker
}

var _ subscriber = (*subscription[struct{}])(nil)

func (s *subscription[T]) decl() topicDecl      { return s.topic }
func (s *subscription[T]) consumerName() string { return s.consumer }
func (s *subscription[T]) idempotent() bool     { return s.opts.idempotency > 0 }

// Name implements lifecycle.Component.
func (s *subscription[T]) Name() string {
	return "subscription " + s.consumer + " of service " + s.svc.name + " to " + s.topic.name
}

// consumerConfig is the durable consumer: explicit acks, no server-side
// delivery limit (the worker counts the handler's runs), and the replay
// subject that reaches only this consumer.
func (s *subscription[T]) consumerConfig() jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Durable:        naming.Durable(s.svc.name, s.consumer),
		Description:    "Ferry subscription " + s.consumer + " of service " + s.svc.name + " to topic " + s.topic.name,
		FilterSubjects: []string{s.topic.subject, naming.ReplaySubject(s.topic.name, s.svc.name, s.consumer)},
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        s.opts.ackWait,
		MaxDeliver:     -1,
		MaxAckPending:  max(DefaultMaxAckPending, 4*s.opts.concurrency),
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		Metadata:       map[string]string{"ferry_service": s.svc.name, "ferry_consumer": s.consumer, "ferry_topic": s.topic.name},
	}
	if s.opts.deliverNew {
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	return cfg
}

// Start implements lifecycle.Component: it creates or updates the consumer
// and starts the worker.
func (s *subscription[T]) Start(ctx context.Context) error {
	rt := s.svc.runtime()
	s.js, s.state = rt.js, rt.state
	backoff := s.opts.backoff
	if rt.retryScale > 0 {
		backoff = func(n uint64) time.Duration {
			return time.Duration(min(float64(s.opts.backoff(n))*rt.retryScale, float64(maxBackoff)))
		}
	}
	w, err := worker.New(worker.Config{
		Name:        s.Name(),
		JS:          s.js,
		Stream:      naming.TopicStream(s.topic.name),
		Consumer:    s.consumerConfig(),
		Concurrency: s.opts.concurrency,
		Timeout:     s.opts.timeout,
		MaxAttempts: s.opts.maxDeliveries,
		Backoff:     backoff,
		Handle:      s.handle,
		Settled:     s.settled,
		DeadLetter:  s.storeDeadLetter,
		State:       s.state,
		StatePrefix: "dlv." + s.consumer + ".",
		Logger:      s.svc.logger,
	})
	if err == nil {
		err = w.Start(ctx)
	}
	if err != nil {
		return fmt.Errorf("ferry: %s: %w", s.Name(), err)
	}
	s.worker = w
	if rt.health != nil {
		rt.health.Add(s.Name(), w.Health)
	}
	return nil
}

// StopIntake implements lifecycle.Component.
func (s *subscription[T]) StopIntake() {
	if s.worker != nil {
		s.worker.StopIntake()
	}
}

// Drain implements lifecycle.Component.
func (s *subscription[T]) Drain(ctx context.Context) error {
	if s.worker == nil {
		return nil
	}
	return s.worker.Drain(ctx)
}

// Close implements lifecycle.Component.
func (s *subscription[T]) Close(ctx context.Context) error {
	if s.worker == nil {
		return nil
	}
	return s.worker.Close(ctx)
}

// handle is the worker's handler: decode, claim, run the chain. Its
// observation begins here and ends in settled, however the worker settles
// the delivery.
func (s *subscription[T]) handle(ctx context.Context, d *worker.Delivery) worker.Result {
	msg := d.Msg
	id := eventID(d)
	header := natsproto.Canonical(msg.Headers()) // read-only: may share the message's map
	req := &Request{
		Kind:      KindEvent,
		Service:   s.svc.name,
		Name:      s.consumer,
		Transport: TransportNATS,
		ID:        requestID(header.Get(HeaderRequestID)),
		header:    header.Get,
		logger:    s.svc.logger,
		calls:     &s.svc.calls,
	}
	var o *telemetry.Outcome
	if ob := s.svc.observer.load(); ob != nil {
		o = s.outcome(d, id, req.ID, header)
		ctx = ob.Begin(ctx, o)
		d.Data = &deliveryObservation{ob: ob, ctx: ctx, o: o}
	}
	var event T
	if err := s.decode(msg.Data(), &event); err != nil {
		noteEventError(o, http.StatusUnprocessableEntity, "malformed_event")
		return worker.Result{Outcome: worker.DeadLetter, Reason: "malformed event: " + err.Error()}
	}
	var held *claim
	if s.state != nil && s.opts.idempotency > 0 {
		var res worker.Result
		var done bool
		held, res, done = s.claim(ctx, id)
		if done {
			if o != nil && res.Outcome == worker.Ack {
				o.Result = telemetry.Skipped
			}
			return res
		}
	}

	ev := &Event{ID: id, Topic: s.topic.name, Subject: msg.Subject(), Delivery: d.Attempt, Published: d.Meta.Timestamp, Sequence: d.Meta.Sequence.Stream}
	ctx = context.WithValue(withRequest(ctx, req), eventKey{}, ev)
	req.invoke = func(ctx context.Context) error { return s.handler(ctx, &event) }

	err := s.run(ctx, req)
	if err == nil {
		s.markDone(held)
		return worker.Result{Outcome: worker.Ack}
	}
	s.release(held)
	if o != nil {
		fe := errorFrom(err)
		noteEventError(o, fe.GetStatus(), fe.code())
	}
	if IsPermanent(err) {
		return worker.Result{Outcome: worker.DeadLetter, Reason: describe(err)}
	}
	return worker.Result{Outcome: worker.Retry, Reason: describe(err)}
}

// eventID is a delivery's message ID: its Nats-Msg-Id, else its stream
// sequence.
func eventID(d *worker.Delivery) string {
	if id := d.Msg.Headers().Get(naming.HeaderMsgID); id != "" {
		return id
	}
	return strconv.FormatUint(d.Meta.Sequence.Stream, 10)
}

// deliveryObservation is an event delivery's observation between handle
// and settled.
type deliveryObservation struct {
	ob  telemetry.Observer
	ctx context.Context
	o   *telemetry.Outcome
}

// outcome begins describing a delivery for the observer.
func (s *subscription[T]) outcome(d *worker.Delivery, eventID, requestID string, header telemetry.Header) *telemetry.Outcome {
	return &telemetry.Outcome{
		Kind:      telemetry.KindEvent,
		Service:   s.svc.name,
		Name:      s.consumer,
		Route:     s.topic.name,
		Topic:     s.topic.name,
		Transport: TransportNATS,
		EventID:   eventID,
		RequestID: requestID,
		Header:    header,
		Start:     d.Received,
		Attempt:   d.Attempt,
	}
}

func noteEventError(o *telemetry.Outcome, status int, code string) {
	if o != nil {
		o.Status, o.Code = status, code
	}
}

// settled is the worker's Settled hook: it ends the delivery's
// observation — begun by handle, or here for a delivery the handler never
// saw (past its limit, skipped, handed back unstarted).
func (s *subscription[T]) settled(d *worker.Delivery, st worker.Settlement) {
	obs, _ := d.Data.(*deliveryObservation)
	if obs == nil {
		ob := s.svc.observer.load()
		if ob == nil {
			return
		}
		header := natsproto.Canonical(d.Msg.Headers())
		o := s.outcome(d, eventID(d), requestID(header.Get(HeaderRequestID)), header)
		obs = &deliveryObservation{ob: ob, ctx: ob.Begin(context.Background(), o), o: o}
	}
	o := obs.o
	if o.Result == "" {
		o.Result = settledResult[st.How]
	}
	o.Reason = st.Reason
	o.Duration = time.Since(o.Start)
	obs.ob.End(obs.ctx, o)
}

// settledResult names each worker settlement for observers.
var settledResult = [...]string{
	worker.Acked:            telemetry.Handled,
	worker.Skipped:          telemetry.Skipped,
	worker.Retried:          telemetry.Retried,
	worker.DeadLettered:     telemetry.DeadLettered,
	worker.DeadLetterFailed: telemetry.DeadLetterFailed,
	worker.HandedBack:       telemetry.HandedBack,
	worker.Deferred:         telemetry.Deferred,
}

// run runs the service's middleware chain for one delivery; a panic
// anywhere in it (a middleware's too) fails the delivery instead of
// ending the process.
func (s *subscription[T]) run(ctx context.Context, req *Request) (err error) {
	defer func() {
		if v := recover(); v != nil {
			s.svc.logger.ErrorContext(ctx, "ferry: event handler or middleware panicked",
				slog.String("service", s.svc.name), slog.String("consumer", s.consumer),
				slog.String("request_id", req.ID), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			err = &Error{Status: http.StatusInternalServerError, cause: fmt.Errorf("panic: %v", v)}
		}
	}()
	return s.svc.chain(ctx, req)
}

// claim is an idempotency claim on a message ID: a key created before
// the handler runs, renewed while it runs within its timeout, marked done
// after it succeeds, removed after it fails. A process that dies, or a run
// that hangs past its timeout, leaves a claim that expires after the claim
// TTL.
type claim struct {
	key     string
	id      string
	mu      sync.Mutex
	rev     uint64
	renew   *time.Timer
	stopped bool
	run     context.Context // the run's context: renewals end with it
}

// claimTTL is how long a claim outlives its last renewal.
func (o subscribeOptions) claimTTL() time.Duration { return o.timeout + o.ackWait }

// revision returns the claim's current revision and stops its renewal.
func (c *claim) stop() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	c.renew.Stop()
	return c.rev
}

// claim claims the message ID. done is true when the delivery is settled
// without running the handler: the ID was handled before (ack), or another
// run holds it (deferred until its claim expires or is released).
func (s *subscription[T]) claim(ctx context.Context, id string) (c *claim, res worker.Result, done bool) {
	key := idempotencyKey(s.consumer, id)
	ttl := s.opts.claimTTL()
	rev, err := s.state.Create(ctx, key, []byte(claimRunning), jetstream.KeyTTL(ttl))
	switch {
	case err == nil:
		c := &claim{key: key, id: id, rev: rev, run: ctx}
		c.mu.Lock()
		c.renew = time.AfterFunc(s.opts.ackWait/3, func() { s.renewClaim(c) })
		c.mu.Unlock()
		return c, res, false
	case errors.Is(err, jetstream.ErrKeyExists):
		if e, gerr := s.state.Get(ctx, key); gerr == nil && string(e.Value()) == claimDone {
			return nil, worker.Result{Outcome: worker.Ack}, true // handled before: the effect already happened
		}
		return nil, worker.Result{Outcome: worker.Defer, Delay: s.opts.ackWait}, true
	}
	s.svc.logger.Warn("ferry: idempotency claim not written; running the handler without it", slog.String("consumer", s.consumer),
		slog.String("event", id), slog.String("err", err.Error()))
	return nil, res, false
}

// The values of an idempotency key.
const (
	claimRunning = "running"
	claimDone    = "done"
)

// renewClaim rewrites a running claim with a fresh TTL, and schedules the
// next renewal, while the run is within its timeout: a run past it counts
// as hung, its claim expires, and a redelivery runs (and counts) again.
func (s *subscription[T]) renewClaim(c *claim) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || c.run.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if rev, err := s.rewriteKey(ctx, c.key, claimRunning, c.rev, s.opts.claimTTL()); err == nil {
		c.rev = rev
	}
	c.renew.Reset(s.opts.ackWait / 3)
}

// rewriteKey rewrites a state key if it is still at revision rev, with a
// TTL: KV's Update takes no TTL, so this is its wire form.
func (s *subscription[T]) rewriteKey(ctx context.Context, key, value string, rev uint64, ttl time.Duration) (uint64, error) {
	msg := nats.NewMsg("$KV." + s.state.Bucket() + "." + key)
	msg.Data = []byte(value)
	ack, err := s.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(rev), jetstream.WithMsgTTL(ttl))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// markDone marks the claimed ID handled for the idempotency window: the
// claim's key is rewritten, only if it is still this claim, with the
// window as its TTL.
func (s *subscription[T]) markDone(c *claim) {
	if c == nil {
		return
	}
	rev := c.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.rewriteKey(ctx, c.key, claimDone, rev, s.opts.idempotency); err != nil {
		s.svc.logger.Warn("ferry: idempotency record not written", slog.String("consumer", s.consumer), slog.String("event", c.id),
			slog.String("err", err.Error()))
	}
}

// release removes a claim after a failed run, so a retry can claim again.
func (s *subscription[T]) release(c *claim) {
	if c == nil {
		return
	}
	rev := c.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.state.Purge(ctx, c.key, jetstream.LastRevision(rev), jetstream.PurgeTTL(time.Minute))
}

// describe is the error text kept with a dead letter.
func describe(err error) string {
	var fe *Error
	if errors.As(err, &fe) && fe.cause != nil {
		return fe.cause.Error()
	}
	return err.Error()
}

// storeDeadLetter stores the event in the dead-letter stream.
func (s *subscription[T]) storeDeadLetter(ctx context.Context, d *worker.Delivery, reason string) error {
	return storeDeadLetter(ctx, s.js, d, reason, s.topic.name, s.svc.name, s.consumer)
}

// storeDeadLetter stores a message in the dead-letter stream with its
// original headers and payload, where it failed (topic or job name,
// service, consumer) and why.
func storeDeadLetter(ctx context.Context, js jetstream.JetStream, d *worker.Delivery, reason, topic, service, consumer string) error {
	msg, md := d.Msg, d.Meta
	dl := nats.NewMsg(naming.DeadLetterSubject(topic, service, consumer))
	for k, vs := range msg.Headers() {
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			continue // JetStream's own: message ID, expectations; kept below where useful
		}
		dl.Header[k] = append([]string(nil), vs...)
	}
	if len(reason) > 2000 {
		reason = reason[:2000] + "…"
	}
	dl.Header.Set(naming.HeaderMsgID, fmt.Sprintf("dlq:%s:%d:%s", md.Stream, md.Sequence.Stream, naming.Durable(service, consumer)))
	dl.Header.Set(naming.HeaderDLQTopic, topic)
	dl.Header.Set(naming.HeaderDLQService, service)
	dl.Header.Set(naming.HeaderDLQConsumer, consumer)
	dl.Header.Set(naming.HeaderDLQError, reason)
	dl.Header.Set(naming.HeaderDLQDeliveries, strconv.FormatUint(d.Attempt, 10))
	dl.Header.Set(naming.HeaderDLQStream, md.Stream)
	dl.Header.Set(naming.HeaderDLQSequence, strconv.FormatUint(md.Sequence.Stream, 10))
	dl.Header.Set(naming.HeaderDLQSubject, msg.Subject())
	dl.Header.Set(naming.HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
	if id := msg.Headers().Get(naming.HeaderMsgID); id != "" {
		dl.Header.Set(naming.HeaderDLQMsgID, id)
	}
	dl.Data = msg.Data()
	_, err := js.PublishMsg(ctx, dl, jetstream.WithExpectStream(naming.DeadLetterStream))
	return err
}

// idempotencyKey is a valid KV key for a consumer's record of a message.
func idempotencyKey(consumer, id string) string {
	return "idem." + consumer + "." + base64.RawURLEncoding.EncodeToString([]byte(id))
}
