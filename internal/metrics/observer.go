package metrics

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrygo/ferry/internal/telemetry"
)

// Observer returns the observer of one service: it counts and times each
// endpoint request and event delivery the service settles, and keeps its
// in-flight event handlers. Each label set's series are resolved on first
// use and then found without a lock or an allocation. With exemplars (a
// traced service), Config.TraceID is asked for each one's trace ID.
func (m *Metrics) Observer(service string, exemplars bool) telemetry.Observer {
	ob := &observer{m: m, service: service}
	if exemplars {
		ob.traceID = m.traceID
	}
	return ob
}

type observer struct {
	m       *Metrics
	service string
	traceID func(context.Context) string // nil: no exemplars

	endpoints cowMap[endpointKey, *endpointSeries]
	events    cowMap[eventKey, *eventSeries]
	subs      cowMap[subKey, *subSeries]
	jobs      cowMap[string, *jobSeries] // by job kind
	steps     cowMap[stepKey, *stepSeries]
}

type stepKey struct{ workflow, step string }

type stepSeries struct {
	handled, retried prometheus.Counter
	duration         prometheus.Observer
}

// endStep counts one attempt of a workflow step and times it.
func (ob *observer) endStep(o *telemetry.Outcome) {
	k := stepKey{o.Name, stepLabel(o.Route)}
	s, ok := ob.steps.get(k)
	if !ok {
		s = ob.steps.add(k, func() *stepSeries {
			return &stepSeries{
				handled:  ob.m.steps.WithLabelValues(ob.service, k.workflow, k.step, telemetry.Handled),
				retried:  ob.m.steps.WithLabelValues(ob.service, k.workflow, k.step, telemetry.Retried),
				duration: ob.m.stepDurations.WithLabelValues(ob.service, k.workflow, k.step),
			}
		})
	}
	if o.Result == telemetry.Handled {
		s.handled.Inc()
	} else {
		s.retried.Inc()
	}
	s.duration.Observe(o.Duration.Seconds())
}

// stepLabel is a step's label: its name, the steps of a fan-out
// ("NAME[i]", up to 10,000 of them) sharing one, "NAME[*]".
func stepLabel(step string) string {
	if !strings.HasSuffix(step, "]") {
		return step
	}
	open := strings.LastIndexByte(step, '[')
	if open < 0 || open == len(step)-2 || strings.Trim(step[open+1:len(step)-1], "0123456789") != "" {
		return step
	}
	return step[:open] + "[*]"
}

var _ telemetry.Observer = (*observer)(nil)

type endpointKey struct {
	transport, route, endpoint string
	status                     int
	code                       string
}

type endpointSeries struct {
	count     prometheus.Counter
	duration  prometheus.Observer
	exemplars exemplarClock
}

type eventKey struct {
	consumer, topic, result, code string
}

type eventSeries struct {
	count     prometheus.Counter
	duration  prometheus.Observer // nil for results the handler did not run to
	exemplars exemplarClock
}

type subKey struct{ consumer, topic string }

type subSeries struct {
	inFlight     prometheus.Gauge
	redeliveries prometheus.Counter
}

// Begin implements telemetry.Observer: an event delivery is in flight
// from Begin to End.
func (ob *observer) Begin(ctx context.Context, o *telemetry.Outcome) context.Context {
	if o.Kind == telemetry.KindStep {
		return ctx
	}
	if o.Delivery() {
		ob.sub(o).inFlight.Inc()
	}
	return ctx
}

// End implements telemetry.Observer.
func (ob *observer) End(ctx context.Context, o *telemetry.Outcome) {
	if o.Kind == telemetry.KindStep {
		ob.endStep(o)
		return
	}
	if o.Delivery() {
		ob.endEvent(ctx, o)
		if o.Kind == telemetry.KindJob {
			ob.endJob(o)
		}
		return
	}
	k := endpointKey{o.Transport, o.Route, o.Name, o.Status, o.Code}
	s, ok := ob.endpoints.get(k)
	if !ok {
		s = ob.endpoints.add(k, func() *endpointSeries {
			return &endpointSeries{
				count:     ob.m.requests.WithLabelValues(ob.service, k.transport, k.route, k.endpoint, strconv.Itoa(k.status), k.code),
				duration:  ob.m.requestDurations.WithLabelValues(ob.service, k.transport, k.route, k.endpoint, statusClass(k.status)),
				exemplars: newExemplarClock(RequestBuckets),
			}
		})
	}
	ob.add(ctx, o, s.count, s.duration, &s.exemplars)
}

