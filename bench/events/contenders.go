package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/internal/naming"
)

// OrderPlaced is the event: the payload of examples/events, with its
// validation tags (Ferry checks them on every delivery).
type OrderPlaced struct {
	OrderID  string `json:"order_id" minLength:"1" doc:"The order's ID."`
	SKU      string `json:"sku" pattern:"^[a-z0-9-]+$" doc:"What was ordered."`
	Quantity int    `json:"quantity" minimum:"1"`
}

// placed is the topic both contenders use (the raw one by its stream,
// subjects and consumer names).
var placed = ferry.Topic[OrderPlaced]{Name: "order-placed", Subject: "orders.placed"}

const (
	serviceName  = "bench"
	consumerName = "ship"
	concurrency  = 64
)

// newEvents returns n events with distinct order IDs.
func newEvents(n int) []*OrderPlaced {
	events := make([]*OrderPlaced, n)
	for i := range events {
		events[i] = &OrderPlaced{OrderID: nuid.Next(), SKU: "kettle", Quantity: 1}
	}
	return events
}

// syncMode is how the embedded broker syncs its store.
type syncMode struct {
	Name     string
	Always   bool
	Interval time.Duration
}

var (
	syncInterval = syncMode{Name: "interval-1s", Interval: time.Second}
	syncAlways   = syncMode{Name: "always", Always: true}
)

// hostConfig is the broker both contenders run on: the embedded broker of
// a ferry.Host, in its own store.
func hostConfig(dir string, m syncMode) ferry.Config {
	return ferry.Config{NATSEmbed: true, DataDir: dir, SyncAlways: m.Always, SyncInterval: m.Interval, LogLevel: slog.LevelWarn}
}

func logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// sink counts handled events; the current batch's done channel closes
// when its count reaches its target. Handlers wait at the gate first, so
// a pre-filled stream's consumption can start at a chosen instant.
type sink struct {
	gate chan struct{}
	cur  atomic.Pointer[batch]
}

type batch struct {
	want  int64
	count atomic.Int64
	done  chan struct{}
}

func newSink(open bool) *sink {
	s := &sink{gate: make(chan struct{})}
	if open {
		close(s.gate)
	}
	s.expect(0)
	return s
}

// expect starts counting n events and returns the channel closed once
// they are handled.
func (s *sink) expect(n int) <-chan struct{} {
	b := &batch{want: int64(n), done: make(chan struct{})}
	s.cur.Store(b)
	return b.done
}

func (s *sink) open() { close(s.gate) }

// handled records one handled event.
func (s *sink) handled() {
	<-s.gate
	b := s.cur.Load()
	if b.count.Add(1) == b.want {
		close(b.done)
	}
}

// instance is one contender on its broker, ready to publish and (for the
// consuming scenarios) consuming into its sink.
type instance interface {
	// publish publishes events asynchronously in batches, waiting for all
	// acknowledgements of a batch before the next.
	publish(ctx context.Context, events []*OrderPlaced, batchSize int) error
	// state returns the consumer's redeliveries (deliveries beyond the
	// first of each event) and deliveries pending acknowledgement, and the
	// stream's event count.
	state(ctx context.Context) (redelivered, ackPending int, msgs uint64, err error)
	// conn is the broker connection.
	conn() *nats.Conn
	close(ctx context.Context) error
}

type starter func(ctx context.Context, dir string, mode syncMode, consume bool, s *sink) (instance, error)

var contenders = map[string]starter{"ferry": startFerry, "raw": startRaw}

// startHost starts a host with svc on an embedded broker in dir.
func startHost(ctx context.Context, cfg ferry.Config, svc *ferry.Service) (*ferry.Host, error) {
	h, err := ferry.NewHost(ferry.WithConfig(cfg), ferry.WithLogger(logger()))
	if err != nil {
		return nil, err
	}
	if err := h.Add(svc); err != nil {
		return nil, err
	}
	if err := h.Start(ctx); err != nil {
		return nil, err
	}
	return h, nil
}

