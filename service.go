package ferry

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrygo/ferry/internal/health"
	"github.com/ferrygo/ferry/internal/naming"
	"github.com/ferrygo/ferry/internal/telemetry"
)

// Service is one unit of a system: a name and a version, its endpoints
// and subscriptions, its own HTTP API and
// OpenAPI document. Create it with [New], bind handlers with [Handle] (or
// [Get], [Post], …), and run it with [Run] or a [Host], which may host
// several services in one process.
//
// Handlers are bound before the service starts; binding afterwards panics.
// The methods of a started service are safe for concurrent use.
type Service struct {
	name        string
	version     string
	description string
	config      Config
	configSet   bool // given WithConfig; otherwise it takes its host's
	logger      *slog.Logger
	loggerSet   bool   // given WithLogger
	addr        string // "" when the service has no HTTP listener
	addrSet     bool   // given WithAddr or WithoutHTTP
	needsNATS   bool
	middleware  []Middleware
	clientMW    []ClientMiddleware // WithClientMiddleware

	api     huma.API
	mux     *http.ServeMux
	adapter *recordingAdapter
	chain   Handler // the middleware chain, innermost: Request.step
	// observer sees every request and delivery (observe.go); set by the
	// host when it starts the service.
	observer     observerSlot
	testObserver telemetry.Observer // an observer tests add
	limiter      limiter            // the calls it runs (Config.MaxConcurrent)
	auth         serviceAuth
	exposure     exposure // what the listener serves besides endpoints (metrics.go)
	// tracerProvider is WithTracerProvider's, or nil (tracing.go).
	tracerProvider trace.TracerProvider

	mu        sync.Mutex
	endpoints map[string]*boundEndpoint
	started   bool
	listener  net.Addr
	host      *Host // the host it was added to
	rt        serviceRuntime

	messages  *messageSchemas
	published map[string]topicDecl // topics the service publishes, by name
	subs      []subscriber
	jobs      []jobWorker          // the job kinds it runs (HandleJob)
	periodics []*periodic          // their schedules (Periodic)
	enqueues  bool                 // it starts jobs (Accept)
	enqueued  map[string]topicDecl // the job kinds it starts, as AsyncAPI channels
	jobPath   map[string]string    // job resource paths (Accept) → job name
	stores    []*Store             // the buckets it keeps state in (UseBucket)
	calls     callLog              // the endpoints its handlers were seen calling (asyncapicalls.go)
}

// New creates a service named name at version version. The name must match
// ^[A-Za-z0-9_-]+$ and the version must be a semantic version (the NATS
// service protocol's rules, checked here so discovery accepts both).
func New(name, version string, opts ...Option) (*Service, error) {
	if err := naming.CheckServiceName(name); err != nil {
		return nil, fmt.Errorf("ferry: New: %w", err)
	}
	if err := naming.CheckVersion(version); err != nil {
		return nil, fmt.Errorf("ferry: New %s: %w", name, err)
	}
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	s := &Service{
		name:         name,
		version:      version,
		description:  o.description,
		config:       o.config,
		configSet:    o.configSet,
		logger:       o.logger,
		loggerSet:    o.logger != nil,
		addrSet:      o.noHTTP || o.addr != nil,
		middleware:   o.middleware,
		clientMW:     o.clientMiddleware,
		endpoints:    map[string]*boundEndpoint{},
		needsNATS:    o.needsNATS,
		messages:     newMessageSchemas(),
		testObserver: o.testObserver,
		published:    map[string]topicDecl{},
	}
	s.tracerProvider = o.tracerProvider
	if s.logger == nil {
		s.logger = o.config.newLogger(os.Stderr)
	}
	switch {
	case o.noHTTP:
	case o.addr != nil:
		s.addr = *o.addr
	default:
		s.addr = o.config.addr()
	}
	s.auth.opts = o.auth
	s.buildChain()
	s.limiter.max.Store(int64(s.config.maxConcurrent()))
	s.initHTTP(o)
	return s, nil
}

// buildChain composes the service's middleware chain. Recover wraps the
// transport's step itself, so every middleware sees a handler's panic as a
// 500 error; a panic in a middleware is caught by the transport's
// last-resort recovery. The concurrency limit (overload.go) is outermost:
// a call refused as overloaded costs nothing more. Authentication runs
// inside the user's middleware, which sees its refusals as outcomes.
func (s *Service) buildChain() {
	invoke := Recover(s.logger)(func(ctx contextT, req *Request) error { return req.step(ctx) })
	mws := make([]Middleware, 0, len(s.middleware)+2)
	mws = append(append(append(mws, s.limit), s.middleware...), s.authenticate)
	s.chain = chain(invoke, mws...)
}

// inherit gives a service that was given no configuration (or logger) its
// host's, when the host adds it: the address, body limit and call budget,
// and the logger.
func (s *Service) inherit(cfg Config, logger *slog.Logger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.configSet {
		old, oldRead := s.config.maxBody(), s.config.httpReadTimeout()
		s.config = cfg
		if !s.addrSet {
			s.addr = cfg.addr()
		}
		s.adapter.setMaxBody(old, cfg.maxBody())
		s.adapter.setBodyReadTimeout(oldRead, cfg.httpReadTimeout())
		s.limiter.max.Store(int64(cfg.maxConcurrent()))
		s.resetAuth()
		s.documentEndpoints()
	}
	if !s.loggerSet && !s.configSet {
		s.logger = logger
		s.buildChain()
	}
}

// serviceRuntime is what a started host gives a service: its client, and
// JetStream with the service's state bucket when it has subscriptions.
type serviceRuntime struct {
	client     *Client
	js         jetstream.JetStream
	state      jetstream.KeyValue
	retryScale float64 // the host's WithRetryScale; 0 means 1
	health     *health.Registry
}

