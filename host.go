package ferry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/broker"
)

// Host runs one or more services in one process: one signal handler, one
// shutdown sequence, and (as they land) one broker connection and one
// metrics registry shared by its services. Each service keeps its own HTTP
// address (or none) and its own OpenAPI document.
//
// The lifecycle is Start, then Shutdown; [Host.Run] does both around a
// wait for the context or a signal. Shutdown stops intake first, then gives
// in-flight work the grace period ([Config.ShutdownGrace]), then cuts off
// what is left. Run and Shutdown are safe to call twice.
type Host struct {
	config Config
	logger *slog.Logger

	mu       sync.Mutex
	services []*Service
	servers  []*http.Server
	broker   *broker.Broker
	nats     []*natsEndpoints
	subs     []subscriber
	state    hostState
	failed   chan error
	stopOnce sync.Once
	stopErr  error
}

type hostState int

const (
	hostNew hostState = iota
	hostStarted
	hostStopped
)

// NewHost creates a host. It reads [WithConfig] (the shutdown grace
// period, the log settings) and [WithLogger]; service-only options are
// ignored.
func NewHost(opts ...Option) (*Host, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	h := &Host{config: o.config, logger: o.logger, failed: make(chan error, 1)}
	if h.logger == nil {
		h.logger = o.config.newLogger(os.Stderr)
	}
	return h, nil
}

// Add adds services to the host. It fails if the host has started, if a
// service is already hosted, or if two services share a name.
func (h *Host) Add(services ...*Service) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != hostNew {
		return errors.New("ferry: Host.Add: host already started")
	}
	for _, s := range services {
		if s == nil {
			return errors.New("ferry: Host.Add: nil service")
		}
		for _, other := range h.services {
			if other.name == s.name {
				return fmt.Errorf("ferry: Host.Add: two services named %q", s.name)
			}
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
// address in use fails the start before anything serves, then serves in
// the background. It returns once the services accept requests.
func (h *Host) Start(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != hostNew {
		return errors.New("ferry: Host.Start: host already started")
	}
	if len(h.services) == 0 {
		return errors.New("ferry: Host.Start: no services")
	}
	for _, s := range h.services {
		if err := s.markStarted(); err != nil {
			return err
		}
	}
	if err := h.startBroker(ctx); err != nil {
		return err
	}
	type bound struct {
		s  *Service
		ln net.Listener
	}
	var listeners []bound
	var lc net.ListenConfig
	for _, s := range h.services {
		if s.addr == "" {
			continue
		}
		ln, err := lc.Listen(ctx, "tcp", s.addr)
		if err != nil {
			for _, b := range listeners {
				_ = b.ln.Close()
			}
			_ = h.stopBrokerLocked(context.Background())
			return fmt.Errorf("ferry: service %s: listen on %s (flag -addr, env PORT): %w", s.name, s.addr, err)
		}
		listeners = append(listeners, bound{s, ln})
	}
	for _, b := range listeners {
		srv := &http.Server{
			Handler:           b.s.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    1 << 20,
			ErrorLog:          slog.NewLogLogger(b.s.logger.Handler(), slog.LevelWarn),
		}
		h.servers = append(h.servers, srv)
		b.s.mu.Lock()
		b.s.listener = b.ln.Addr()
		b.s.mu.Unlock()
		h.logger.Info("ferry: serving", slog.String("service", b.s.name), slog.String("version", b.s.version),
			slog.String("addr", b.ln.Addr().String()), slog.String("docs", "http://"+displayAddr(b.ln.Addr())+DocsPath))
		go func(srv *http.Server, ln net.Listener, name string) {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				select {
				case h.failed <- fmt.Errorf("ferry: service %s: serve: %w", name, err):
				default:
				}
			}
		}(srv, b.ln, b.s.name)
	}
	h.state = hostStarted
	return nil
}

// Run starts the services and blocks until ctx ends, SIGINT or SIGTERM
// arrives, or a server fails; then it shuts down within the grace period.
// It returns nil after a clean shutdown. A second signal during shutdown
// ends the process at once, as Go's default does.
func (h *Host) Run(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := h.Start(ctx); err != nil {
		return err
	}
	var runErr error
	select {
	case <-ctx.Done():
		h.logger.Info("ferry: shutting down", slog.Duration("grace", h.config.shutdownGrace()))
	case runErr = <-h.failed:
		h.logger.Error("ferry: shutting down after a failure", slog.String("err", runErr.Error()))
	}
	stop()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.config.shutdownGrace())
	defer cancel()
	return errors.Join(runErr, h.Shutdown(sctx))
}

