package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Subscription is a durable subscription the subscriptions collector
// reports on.
type Subscription struct {
	Service, Consumer, Topic string
	// Stream and Durable name its JetStream consumer, whose lag is read.
	Stream, Durable string
	// DeadLetterSubject is where its dead letters are stored.
	DeadLetterSubject string
	// Overdue returns how many of its handlers run past their timeout;
	// nil while it has no worker.
	Overdue func() int
}

// SubscriptionsOptions configures NewSubscriptionsCollector.
type SubscriptionsOptions struct {
	// JetStream returns the host's JetStream, or nil while there is none.
	JetStream func() jetstream.JetStream
	// Subscriptions are the host's durable subscriptions.
	Subscriptions []Subscription
	// DeadLetterStream is the stream of dead letters, and
	// DeadLetterFilter the subject filter that counts them per subject.
	DeadLetterStream, DeadLetterFilter string
	// MaxAge is how long a reading of JetStream is used before a scrape
	// reads again (default 1s); Wait is how long a scrape waits for that
	// reading before answering with the previous one (default 500ms);
	// Timeout bounds one reading (default 5s).
	MaxAge, Wait, Timeout time.Duration
}

// reading is what one read of JetStream found.
type reading struct {
	lag      []lag    // per subscription
	dlq      []uint64 // dead letters per subscription
	dlqTotal uint64
	hasDLQ   bool
	// fresh: something was read from JetStream this time; a reading that
	// only kept the previous figures does not make them younger.
	fresh bool
}

type lag struct {
	known               bool
	pending, ackPending uint64
}

// SubscriptionsCollector reports on a host's subscriptions: handlers past
// their timeout (read from the workers at each scrape), consumer lag and
// dead letters (read from JetStream, at most every MaxAge, in the
// background: a scrape waits at most Wait for a reading and otherwise
// answers with the last one, so a slow or absent broker never holds a
// scrape for long).
type SubscriptionsCollector struct {
	opts SubscriptionsOptions
	read func(ctx context.Context) reading

	readings cached[reading]

	// Handles kept between readings, so each costs one request per
	// consumer and one for the dead-letter stream.
	consumers []jetstream.Consumer
	dlqStream jetstream.Stream
}

var (
	overdueDesc = prometheus.NewDesc("ferry_event_handlers_overdue",
		"Event handlers still running past their timeout, holding a slot of their subscription's worker.",
		[]string{LabelService, LabelConsumer, LabelTopic}, nil)
	pendingDesc = prometheus.NewDesc("ferry_consumer_pending_messages",
		"Messages of the topic not yet delivered to the subscription's consumer (JetStream's num_pending).",
		[]string{LabelService, LabelConsumer, LabelTopic}, nil)
	ackPendingDesc = prometheus.NewDesc("ferry_consumer_ack_pending_messages",
		"Messages delivered to the subscription's consumer and not yet acknowledged (JetStream's num_ack_pending).",
		[]string{LabelService, LabelConsumer, LabelTopic}, nil)
	deadLettersDesc = prometheus.NewDesc("ferry_dead_letters",
		"Dead letters of the subscription in the dead-letter stream.",
		[]string{LabelService, LabelConsumer, LabelTopic}, nil)
	dlqDepthDesc = prometheus.NewDesc("ferry_dead_letter_stream_messages",
		"Messages in the dead-letter stream, of every service on the broker.", nil, nil)
	readAgeDesc = prometheus.NewDesc("ferry_jetstream_reading_age_seconds",
		"Age of the consumer and dead-letter figures: time since JetStream was last read successfully.", nil, nil)
)