func (ob *observer) endEvent(ctx context.Context, o *telemetry.Outcome) {
	sub := ob.sub(o)
	sub.inFlight.Dec()
	if o.Attempt > 1 {
		sub.redeliveries.Inc()
	}
	k := eventKey{o.Name, o.Topic, o.Result, o.Code}
	s, ok := ob.events.get(k)
	if !ok {
		s = ob.events.add(k, func() *eventSeries {
			s := &eventSeries{count: ob.m.deliveries.WithLabelValues(ob.service, k.consumer, k.topic, k.result, k.code)}
			switch k.result {
			case telemetry.Handled, telemetry.Retried, telemetry.DeadLettered, telemetry.DeadLetterFailed:
				s.duration = ob.m.handlerDurations.WithLabelValues(ob.service, k.consumer, k.topic, k.result)
				s.exemplars = newExemplarClock(HandlerBuckets)
			default:
				s.exemplars = newExemplarClock(nil)
			}
			return s
		})
	}
	ob.add(ctx, o, s.count, s.duration, &s.exemplars)
}

// sub returns the series of a delivery's subscription.
func (ob *observer) sub(o *telemetry.Outcome) *subSeries {
	k := subKey{o.Name, o.Topic}
	if s, ok := ob.subs.get(k); ok {
		return s
	}
	return ob.subs.add(k, func() *subSeries {
		return &subSeries{
			inFlight:     ob.m.handlersInFlight.WithLabelValues(ob.service, k.consumer, k.topic),
			redeliveries: ob.m.redeliveries.WithLabelValues(ob.service, k.consumer, k.topic),
		}
	})
}

// add counts the unit of work o and observes its duration (when d is not
// nil), with the trace ID of ctx as exemplar when the service is traced,
// the work has a sampled trace and the counter or the histogram bucket
// is due for one (ex).
func (ob *observer) add(ctx context.Context, o *telemetry.Outcome, c prometheus.Counter, d prometheus.Observer, ex *exemplarClock) {
	seconds := o.Duration.Seconds()
	var exCount, exBucket bool
	var labels prometheus.Labels
	if ob.traceID != nil {
		now, bucket := o.Start.UnixNano()+int64(o.Duration), 0
		exCount = ex.due(0, now)
		if d != nil {
			bucket = ex.bucket(seconds)
			exBucket = ex.due(bucket, now)
		}
		if exCount || exBucket {
			if id := ob.traceID(ctx); id != "" {
				labels = prometheus.Labels{"trace_id": id}
				exCount = exCount && ex.take(0, now)
				exBucket = exBucket && ex.take(bucket, now)
			}
		}
	}
	if ea, ok := c.(prometheus.ExemplarAdder); ok && exCount && labels != nil {
		ea.AddWithExemplar(1, labels)
	} else {
		c.Inc()
	}
	if d == nil {
		return
	}
	if eo, ok := d.(prometheus.ExemplarObserver); ok && exBucket && labels != nil {
		eo.ObserveWithExemplar(seconds, labels)
	} else {
		d.Observe(seconds)
	}
}

// ExemplarInterval is how often at most a series' counter, and each
// bucket of its histogram, takes a new exemplar: an exposition shows only
// the latest of each, and making one (a trace ID string, labels, a
// timestamp) costs more than the observation itself.
const ExemplarInterval = time.Second

// exemplarClock keeps when a series' counter (slot 0) and each bucket of
// its histogram (slots 1…, the last for +Inf) last took an exemplar, in
// Unix nanoseconds.
type exemplarClock struct {
	buckets []float64
	last    []atomic.Int64
}

func newExemplarClock(buckets []float64) exemplarClock {
	return exemplarClock{buckets: buckets, last: make([]atomic.Int64, len(buckets)+2)}
}

// bucket returns the slot of the bucket v falls in.
func (c *exemplarClock) bucket(v float64) int {
	return 1 + sort.SearchFloat64s(c.buckets, v)
}

// due reports whether slot i takes an exemplar at now (Unix
// nanoseconds): once per ExemplarInterval, the first at once (and at once
// too after the wall clock stepped back).
func (c *exemplarClock) due(i int, now int64) bool {
	last := c.last[i].Load()
	d := now - last
	return last == 0 || d < 0 || d >= int64(ExemplarInterval)
}

// take records that slot i took an exemplar at now, unless another
// observation took it first.
func (c *exemplarClock) take(i int, now int64) bool {
	last := c.last[i].Load()
	if d := now - last; last != 0 && d >= 0 && d < int64(ExemplarInterval) {
		return false
	}
	return c.last[i].CompareAndSwap(last, now)
}

// statusClass is the class label of a status: "2xx", "4xx", …
func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status/100) + "xx"
}

// cowMap is a map read without a lock and copied on write: for label sets,
// which are few and found again and again.
type cowMap[K comparable, V any] struct {
	p  atomic.Pointer[map[K]V]
	mu sync.Mutex
}

func (c *cowMap[K, V]) get(k K) (V, bool) {
	if m := c.p.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// add returns the value of k, made by mk unless another goroutine added
// it first.
func (c *cowMap[K, V]) add(k K, mk func() V) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.p.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	n := make(map[K]V, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			n[k] = v
		}
	}
	v := mk()
	n[k] = v
	c.p.Store(&n)
	return v
}

func lenOf[K comparable, V any](m *map[K]V) int {
	if m == nil {
		return 0
	}
	return len(*m)
}