// Shutdown stops the services in order: intake stops (HTTP listeners
// close, NATS subscriptions drain); in-flight HTTP requests and NATS calls
// finish until ctx ends, when what is left is cut off (their contexts are
// cancelled); then the broker connection drains and the embedded broker
// stops. Only the first call does the work; later calls return its result.
func (h *Host) Shutdown(ctx context.Context) error {
	h.stopOnce.Do(func() {
		h.mu.Lock()
		servers, endpoints, subs := h.servers, h.nats, h.subs
		h.state = hostStopped
		h.mu.Unlock()
		for _, ne := range endpoints {
			ne.stopIntake()
		}
		for _, sub := range subs {
			sub.stopPulling()
		}
		var wg sync.WaitGroup
		errs := make([]error, len(servers)+len(endpoints)+len(subs)+1)
		for i, srv := range servers {
			wg.Go(func() {
				if err := srv.Shutdown(ctx); err != nil {
					_ = srv.Close()
					errs[i] = fmt.Errorf("ferry: shutdown: grace period over, open connections closed: %w", err)
				}
			})
		}
		for i, ne := range endpoints {
			wg.Go(func() { errs[len(servers)+i] = ne.wait(ctx) })
		}
		for i, sub := range subs {
			wg.Go(func() { errs[len(servers)+len(endpoints)+i] = sub.wait(ctx) })
		}
		wg.Wait()
		errs[len(errs)-1] = h.stopBroker(ctx)
		h.stopErr = errors.Join(errs...)
		h.logger.Info("ferry: stopped")
	})
	return h.stopErr
}

