// Package metrics is Ferry's Prometheus instrumentation, on the official
// client library: one registry per host, fed by a telemetry.Observer per
// service (every HTTP request, NATS call and event delivery, including
// those that never reach the middleware chain), collectors read at scrape
// time (the durable workers' overdue handlers, consumer lag and
// dead-letter depth from JetStream), and the Go runtime and process
// collectors. docs/observability.md lists the metrics.
//
// Label values are bounded by what the program declares, never by its
// input: HTTP requests are labelled by the matched route pattern (all
// requests no route matched share "unmatched"), NATS calls by the endpoint
// name (a call reaches only a subscribed endpoint), events by consumer and
// topic. The hot path does no formatting: each label set's series are
// resolved once and kept in a copy-on-write map read without a lock.
package metrics

import (
	"context"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Config configures a host's metrics.
type Config struct {
	// TraceID returns the ID of the trace the work of ctx belongs to, or
	// "" when it has none; when it returns one, the request's counter and
	// latency observation carry it as an exemplar (trace_id), shown in
	// the OpenMetrics exposition. It is asked only by the observers of
	// traced services (Observer's exemplars); nil: no exemplars. It is
	// called on the hot path and must be quick.
	TraceID func(ctx context.Context) string
}

// Buckets of the latency histograms, in seconds.
var (
	// RequestBuckets suit API calls: from half a millisecond to 10 s.
	RequestBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	// HandlerBuckets suit event handlers, which may run for minutes.
	HandlerBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}
	// JobBuckets suit job runs, which may run for an hour.
	JobBuckets = []float64{0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600}
)

// Label names.
const (
	LabelService   = "service"
	LabelTransport = "transport"
	LabelRoute     = "route"
	LabelEndpoint  = "endpoint"
	LabelStatus    = "status"
	LabelClass     = "class"
	LabelCode      = "code"
	LabelConsumer  = "consumer"
	LabelTopic     = "topic"
	LabelResult    = "result"
	LabelState     = "state"
	LabelJob       = "job"
	LabelWorkflow  = "workflow"
	LabelStep      = "step"
)

// Metrics is one host's registry and the vectors its observers feed. It
// is safe for concurrent use.
type Metrics struct {
	reg     *prometheus.Registry
	traceID func(context.Context) string

	requests         *prometheus.CounterVec
	requestDurations *prometheus.HistogramVec
	deliveries       *prometheus.CounterVec
	redeliveries     *prometheus.CounterVec
	handlerDurations *prometheus.HistogramVec
	handlersInFlight *prometheus.GaugeVec
	jobsFinished     *prometheus.CounterVec
	jobRunDurations  *prometheus.HistogramVec
	steps            *prometheus.CounterVec
	stepDurations    *prometheus.HistogramVec

	all http.Handler
}

// New returns a host's metrics: a fresh registry with Ferry's request and
// event metrics and the Go runtime and process collectors.
func New(cfg Config) *Metrics {
	m := &Metrics{
		reg:     prometheus.NewRegistry(),
		traceID: cfg.TraceID,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_requests_total",
			Help: "Endpoint requests (HTTP) and calls (NATS) answered, by route, endpoint, status and problem code.",
		}, []string{LabelService, LabelTransport, LabelRoute, LabelEndpoint, LabelStatus, LabelCode}),
		requestDurations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_request_duration_seconds",
			Help:    "Time from a request's arrival to its answer, by route, endpoint and status class.",
			Buckets: RequestBuckets,
		}, []string{LabelService, LabelTransport, LabelRoute, LabelEndpoint, LabelClass}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_event_deliveries_total",
			Help: "Event deliveries settled, by subscription, result (handled, retried, dead_lettered, skipped, handed_back, deferred, dead_letter_failed) and problem code.",
		}, []string{LabelService, LabelConsumer, LabelTopic, LabelResult, LabelCode}),
		redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_event_redeliveries_total",
			Help: "Event deliveries settled that were not the first attempt.",
		}, []string{LabelService, LabelConsumer, LabelTopic}),
		handlerDurations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_event_handler_duration_seconds",
			Help:    "Time from a delivery's arrival to its settlement, for deliveries handled, retried or dead-lettered.",
			Buckets: HandlerBuckets,
		}, []string{LabelService, LabelConsumer, LabelTopic, LabelResult}),
		handlersInFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_event_handlers_in_flight",
			Help: "Event deliveries being handled.",
		}, []string{LabelService, LabelConsumer, LabelTopic}),
		jobsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_jobs_finished_total",
			Help: "Job runs that ended their job, by the job's final state (succeeded, failed, cancelled); a failed run that runs again is not counted.",
		}, []string{LabelService, LabelJob, LabelState}),
		jobRunDurations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_job_run_duration_seconds",
			Help:    "Time from a job run's start to its settlement, for every run of the handler (succeeded, failed, retried, cancelled).",
			Buckets: JobBuckets,
		}, []string{LabelService, LabelJob}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_workflow_steps_total",
			Help: "Attempts of workflow steps run (not replayed), by workflow, step (a fan-out's steps as NAME[*]) and result (handled: the step completed; retried: the attempt failed).",
		}, []string{LabelService, LabelWorkflow, LabelStep, LabelResult}),
		stepDurations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_workflow_step_duration_seconds",
			Help:    "Time of each attempt of a workflow step run (not replayed).",
			Buckets: JobBuckets,
		}, []string{LabelService, LabelWorkflow, LabelStep}),
	}
	m.reg.MustRegister(m.requests, m.requestDurations, m.deliveries, m.redeliveries, m.handlerDurations, m.handlersInFlight,
		m.jobsFinished, m.jobRunDurations, m.steps, m.stepDurations,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.all = handlerFor(m.reg)
	return m
}

// Register adds a collector to the registry.
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }

// Gatherer returns the registry, for tests and other exporters.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Handler serves every metric of the host in the Prometheus text format,
// or OpenMetrics (with exemplars) when the scraper asks for it.
func (m *Metrics) Handler() http.Handler { return m.all }

// ServiceHandler serves the metrics of one service: the series labelled
// with its name, and those of the process (runtime, dead-letter stream),
// which carry no service label. So each of several services on their own
// listeners can be scraped without counting another's requests twice.
func (m *Metrics) ServiceHandler(service string) http.Handler {
	return handlerFor(serviceGatherer{m.reg, service})
}

func handlerFor(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		ErrorHandling:     promhttp.ContinueOnError,
	})
}

// serviceGatherer keeps the series of one service and those without a
// service label.
type serviceGatherer struct {
	g       prometheus.Gatherer
	service string
}

func (s serviceGatherer) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := s.g.Gather() // fresh values each time: filtered in place
	out := mfs[:0]
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "ferry_") {
			out = append(out, mf)
			continue
		}
		kept := mf.Metric[:0]
		for _, mt := range mf.Metric {
			if v, labelled := labelValue(mt, LabelService); !labelled || v == s.service {
				kept = append(kept, mt)
			}
		}
		if len(kept) > 0 {
			mf.Metric = kept
			out = append(out, mf)
		}
	}
	return out, err
}

func labelValue(m *dto.Metric, name string) (string, bool) {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue(), true
		}
	}
	return "", false
}