// NewSubscriptionsCollector returns the collector; register it with
// Metrics.Register.
func NewSubscriptionsCollector(opts SubscriptionsOptions) *SubscriptionsCollector {
	if opts.MaxAge <= 0 {
		opts.MaxAge = time.Second
	}
	if opts.Wait <= 0 {
		opts.Wait = 500 * time.Millisecond
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	c := &SubscriptionsCollector{opts: opts, consumers: make([]jetstream.Consumer, len(opts.Subscriptions))}
	c.read = c.readJetStream
	return c
}

// Describe implements prometheus.Collector.
func (c *SubscriptionsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{overdueDesc, pendingDesc, ackPendingDesc, deadLettersDesc, dlqDepthDesc, readAgeDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *SubscriptionsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.opts.Subscriptions {
		if s.Overdue != nil {
			ch <- prometheus.MustNewConstMetric(overdueDesc, prometheus.GaugeValue, float64(s.Overdue()), s.Service, s.Consumer, s.Topic)
		}
	}
	r, at := c.current()
	if at.IsZero() {
		return
	}
	for i, s := range c.opts.Subscriptions {
		if l := r.lag[i]; l.known {
			ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(l.pending), s.Service, s.Consumer, s.Topic)
			ch <- prometheus.MustNewConstMetric(ackPendingDesc, prometheus.GaugeValue, float64(l.ackPending), s.Service, s.Consumer, s.Topic)
		}
		if r.hasDLQ {
			ch <- prometheus.MustNewConstMetric(deadLettersDesc, prometheus.GaugeValue, float64(r.dlq[i]), s.Service, s.Consumer, s.Topic)
		}
	}
	if r.hasDLQ {
		ch <- prometheus.MustNewConstMetric(dlqDepthDesc, prometheus.GaugeValue, float64(r.dlqTotal))
	}
	ch <- prometheus.MustNewConstMetric(readAgeDesc, prometheus.GaugeValue, time.Since(at).Seconds())
}

// current returns the latest reading and when it was made (zero: none
// yet); see cached.current.
func (c *SubscriptionsCollector) current() (reading, time.Time) {
	return c.readings.current(c.opts.MaxAge, c.opts.Wait, c.opts.Timeout, c.read, func(r reading) bool { return r.fresh })
}

// readJetStream reads each consumer's lag and the dead-letter counts. A
// consumer that cannot be read keeps its previous figures.
func (c *SubscriptionsCollector) readJetStream(ctx context.Context) reading {
	prev := c.readings.previous()
	r := reading{lag: make([]lag, len(c.opts.Subscriptions)), dlq: make([]uint64, len(c.opts.Subscriptions))}
	if prev.lag != nil {
		copy(r.lag, prev.lag)
	}
	var js jetstream.JetStream
	if c.opts.JetStream != nil {
		js = c.opts.JetStream()
	}
	if js == nil {
		return r
	}
	for i, s := range c.opts.Subscriptions {
		info, err := c.consumerInfo(ctx, js, i, s)
		if err != nil {
			continue
		}
		r.lag[i] = lag{known: true, pending: info.NumPending, ackPending: uint64(max(info.NumAckPending, 0))}
		r.fresh = true
	}
	if c.opts.DeadLetterStream == "" {
		return r
	}
	if c.dlqStream == nil {
		st, err := js.Stream(ctx, c.opts.DeadLetterStream)
		if err != nil {
			r.dlq, r.dlqTotal, r.hasDLQ = prev.dlq, prev.dlqTotal, prev.hasDLQ && !errors.Is(err, jetstream.ErrStreamNotFound)
			return r
		}
		c.dlqStream = st
	}
	info, err := c.dlqStream.Info(ctx, jetstream.WithSubjectFilter(c.opts.DeadLetterFilter))
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			c.dlqStream = nil
			return r
		}
		r.dlq, r.dlqTotal, r.hasDLQ = prev.dlq, prev.dlqTotal, prev.hasDLQ
		return r
	}
	r.hasDLQ, r.dlqTotal, r.fresh = true, info.State.Msgs, true
	for i, s := range c.opts.Subscriptions {
		r.dlq[i] = info.State.Subjects[s.DeadLetterSubject]
	}
	return r
}

func (c *SubscriptionsCollector) consumerInfo(ctx context.Context, js jetstream.JetStream, i int, s Subscription) (*jetstream.ConsumerInfo, error) {
	if cons := c.consumers[i]; cons != nil {
		info, err := cons.Info(ctx)
		if err == nil {
			return info, nil
		}
		c.consumers[i] = nil // deleted, or the broker is away: find it again next time
		return nil, err
	}
	cons, err := js.Consumer(ctx, s.Stream, s.Durable)
	if err != nil {
		return nil, err
	}
	c.consumers[i] = cons
	return cons.CachedInfo(), nil
}