// stateOf reads the consumer and stream state over nc.
func stateOf(ctx context.Context, nc *nats.Conn, consume bool) (redelivered, ackPending int, msgs uint64, err error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, 0, 0, err
	}
	stream, err := js.Stream(ctx, naming.TopicStream(placed.Name))
	if err != nil {
		return 0, 0, 0, err
	}
	si, err := stream.Info(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	if !consume {
		return 0, 0, si.State.Msgs, nil
	}
	cons, err := stream.Consumer(ctx, naming.Durable(serviceName, consumerName))
	if err != nil {
		return 0, 0, 0, err
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	// Every event is delivered by now: deliveries beyond the events are
	// redeliveries.
	return int(ci.Delivered.Consumer) - int(si.State.Msgs), ci.NumAckPending, si.State.Msgs, nil
}

// describeConsumer is the consumer's state, for a stall report.
func describeConsumer(ctx context.Context, nc *nats.Conn) string {
	js, err := jetstream.New(nc)
	if err != nil {
		return err.Error()
	}
	cons, err := js.Consumer(ctx, naming.TopicStream(placed.Name), naming.Durable(serviceName, consumerName))
	if err != nil {
		return err.Error()
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("delivered %d, ack floor %d, ack pending %d, redelivered %d, waiting pulls %d, pending %d",
		ci.Delivered.Consumer, ci.AckFloor.Consumer, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting, ci.NumPending)
}

// ---- Ferry ----

type ferryInstance struct {
	host    *ferry.Host
	client  *ferry.Client
	consume bool
}

// startFerry hosts a service that subscribes to the topic with
// concurrency 64 (consume) or only declares that it publishes it.
func startFerry(ctx context.Context, dir string, mode syncMode, consume bool, s *sink) (instance, error) {
	cfg := hostConfig(dir, mode)
	svc, err := ferry.New(serviceName, "1.0.0", ferry.WithConfig(cfg), ferry.WithLogger(logger()), ferry.WithoutHTTP())
	if err != nil {
		return nil, err
	}
	if consume {
		ferry.Subscribe(svc, placed, consumerName, func(_ context.Context, _ *OrderPlaced) error {
			s.handled()
			return nil
		}, ferry.SubscribeConcurrency(concurrency))
	} else {
		ferry.NewPublisher(svc, placed)
	}
	h, err := startHost(ctx, cfg, svc)
	if err != nil {
		return nil, err
	}
	return &ferryInstance{host: h, client: ferry.NewClient(h.NATS()), consume: consume}, nil
}

func (f *ferryInstance) publish(ctx context.Context, events []*OrderPlaced, batchSize int) error {
	for i := 0; i < len(events); i += batchSize {
		if _, err := placed.PublishBatch(ctx, f.client, events[i:min(i+batchSize, len(events))]); err != nil {
			return err
		}
	}
	return nil
}

func (f *ferryInstance) state(ctx context.Context) (int, int, uint64, error) {
	return stateOf(ctx, f.host.NATS(), f.consume)
}

func (f *ferryInstance) conn() *nats.Conn { return f.host.NATS() }

func (f *ferryInstance) close(ctx context.Context) error { return f.host.Shutdown(ctx) }

// ---- raw nats.go jetstream ----

// rawInstance is the reference: the same broker (a ferry.Host with one
// service and no subscription, so only the broker and its in-process
// connection are Ferry's), the same stream and consumer configuration,
// and the work a careful jetstream program does per event: publish JSON
// with a message ID; pull with 64 workers, json.Unmarshal, Ack.
type rawInstance struct {
	host    *ferry.Host
	js      jetstream.JetStream
	iter    jetstream.MessagesContext
	workers sync.WaitGroup
	consume bool
	failed  atomic.Pointer[error]
	// iterDone closes when the consumer stops (close).
	iterDone chan struct{}
}

// rawStreamConfig is Ferry's topic stream (streams.go, streamConfig) with
// the defaults a host applies: 1 GiB, one replica, 1 MiB messages.
func rawStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        naming.TopicStream(placed.Name),
		Description: "Ferry topic " + placed.Name,
		Subjects:    []string{placed.Subject, naming.ReplayWildcard(placed.Name)},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    ferry.DefaultTopicMaxBytes,
		MaxMsgSize:  int32(ferry.DefaultMaxBody),
		Replicas:    1,
		Duplicates:  2 * time.Minute,
	}
}

