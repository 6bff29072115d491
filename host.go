package ferry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrygo/ferry/internal/broker"
	"github.com/ferrygo/ferry/internal/health"
	"github.com/ferrygo/ferry/internal/lifecycle"
)

// Host runs one or more services in one process: one signal handler, one
// shutdown sequence, one broker connection shared by its services. Each
// service keeps its own HTTP address (or none) and its own OpenAPI
// document.
//
// A host is an ordered list of components (internal/lifecycle): the
// broker, stream provisioning, the services' NATS endpoints, their
// subscriptions, their HTTP listeners. Start starts them in that order;
// Shutdown stops them in reverse, each stopping intake, then draining its
// work in flight, then closing — so a service's NATS endpoints keep
// answering while co-hosted services still drain HTTP requests that call
// them. Run and Shutdown are safe to call twice.
type Host struct {
	config     Config
	logger     *slog.Logger
	retryScale float64 // WithRetryScale; 0 means 1
	// tracerProvider is WithTracerProvider's, or nil (tracing.go).
	tracerProvider trace.TracerProvider

	clientMW []ClientMiddleware // WithClientMiddleware
	// guardListen makes a loopback NATSListen admit only the data
	// directory's NKey (RunSystem's own listener).
	guardListen bool

	mu       sync.Mutex
	services []*Service
	shared   int // services that took the host's address
	group    *lifecycle.Group
	state    hostState
	// While the host starts: cancelStart ends the start, started closes
	// when it returns.
	cancelStart context.CancelFunc
	started     chan struct{}
	// closeCtx is the context of the shutdown under way: the broker closes
	// within it, after the other components closed within their share.
	closeCtx atomic.Pointer[context.Context]
	failed   chan error
	stopOnce sync.Once
	stopErr  error

	broker   atomic.Pointer[broker.Broker]
	health   health.Registry // what /readyz reports
	draining *drainSignal    // fired when the shutdown starts; see Draining

	// Metrics (metrics.go): nil when off; the admin listener's address
	// once open, under mu (admin.go).
	metrics   atomic.Pointer[hostMetrics]
	adminAddr net.Addr
}

type hostState int

const (
	hostNew hostState = iota
	hostStarting
	hostStarted
	hostStopped
)

// NewHost creates a host. It reads [WithConfig] (the process settings:
// broker, data directory, provisioning, shutdown grace, logging, and the
// defaults of services given no configuration of their own) and
// [WithLogger], [WithRetryScale], [WithClientMiddleware] and [WithTracerProvider]; service-only
// options are ignored.
func NewHost(opts ...Option) (*Host, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	h := &Host{config: o.config, logger: o.logger, retryScale: o.retryScale, clientMW: o.clientMiddleware, tracerProvider: o.tracerProvider, failed: make(chan error, 1), draining: newDrainSignal()}
	if h.logger == nil {
		h.logger = o.config.newLogger(os.Stderr)
	}
	return h, nil
}

// Add adds services to the host. A service given no configuration takes
// the host's (its address, body limit and call budget, and its logger);
// when several do, each after the first listens on the next port (8001,
// 8002, … after 8000), so they need no flags of their own. It fails if the
// host has started, if a service belongs to another host (a service has
// one host for its life), or if two services share a name.
func (h *Host) Add(services ...*Service) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != hostNew {
		return errors.New("ferry: Host.Add: host already started")
	}
	names := map[string]bool{}
	for _, s := range h.services {
		names[s.name] = true
	}
	for _, s := range services { // check all before changing any
		switch {
		case s == nil:
			return errors.New("ferry: Host.Add: nil service")
		case names[s.name]:
			return fmt.Errorf("ferry: Host.Add: two services named %q", s.name)
		case s.hosted():
			return fmt.Errorf("ferry: Host.Add: service %s already belongs to a host", s.name)
		}
		names[s.name] = true
	}
	for _, s := range services {
		if err := s.adopt(h); err != nil {
			return err
		}
		s.inherit(h.config, h.logger)
		if !s.configSet && !s.addrSet {
			s.addr = portAfter(s.addr, h.shared)
			h.shared++
		}
		h.services = append(h.services, s)
	}
	return nil
}