func (s *Service) runtime() serviceRuntime {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rt
}

func (s *Service) setRuntime(rt serviceRuntime) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rt = rt
}

// MustNew is like [New] but panics on error, for package-level services in
// examples and tests.
func MustNew(name, version string, opts ...Option) *Service {
	s, err := New(name, version, opts...)
	if err != nil {
		panic(err)
	}
	return s
}

// Name returns the service's name.
func (s *Service) Name() string { return s.name }

// Version returns the service's version.
func (s *Service) Version() string { return s.version }

// Logger returns the service's logger.
func (s *Service) Logger() *slog.Logger { return s.logger }

// API returns the service's Huma API, for what Ferry does not wrap:
// registering Huma operations directly, reading the OpenAPI document.
// Operations registered this way are served over HTTP only and bypass
// Ferry's middleware.
func (s *Service) API() huma.API { return s.api }

// Handler returns the service's HTTP handler: its endpoints, /openapi.json,
// /openapi.yaml and /docs, with problem details for unknown routes, and
// CORS when Config.CORSOrigins allows browsers of other origins. Use it
// with httptest or to mount the service in another server.
func (s *Service) Handler() http.Handler { return s.cors(http.HandlerFunc(s.serveHTTP)) }

// Addr returns the address the service's HTTP server listens on once its
// host has started it, or nil.
func (s *Service) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listener
}

// Client returns the client that calls other services over the host's
// broker connection, or nil before the host starts or when it has no
// broker.
func (s *Service) Client() *Client {
	return s.runtime().client
}

// Endpoints returns the names of the bound endpoints, sorted.
func (s *Service) Endpoints() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.endpoints))
	for n := range s.endpoints {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// boundEndpoints returns the bound endpoints, sorted by name.
func (s *Service) boundEndpoints() []*boundEndpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*boundEndpoint, 0, len(s.endpoints))
	for _, ep := range s.endpoints {
		out = append(out, ep)
	}
	slices.SortFunc(out, func(a, b *boundEndpoint) int { return strings.Compare(a.name, b.name) })
	return out
}

// declareTopic records that the service publishes a topic.
func (s *Service) declareTopic(d topicDecl) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		panic(fmt.Sprintf("ferry: topic %s on service %s: %v", d.name, s.name, errAlreadyStarted))
	}
	if prev, ok := s.published[d.name]; ok && !prev.sameStream(d) {
		panic(fmt.Sprintf("ferry: topic %s declared twice on service %s with different settings", d.name, s.name))
	}
	s.published[d.name] = d
	s.messages.schema(d)
}

// addSubscription records a subscription.
func (s *Service) addSubscription(sub subscriber, d topicDecl) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		panic(fmt.Sprintf("ferry: Subscribe %s to %s: %v", s.name, d.name, errAlreadyStarted))
	}
	for _, other := range s.subs {
		if other.consumerName() == sub.consumerName() {
			panic(fmt.Sprintf("ferry: Subscribe %s to %s: consumer name %q already used by this service", s.name, d.name, sub.consumerName()))
		}
	}
	s.subs = append(s.subs, sub)
}

// addJob records a job kind the service runs.
func (s *Service) addJob(j jobWorker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		panic(fmt.Sprintf("ferry: HandleJob %s on service %s: %v", j.jobName(), s.name, errAlreadyStarted))
	}
	for _, other := range s.jobs {
		if other.jobName() == j.jobName() {
			panic(fmt.Sprintf("ferry: HandleJob %s on service %s: the job is already bound on this service", j.jobName(), s.name))
		}
	}
	s.jobs = append(s.jobs, j)
}

// jobNames lists the job kinds the service runs, comma-separated.
func (s *Service) jobNames() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, len(s.jobs))
	for i, j := range s.jobs {
		names[i] = j.jobName()
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}

// usesEvents reports whether the service publishes, subscribes or runs
// jobs: whether it needs JetStream.
func (s *Service) usesEvents() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.published) > 0 || len(s.subs) > 0 || len(s.jobs) > 0 || s.enqueues || len(s.stores) > 0
}

// bucketStores returns the stores of the buckets the service declared.
func (s *Service) bucketStores() []*Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.stores)
}

// acceptJobs records that the service starts jobs of the kind d
// describes: it needs the broker, and its AsyncAPI document lists them.
func (s *Service) acceptJobs(d topicDecl) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enqueues = true
	if s.enqueued == nil {
		s.enqueued = map[string]topicDecl{}
	}
	s.enqueued[d.name] = d
}

// jobPaths returns the job served under path, if any, and records job
// there if none is.
func (s *Service) jobPaths(path, job string) (prev string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.jobPath[path]; ok {
		return prev, true
	}
	if s.jobPath == nil {
		s.jobPath = map[string]string{}
	}
	s.jobPath[path] = job
	return "", false
}

// errAlreadyStarted reports binding or hosting a service twice.
var errAlreadyStarted = errors.New("service already started")

// markStarted records that a host is starting the service; later bindings
// panic. A start that fails unmarks it, so the service can be started
// again.
func (s *Service) markStarted() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return fmt.Errorf("ferry: service %s: %w", s.name, errAlreadyStarted)
	}
	s.started = true
	return nil
}

// hosted reports whether a host has the service.
func (s *Service) hosted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.host != nil || s.started
}

// adopt records that h hosts the service; a service has one host.
func (s *Service) adopt(h *Host) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.host != nil || s.started {
		return fmt.Errorf("ferry: Host.Add: service %s already belongs to a host", s.name)
	}
	s.host = h
	s.rt.health = &h.health
	return nil
}

func (s *Service) unmarkStarted() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started = false
}