// rawDeadLetterConfig is Ferry's dead-letter stream, which a host
// creates as soon as a service subscribes: created here too so both
// brokers hold the same streams.
func rawDeadLetterConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       naming.DeadLetterStream,
		Subjects:   []string{naming.DeadLetterPrefix + ".>"},
		Retention:  jetstream.LimitsPolicy,
		Storage:    jetstream.FileStorage,
		Discard:    jetstream.DiscardNew,
		MaxBytes:   ferry.DefaultTopicMaxBytes,
		MaxMsgSize: int32(ferry.DefaultMaxBody) + 4096,
		Replicas:   1,
		Duplicates: 2 * time.Minute,
	}
}

// rawConsumerConfig is the consumer Ferry's Subscribe creates with
// SubscribeConcurrency(64) and the other defaults (consume.go,
// consumerConfig).
func rawConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        naming.Durable(serviceName, consumerName),
		FilterSubjects: []string{placed.Subject, naming.ReplaySubject(placed.Name, serviceName, consumerName)},
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        ferry.DefaultAckWait,
		MaxDeliver:     ferry.DefaultMaxDeliveries + 2,
		MaxAckPending:  max(ferry.DefaultMaxAckPending, 4*concurrency),
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
}

func startRaw(ctx context.Context, dir string, mode syncMode, consume bool, s *sink) (instance, error) {
	cfg := hostConfig(dir, mode)
	// A service with nothing but WithNATS: the host starts its broker
	// and, as for Ferry's service, a discovery responder.
	svc, err := ferry.New(serviceName, "1.0.0", ferry.WithConfig(cfg), ferry.WithLogger(logger()), ferry.WithoutHTTP(), ferry.WithNATS())
	if err != nil {
		return nil, err
	}
	h, err := startHost(ctx, cfg, svc)
	if err != nil {
		return nil, err
	}
	r := &rawInstance{host: h, consume: consume, iterDone: make(chan struct{})}
	fail := func(err error) (instance, error) {
		_ = h.Shutdown(context.Background())
		return nil, err
	}
	if r.js, err = jetstream.New(h.NATS()); err != nil {
		return fail(err)
	}
	if _, err := r.js.CreateOrUpdateStream(ctx, rawStreamConfig()); err != nil {
		return fail(err)
	}
	if !consume {
		return r, nil
	}
	if _, err := r.js.CreateOrUpdateStream(ctx, rawDeadLetterConfig()); err != nil {
		return fail(err)
	}
	cons, err := r.js.CreateOrUpdateConsumer(ctx, naming.TopicStream(placed.Name), rawConsumerConfig())
	if err != nil {
		return fail(err)
	}
	if r.iter, err = cons.Messages(jetstream.PullMaxMessages(concurrency)); err != nil {
		return fail(err)
	}
	for range concurrency {
		r.workers.Go(func() {
			for {
				msg, err := r.iter.Next()
				if err != nil {
					if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
						return
					}
					time.Sleep(time.Millisecond) // a missed heartbeat: the iterator goes on
					continue
				}
				var e OrderPlaced
				if err := json.Unmarshal(msg.Data(), &e); err != nil {
					err = fmt.Errorf("raw consumer: %w", err)
					r.failed.Store(&err)
					_ = msg.Term()
					continue
				}
				s.handled()
				_ = msg.Ack()
			}
		})
	}
	return r, nil
}

func (r *rawInstance) publish(ctx context.Context, events []*OrderPlaced, batchSize int) error {
	stream := naming.TopicStream(placed.Name)
	futures := make([]jetstream.PubAckFuture, 0, batchSize)
	for i := 0; i < len(events); i += batchSize {
		futures = futures[:0]
		for _, e := range events[i:min(i+batchSize, len(events))] {
			data, err := json.Marshal(e)
			if err != nil {
				return err
			}
			msg := nats.NewMsg(placed.Subject)
			msg.Data = data
			msg.Header.Set(jetstream.MsgIDHeader, nuid.Next())
			f, err := r.js.PublishMsgAsync(msg, jetstream.WithExpectStream(stream))
			if err != nil {
				return err
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

func (r *rawInstance) state(ctx context.Context) (int, int, uint64, error) {
	if p := r.failed.Load(); p != nil {
		return 0, 0, 0, *p
	}
	return stateOf(ctx, r.host.NATS(), r.consume)
}

func (r *rawInstance) conn() *nats.Conn { return r.host.NATS() }

func (r *rawInstance) close(ctx context.Context) error {
	close(r.iterDone)
	if r.iter != nil {
		r.iter.Stop()
	}
	r.workers.Wait()
	return r.host.Shutdown(ctx)
}