// Services returns the hosted services.
func (h *Host) Services() []*Service {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*Service(nil), h.services...)
}

// Start starts every service: it opens all HTTP listeners first, so an
// address in use fails the start before anything serves, then starts the
// host's components in order. It returns once the services accept
// requests over HTTP and NATS. A start that fails stops at once what it
// had started.
func (h *Host) Start(ctx context.Context) error {
	h.mu.Lock()
	if h.state != hostNew {
		h.mu.Unlock()
		return errors.New("ferry: Host.Start: host already started or stopped")
	}
	if len(h.services) == 0 {
		h.mu.Unlock()
		return errors.New("ferry: Host.Start: no services")
	}
	for i, s := range h.services {
		if err := s.markStarted(); err != nil {
			for _, started := range h.services[:i] {
				started.unmarkStarted()
			}
			h.mu.Unlock()
			return err
		}
	}
	// Shutdown may come while the start runs: it cancels the start and
	// waits for it (as long as its own context allows), not for h.mu.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h.state, h.cancelStart, h.started = hostStarting, cancel, make(chan struct{})
	defer close(h.started)
	h.mu.Unlock()

	g, err := h.start(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err != nil:
		for _, s := range h.services {
			s.unmarkStarted()
		}
		if h.state == hostStarting {
			h.state = hostNew
		}
		return err
	case h.state == hostStopped: // Shutdown came during the start
		stopCtx, stop := context.WithTimeout(context.Background(), 0)
		defer stop()
		return errors.Join(errors.New("ferry: Host.Start: shut down while starting"), g.Stop(stopCtx, stopCtx))
	}
	h.group = g
	h.state = hostStarted
	return nil
}

// start opens the listeners and starts the components; see Start.
func (h *Host) start(ctx context.Context) (*lifecycle.Group, error) {
	listeners, err := h.listen(ctx)
	if err != nil {
		return nil, err
	}
	admin, err := h.listenAdmin(ctx)
	if err != nil {
		for _, l := range listeners {
			_ = l.ln.Close()
		}
		return nil, err
	}
	g := lifecycle.New(h.logger)
	g.Add(h.observabilityComponent())
	g.Add(h.authComponent())
	if h.needsBroker() {
		g.Add(h.brokerComponent())
		g.Add(h.provisionComponent())
		var endpoints, subs []lifecycle.Component
		for _, s := range h.services {
			endpoints = append(endpoints, &natsEndpoints{svc: s, host: h})
			for _, sub := range s.subs {
				subs = append(subs, sub)
			}
			for _, j := range s.jobs {
				subs = append(subs, j)
			}
			if p := newPeriodicRunner(s); p != nil {
				subs = append(subs, p)
			}
		}
		g.Add(endpoints...)
		g.Add(subs...)
	}
	var servers []lifecycle.Component
	for _, l := range listeners {
		servers = append(servers, l)
	}
	if admin != nil {
		servers = append(servers, admin)
	}
	g.Add(servers...)
	g.Add(h.readinessComponent()) // stopped first: /readyz turns 503 while all serves
	if err := g.Start(ctx); err != nil {
		for _, l := range listeners {
			_ = l.ln.Close()
		}
		if admin != nil {
			_ = admin.ln.Close()
		}
		return nil, err
	}
	return g, nil
}

