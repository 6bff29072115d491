package metrics

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"

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
}

var _ telemetry.Observer = (*observer)(nil)

type endpointKey struct {
	transport, route, endpoint string
	status                     int
	code                       string
}

type endpointSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

type eventKey struct {
	consumer, topic, result, code string
}

type eventSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer // nil for results the handler did not run to
}

type subKey struct{ consumer, topic string }

type subSeries struct {
	inFlight     prometheus.Gauge
	redeliveries prometheus.Counter
}

// Begin implements telemetry.Observer: an event delivery is in flight
// from Begin to End.
func (ob *observer) Begin(ctx context.Context, o *telemetry.Outcome) context.Context {
	if o.Delivery() {
		ob.sub(o).inFlight.Inc()
	}
	return ctx
}

// End implements telemetry.Observer.
func (ob *observer) End(ctx context.Context, o *telemetry.Outcome) {
	traceID := ""
	if ob.traceID != nil {
		traceID = ob.traceID(ctx)
	}
	if o.Delivery() {
		ob.endEvent(o, traceID)
		if o.Kind == telemetry.KindJob {
			ob.endJob(o, traceID)
		}
		return
	}
	k := endpointKey{o.Transport, o.Route, o.Name, o.Status, o.Code}
	s, ok := ob.endpoints.get(k)
	if !ok {
		s = ob.endpoints.add(k, func() *endpointSeries {
			return &endpointSeries{
				count:    ob.m.requests.WithLabelValues(ob.service, k.transport, k.route, k.endpoint, strconv.Itoa(k.status), k.code),
				duration: ob.m.requestDurations.WithLabelValues(ob.service, k.transport, k.route, k.endpoint, statusClass(k.status)),
			}
		})
	}
	add(s.count, s.duration, o.Duration.Seconds(), traceID)
}

func (ob *observer) endEvent(o *telemetry.Outcome, traceID string) {
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
			}
			return s
		})
	}
	add(s.count, s.duration, o.Duration.Seconds(), traceID)
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

// add counts one unit of work and observes its duration (when d is not
// nil), with the trace ID as exemplar when there is one.
func add(c prometheus.Counter, d prometheus.Observer, seconds float64, traceID string) {
	if traceID == "" {
		c.Inc()
		if d != nil {
			d.Observe(seconds)
		}
		return
	}
	ex := prometheus.Labels{"trace_id": traceID}
	if ea, ok := c.(prometheus.ExemplarAdder); ok {
		ea.AddWithExemplar(1, ex)
	} else {
		c.Inc()
	}
	if d == nil {
		return
	}
	if eo, ok := d.(prometheus.ExemplarObserver); ok {
		eo.ObserveWithExemplar(seconds, ex)
	} else {
		d.Observe(seconds)
	}
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
