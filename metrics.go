package ferry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrygo/ferry/internal/latency"
	"github.com/ferrygo/ferry/internal/metrics"
	"github.com/ferrygo/ferry/internal/naming"
	"github.com/ferrygo/ferry/internal/telemetry"
)

// Metrics: a host keeps one Prometheus registry (internal/metrics), fed
// by an observer on each service, and each service exposed over NATS
// keeps the latency of its endpoints over the last minute for $SRV.STATS
// (internal/latency). Both are on unless Config.Metrics is "off". The
// registry is served at /metrics on each service's listener (its own
// series and the process's), or on the admin listener (admin.go) when
// Config.AdminAddr is set. docs/observability.md lists the metrics.

// MetricsPath is where a service's listener, or the admin listener,
// serves the Prometheus metrics.
const MetricsPath = "/metrics"

// Values of Config.Docs and Config.Metrics.
const (
	docsPublic = "public"
	docsAdmin  = "admin"
	docsOff    = "off"
	metricsOff = "off"
)

func (c Config) docs() string {
	if c.Docs == "" {
		return docsPublic
	}
	return c.Docs
}

func (c Config) metricsOn() bool { return c.Metrics != metricsOff }

// checkExposure checks the admin, docs and metrics settings.
func (c Config) checkExposure() error {
	switch {
	case c.Docs != "" && c.Docs != docsPublic && c.Docs != docsAdmin && c.Docs != docsOff:
		return fmt.Errorf("ferry: Config.Docs %q: must be public, admin or off (flag -docs, env FERRY_DOCS)", c.Docs)
	case c.Metrics != "" && c.Metrics != "on" && c.Metrics != metricsOff:
		return fmt.Errorf("ferry: Config.Metrics %q: must be on or off (flag -metrics, env FERRY_METRICS)", c.Metrics)
	case c.Docs == docsAdmin && c.AdminAddr == "":
		return errors.New("ferry: Config.Docs is admin but there is no admin listener: set FERRY_ADMIN_ADDR (flag -admin-addr) too")
	}
	return nil
}

// hostMetrics is what a started host measures with: a registry, and the
// latency windows of each service that serves endpoints over NATS.
type hostMetrics struct {
	prom    *metrics.Metrics
	latency map[string]*latency.Endpoints // by service; read-only once built
	scrape  map[string]http.Handler       // each service's /metrics; read-only once built
}

// exemplarTraceID is how exemplars get their trace ID: the ID of the
// sampled trace a context carries (tracing.go), "" without one. Only the
// observers of traced services ask it, so tracing off costs nothing.
func exemplarTraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !sc.IsSampled() {
		return ""
	}
	return sc.TraceID().String()
}

// startMetrics builds the metrics of a host that is starting, or returns
// nil when they are off.
func (h *Host) startMetrics() *hostMetrics {
	if !h.config.metricsOn() {
		h.metrics.Store(nil)
		return nil
	}
	hm := &hostMetrics{
		prom:    metrics.New(metrics.Config{TraceID: exemplarTraceID}),
		latency: map[string]*latency.Endpoints{},
		scrape:  map[string]http.Handler{},
	}
	var subs []metrics.Subscription
	var kinds []metrics.JobKind
	for _, s := range h.services {
		for _, j := range s.jobs {
			name := j.jobName()
			kinds = append(kinds, metrics.JobKind{Service: s.name, Queue: jobQueue(name)})
		}
		hm.scrape[s.name] = hm.prom.ServiceHandler(s.name)
		if s.needsNATS {
			var names []string
			for _, ep := range s.boundEndpoints() {
				if !ep.httpOnly {
					names = append(names, ep.name)
				}
			}
			hm.latency[s.name] = latency.NewEndpoints(names)
		}
		for _, sub := range s.subs {
			topic, consumer := sub.decl().name, sub.consumerName()
			ms := metrics.Subscription{
				Service: s.name, Consumer: consumer, Topic: topic,
				Stream: naming.TopicStream(topic), Durable: naming.Durable(s.name, consumer),
				DeadLetterSubject: naming.DeadLetterSubject(topic, s.name, consumer),
			}
			if o, ok := sub.(interface{ overdue() int }); ok {
				ms.Overdue = o.overdue
			}
			subs = append(subs, ms)
		}
	}
	if len(subs) > 0 {
		err := hm.prom.Register(metrics.NewSubscriptionsCollector(metrics.SubscriptionsOptions{
			JetStream:        h.jetStream,
			Subscriptions:    subs,
			DeadLetterStream: naming.DeadLetterStream,
			DeadLetterFilter: naming.DeadLetterPrefix + ".>",
		}))
		if err != nil { // two subscriptions of one name: refused when declared
			h.logger.Warn("ferry: subscription metrics not registered", slog.String("err", err.Error()))
		}
	}
	if len(kinds) > 0 {
		if err := hm.prom.Register(metrics.NewJobsCollector(metrics.JobsOptions{JetStream: h.jetStream, Kinds: kinds})); err != nil {
			h.logger.Warn("ferry: job metrics not registered", slog.String("err", err.Error()))
		}
	}
	h.metrics.Store(hm)
	return hm
}