// listen opens the HTTP listener of every service that has an address.
// Two services on one fixed address is an error naming both.
func (h *Host) listen(ctx context.Context) ([]*httpServer, error) {
	var out []*httpServer
	closeAll := func() {
		for _, l := range out {
			_ = l.ln.Close()
		}
	}
	var lc net.ListenConfig
	byAddr := map[string]string{}
	for _, s := range h.services {
		if s.addr == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(s.addr); err == nil && port != "0" {
			if other, clash := byAddr[s.addr]; clash {
				closeAll()
				return nil, fmt.Errorf("ferry: services %s and %s both listen on %s: give one its own address (ferry.WithAddr, or port 0 for any)",
					other, s.name, s.addr)
			}
			byAddr[s.addr] = s.name
		}
		ln, err := lc.Listen(ctx, "tcp", s.addr)
		if err != nil {
			closeAll()
			source := "flag -addr, env PORT"
			if s.addrSet {
				source = "ferry.WithAddr"
			}
			return nil, fmt.Errorf("ferry: service %s: listen on %s (%s): %w", s.name, s.addr, source, err)
		}
		s.mu.Lock()
		s.listener = ln.Addr()
		s.mu.Unlock()
		out = append(out, &httpServer{svc: s, ln: ln, failed: h.failed, logger: h.logger, draining: h.draining})
	}
	return out, nil
}

// Run starts the services and blocks until ctx ends, SIGINT or SIGTERM
// arrives, or a server fails; then it shuts down within the grace period.
// It returns nil after a clean shutdown. A second signal during shutdown
// ends the process at once, as Go's default does.
func (h *Host) Run(ctx context.Context) error { return h.run(ctx, nil) }

// run is Run, calling each of started in a goroutine of its own once the
// host has started: the first error shuts the host down and is returned.
// Their context ends when the shutdown begins.
func (h *Host) run(ctx context.Context, started []func(context.Context) error) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := h.Start(ctx); err != nil {
		return err
	}
	hookFailed := make(chan error, 1)
	var hooks sync.WaitGroup
	for _, hook := range started {
		hooks.Go(func() {
			if err := runHook(ctx, hook); err != nil {
				select {
				case hookFailed <- err:
				default: // another failed first
				}
			}
		})
	}
	var runErr error
	select {
	case <-ctx.Done():
		h.logger.Info("ferry: shutting down", slog.Duration("grace", h.config.shutdownGrace()))
	case runErr = <-h.failed:
		h.logger.Error("ferry: shutting down after a failure", slog.String("err", runErr.Error()))
	case runErr = <-hookFailed:
		h.logger.Error("ferry: shutting down after a failure", slog.String("err", runErr.Error()))
	}
	stop()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.config.shutdownGrace())
	defer cancel()
	err := errors.Join(runErr, h.Shutdown(sctx))
	// The hooks' context ended with the shutdown's start: they are waited
	// for within the grace period, not beyond.
	hooksDone := make(chan struct{})
	go func() { hooks.Wait(); close(hooksDone) }()
	select {
	case <-hooksDone:
	default:
		select {
		case <-hooksDone:
		case <-sctx.Done():
			h.logger.Warn("ferry: a Started hook ignored the end of its context; left running")
		}
	}
	return err
}

// runHook calls hook, its panic an error (with the stack logged by the
// caller's error), so a hook's bug stops the system in order instead of
// ending the process.
func runHook(ctx context.Context, hook func(context.Context) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("ferry: a Started hook panicked: %v\n%s", v, debug.Stack())
		}
	}()
	return hook(ctx)
}