// Run hosts services in one process until ctx ends or SIGINT/SIGTERM
// arrives, then shuts them down gracefully: the simplest way to run a
// program. The host takes its configuration and logger from the first
// service's options.
func Run(ctx context.Context, services ...*Service) error {
	if len(services) == 0 {
		return errors.New("ferry: Run: no services")
	}
	h, err := NewHost(WithConfig(services[0].config), WithLogger(services[0].logger))
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
// one ([WithNATS]).
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

// startBroker opens the broker, if one is needed, and serves every
// service's endpoints on it. Called with h.mu held.
func (h *Host) startBroker(ctx context.Context) error {
	if !h.needsBroker() {
		return nil
	}
	c := h.config
	names := make([]string, len(h.services))
	for i, s := range h.services {
		names[i] = s.name
	}
	b, err := broker.Open(ctx, broker.Options{
		URL: c.NATSURL, CredsFile: c.NATSCreds, NKeyFile: c.NATSNKey, TLSCA: c.NATSCA, TLSCert: c.NATSCert, TLSKey: c.NATSKey,
		DataDir: c.dataDir(), Listen: c.NATSListen, SyncAlways: c.SyncAlways, SyncInterval: c.SyncInterval,
		MaxPayload: int32(c.maxBody() + maxHeaderBytes),
		Name:       "ferry " + strings.Join(names, ","),
		Logger:     h.logger,
	})
	if err != nil {
		return err
	}
	h.broker = b
	fail := func(err error) error {
		_ = h.stopBrokerLocked(context.Background())
		return err
	}
	js, kv, err := h.ensureStreams(ctx, b.Conn())
	if err != nil {
		return fail(err)
	}
	for _, s := range h.services {
		ne, err := s.serveNATS(b.Conn())
		if err != nil {
			return fail(err)
		}
		s.mu.Lock()
		s.client = NewClient(b.Conn())
		s.mu.Unlock()
		h.nats = append(h.nats, ne)
	}
	for _, s := range h.services {
		for _, sub := range s.subs {
			if err := sub.start(js, kv); err != nil {
				return fail(err)
			}
			h.subs = append(h.subs, sub)
		}
	}
	// Once Start returns, the server knows every subscription: a call made
	// right after it reaches the service.
	if err := b.Conn().FlushTimeout(10 * time.Second); err != nil {
		return fail(fmt.Errorf("ferry: broker: %w", err))
	}
	return nil
}

// idempotencyBucket is the key-value bucket of handled message IDs.
const idempotencyBucket = "ferry-idempotency"

// ensureStreams creates or updates the stream of every topic the services
// publish or subscribe to, the dead-letter stream when any subscribes, and
// the idempotency bucket when a subscription uses it.
func (h *Host) ensureStreams(ctx context.Context, nc *nats.Conn) (jetstream.JetStream, jetstream.KeyValue, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, nil, err
	}
	topics := map[string]topicDecl{}
	add := func(d topicDecl) error {
		if prev, ok := topics[d.name]; ok && !prev.sameStream(d) {
			return fmt.Errorf("ferry: topic %s is declared with different subjects, limits or payload types in this process", d.name)
		}
		topics[d.name] = d
		return nil
	}
	subscribed, idempotent := false, false
	for _, s := range h.services {
		for _, d := range s.published {
			if err := add(d); err != nil {
				return nil, nil, err
			}
		}
		for _, sub := range s.subs {
			if err := add(sub.decl()); err != nil {
				return nil, nil, err
			}
			subscribed = true
			idempotent = idempotent || sub.idempotent()
		}
	}
	replicas, maxMsg := h.config.streamReplicas(), int32(h.config.maxBody())
	for _, d := range topics {
		if err := ensureStream(ctx, js, d.streamConfig(replicas, maxMsg), h.logger); err != nil {
			return nil, nil, err
		}
	}
	if subscribed {
		if err := ensureStream(ctx, js, deadLetterStreamConfig(replicas, maxMsg), h.logger); err != nil {
			return nil, nil, err
		}
	}
	var kv jetstream.KeyValue
	if idempotent {
		kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: idempotencyBucket, Description: "Ferry: message IDs handled by subscriptions with idempotency",
			Storage: jetstream.FileStorage, Replicas: replicas, LimitMarkerTTL: time.Second,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("ferry: idempotency bucket: %w", err)
		}
	}
	return js, kv, nil
}

// maxHeaderBytes is the room the broker's max payload leaves for headers
// on top of the largest body.
const maxHeaderBytes = 64 << 10

func (h *Host) stopBroker(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stopBrokerLocked(ctx)
}

func (h *Host) stopBrokerLocked(ctx context.Context) error {
	for _, ne := range h.nats {
		ne.unsubscribe()
	}
	h.nats = nil
	for _, sub := range h.subs {
		sub.stopPulling()
		_ = sub.wait(context.Background())
	}
	h.subs = nil
	if h.broker == nil {
		return nil
	}
	if ctx.Err() != nil {
		// The grace period is over; still let the connection flush briefly.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
	}
	err := h.broker.Close(ctx)
	h.broker = nil
	return err
}

// NATS returns the host's broker connection, or nil when it has none
// (not started, or no broker needed).
func (h *Host) NATS() *nats.Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.broker == nil {
		return nil
	}
	return h.broker.Conn()
}

// BrokerURL returns the URL other processes use to reach the host's
// broker: the external URL, or the embedded broker's listen URL; "" when
// there is none or it is reachable only in process.
func (h *Host) BrokerURL() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.broker == nil {
		return ""
	}
	return h.broker.URL()
}