// jetStream returns JetStream on the host's broker connection, or nil.
func (h *Host) jetStream() jetstream.JetStream {
	b := h.broker.Load()
	if b == nil {
		return nil
	}
	js, err := jetstream.New(b.Conn())
	if err != nil {
		return nil
	}
	return js
}

// observer returns the metrics observer of service s, with exemplars
// when it is traced; nil when metrics are off.
func (hm *hostMetrics) observer(s *Service, traced bool) telemetry.Observer {
	if hm == nil {
		return nil
	}
	return &serviceMetrics{prom: hm.prom.Observer(s.name, traced), latency: hm.latency[s.name]}
}

// serviceMetrics feeds a service's outcomes to the registry and to its
// latency windows.
type serviceMetrics struct {
	prom    telemetry.Observer
	latency *latency.Endpoints // nil when the service serves nothing over NATS
}

func (m *serviceMetrics) Begin(ctx context.Context, o *telemetry.Outcome) context.Context {
	return m.prom.Begin(ctx, o)
}

func (m *serviceMetrics) End(ctx context.Context, o *telemetry.Outcome) {
	if m.latency != nil && o.Kind == telemetry.KindEndpoint && o.Name != "" {
		m.latency.Record(o.Name, o.Transport, o.Start.Add(o.Duration), o.Duration, o.Status >= http.StatusInternalServerError)
	}
	m.prom.End(ctx, o)
}

// endpointData returns the $SRV.STATS data of service's endpoints: their
// latency and rate over the last minute, per transport; nil when metrics
// are off or the service serves nothing over NATS.
func (h *Host) endpointData(service string) func(endpoint string) any {
	hm := h.metrics.Load()
	if hm == nil || hm.latency[service] == nil {
		return nil
	}
	lat := hm.latency[service]
	return func(endpoint string) any {
		if d := lat.Data(endpoint, time.Now()); d != nil {
			return d
		}
		return nil
	}
}

// exposure is what a service's listener serves besides its endpoints,
// as its host's settings say.
type exposure struct {
	docsHidden atomic.Bool // /docs, /openapi.*, /asyncapi.* answer 404
	metrics    bool        // GET /metrics is registered on the mux; under Service.mu
}

// expose applies the host's settings to service s's listener, before it
// serves: the documents are hidden unless public, and /metrics is served
// unless metrics are off or the admin listener serves them.
func (h *Host) expose(s *Service) {
	s.exposure.docsHidden.Store(h.config.docs() != docsPublic)
	if !h.config.metricsOn() || h.config.AdminAddr != "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exposure.metrics {
		return
	}
	s.exposure.metrics = true
	probe := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: MetricsPath}}
	if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
		h.logger.Warn("ferry: the service serves "+MetricsPath+" itself; Ferry's metrics are not served there (set FERRY_ADMIN_ADDR to serve them on an admin listener)",
			slog.String("service", s.name))
		return
	}
	s.mux.HandleFunc("GET "+MetricsPath, func(w http.ResponseWriter, r *http.Request) {
		if hm := h.metrics.Load(); hm != nil && hm.scrape[s.name] != nil {
			hm.scrape[s.name].ServeHTTP(w, r)
			return
		}
		notFound(w, r)
	})
}

// docsPath reports whether path is one of the documents a service serves.
func docsPath(path string) bool {
	switch path {
	case DocsPath, OpenAPIPath + ".json", OpenAPIPath + ".yaml", OpenAPIPath + "-3.0.json", OpenAPIPath + "-3.0.yaml",
		AsyncAPIPath + ".json", AsyncAPIPath + ".yaml":
		return true
	}
	return len(path) > len(DocsPath) && path[:len(DocsPath)] == DocsPath && path[len(DocsPath)] == '/'
}

// notFound answers 404 problem details.
func notFound(w http.ResponseWriter, r *http.Request) {
	id := incomingRequestID(requestOutcome(r.Context(), w), r.Header.Get(HeaderRequestID))
	writeProblem(w, (&Error{Status: http.StatusNotFound, Detail: "no endpoint at " + r.URL.Path}).complete(id))
}

// overdue implements the subscriptions collector's view of a
// subscription's worker: its handlers past their timeout.
func (s *subscription[T]) overdue() int {
	if w := s.worker; w != nil {
		return w.Overdue()
	}
	return 0
}