// Shutdown stops the components in reverse order of their start: HTTP
// listeners close and their requests finish, subscriptions stop pulling
// and their handlers finish, NATS endpoints stop taking calls and finish
// those in flight, then the broker connection drains and the embedded
// broker stops. Work still running when ctx is nearly over is cancelled
// (its messages handed back for redelivery) and left behind, logged: the
// call returns by ctx's deadline whatever handlers do. Without a deadline
// it waits for them. Only the first call does the work; later calls return
// its result.
func (h *Host) Shutdown(ctx context.Context) error {
	h.stopOnce.Do(func() {
		h.mu.Lock()
		if h.state == hostStarting {
			h.cancelStart()
			started := h.started
			h.state = hostStopped
			h.mu.Unlock()
			select {
			case <-started: // the start stops what it started
			case <-ctx.Done():
				h.stopErr = fmt.Errorf("ferry: shutdown: the start under way did not stop in time: %w", ctx.Err())
			}
			return
		}
		g := h.group
		h.state = hostStopped
		h.mu.Unlock()
		if g == nil {
			return
		}
		// Drains end first, then the components close, then the broker: the
		// last part of the time is kept for cancelling what is left and
		// closing the connection and the embedded broker.
		drainCtx, closeCtx := ctx, ctx
		if deadline, ok := ctx.Deadline(); ok {
			tail := min(time.Until(deadline)/5, time.Second)
			var cancelDrain, cancelClose context.CancelFunc
			drainCtx, cancelDrain = context.WithDeadline(ctx, deadline.Add(-tail))
			defer cancelDrain()
			closeCtx, cancelClose = context.WithDeadline(ctx, deadline.Add(-tail/2))
			defer cancelClose()
		}
		h.closeCtx.Store(&ctx)
		h.stopErr = g.Stop(drainCtx, closeCtx)
		h.logger.Info("ferry: stopped")
	})
	return h.stopErr
}

// Run hosts services in one process until ctx ends or SIGINT/SIGTERM
// arrives, then shuts them down gracefully: the simplest way to run a
// program. The host takes its process settings from the services'
// configurations, which must agree on them, and its logger from the first
// service.
func Run(ctx context.Context, services ...*Service) error {
	if len(services) == 0 {
		return errors.New("ferry: Run: no services")
	}
	var cfg Config
	from := ""
	for _, s := range services {
		if s == nil || !s.configSet {
			continue
		}
		if from == "" {
			cfg, from = s.config, s.name
			continue
		}
		if setting := cfg.processDiff(s.config); setting != "" {
			return fmt.Errorf("ferry: Run: services %s and %s were given different %s; host them with a Host configured once", from, s.name, setting)
		}
	}
	h, err := NewHost(WithConfig(cfg), WithLogger(services[0].logger))
	if err != nil {
		return err
	}
	if err := h.Add(services...); err != nil {
		return err
	}
	return h.Run(ctx)
}

// displayAddr turns a listen address into one a browser can open.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// needsBroker reports whether the host connects to a broker: one is
// configured (a URL), the embedded one is asked for, or a service needs
// one ([WithNATS], or events).
func (h *Host) needsBroker() bool {
	c := h.config
	if c.NATSURL != "" || c.NATSEmbed || c.NATSListen != "" {
		return true
	}
	for _, s := range h.services {
		if s.needsNATS || s.usesEvents() {
			return true
		}
	}
	return false
}

// maxBody is the largest body limit of the hosted services: the broker's
// payload and the streams' message size follow it.
func (h *Host) maxBody() int64 {
	var n int64
	for _, s := range h.services {
		n = max(n, s.config.maxBody())
	}
	return max(n, h.config.maxBody())
}

// maxHeaderBytes is the room the broker's max payload leaves for headers
// on top of the largest body.
const maxHeaderBytes = 64 << 10

// NATS returns the host's broker connection, or nil when it has none
// (not started, stopped, or no broker needed).
func (h *Host) NATS() *nats.Conn {
	if b := h.broker.Load(); b != nil {
		return b.Conn()
	}
	return nil
}

// BrokerURL returns the URL other processes use to reach the host's
// broker: the external URL, or the embedded broker's listen URL; "" when
// there is none or it is reachable only in process.
func (h *Host) BrokerURL() string {
	if b := h.broker.Load(); b != nil {
		return b.URL()
	}
	return ""
}

// portAfter returns addr with its port raised by n ("" when addr has no
// fixed port).
func portAfter(addr string, n int) string {
	host, port, err := net.SplitHostPort(addr)
	p, perr := strconv.Atoi(port)
	if err != nil || perr != nil || p == 0 {
		return addr
	}
	return net.JoinHostPort(host, strconv.Itoa(p+n))
}
