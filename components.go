package ferry

// The host's own components (internal/lifecycle): the broker, stream
// provisioning and the HTTP servers. The services' NATS endpoints
// (natsserve.go) and subscriptions (subscription.go) are components too.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/broker"
	"github.com/ferrygo/ferry/internal/jsbound"
	"github.com/ferrygo/ferry/internal/lifecycle"
	"github.com/ferrygo/ferry/internal/naming"
	"github.com/ferrygo/ferry/internal/natsproto"
	"github.com/ferrygo/ferry/internal/provision"
)

// brokerComponent opens the broker connection (and the embedded broker)
// first and closes it last: the connection drains, then the embedded
// broker stops.
func (h *Host) brokerComponent() lifecycle.Component {
	return lifecycle.Funcs{
		ComponentName: "broker",
		OnStart: func(ctx context.Context) error {
			c := h.config
			names := make([]string, len(h.services))
			for i, s := range h.services {
				names[i] = s.name
			}
			b, err := broker.Open(ctx, broker.Options{
				URL: c.NATSURL, CredsFile: c.NATSCreds, NKeyFile: c.NATSNKey, TLSCA: c.NATSCA, TLSCert: c.NATSCert, TLSKey: c.NATSKey,
				DataDir: c.dataDir(), Listen: c.NATSListen, GuardLoopback: h.guardListen, SyncAlways: c.SyncAlways, SyncInterval: c.SyncInterval,
				MaxPayload: int32(h.maxBody() + h.headerRoom()),
				Name:       "ferry " + strings.Join(names, ","),
				Logger:     h.logger,
			})
			if err != nil {
				return err
			}
			h.broker.Store(b)
			nc := b.Conn()
			h.health.Add("broker", func() error {
				if st := nc.Status(); st != nats.CONNECTED {
					return fmt.Errorf("the broker connection is %s", strings.ToLower(st.String()))
				}
				return nil
			})
			return nil
		},
		OnClose: func(ctx context.Context) error {
			b := h.broker.Swap(nil)
			if b == nil {
				return nil
			}
			if final := h.closeCtx.Load(); final != nil {
				ctx = *final // the broker closes last, with the rest of the time
			}
			if ctx.Err() != nil {
				// Past the deadline: the drain of the connection is cut at once.
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 0)
				defer cancel()
			}
			return b.Close(ctx)
		},
	}
}

// DefaultStateMaxBytes bounds a service's state bucket (idempotency claims
// and delivery records): past it, new claims fail and handlers run without
// them, logged.
const DefaultStateMaxBytes = 256 << 20

// provisionComponent makes sure the streams and buckets the services use
// exist, as the provisioning mode and each service's role allow
// (internal/provision), and gives each service its client and JetStream.
func (h *Host) provisionComponent() lifecycle.Component {
	return lifecycle.Funcs{ComponentName: "provisioning", OnStart: h.provisionRetrying}
}

// provisionAttempt bounds one attempt at provisioning: a JetStream API
// request a cluster electing a leader leaves unanswered is asked again
// instead of waited for.
const provisionAttempt = 10 * time.Second

// provisionRetrying provisions, attempt after attempt while the broker
// answers with a timeout or no responders (a cluster that lost a node,
// a server still starting), for up to provision.Timeout × 2 unless ctx
// says otherwise. Provisioning is idempotent, so an attempt cut short is
// simply made again.
func (h *Host) provisionRetrying(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*provision.Timeout)
		defer cancel()
	}
	for {
		actx, cancel := context.WithTimeout(ctx, provisionAttempt)
		err := h.provision(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !natsproto.Transient(err) {
			return err
		}
		h.logger.Warn("ferry: provisioning failed; trying again", slog.String("err", err.Error()))
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return err
		}
	}
}

func (h *Host) provision(ctx context.Context) error {
	b := h.broker.Load()
	raw, err := jetstream.New(b.Conn())
	if err != nil {
		return err
	}
	js := jsbound.Wrap(raw)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, provision.Timeout)
		defer cancel()
	}
	mode, replicas, maxMsg := h.config.provisionMode(), h.config.streamReplicas(), int32(h.maxBody())
	type use struct {
		decl  topicDecl
		owned bool
	}
	topics := map[string]*use{}
	add := func(d topicDecl, owned bool) error {
		if prev, ok := topics[d.name]; ok {
			if !prev.decl.sameStream(d) {
				return fmt.Errorf("ferry: topic %s is declared with different subjects, limits or payload types in this process", d.name)
			}
			prev.owned = prev.owned || owned
			return nil
		}
		topics[d.name] = &use{d, owned}
		return nil
	}
	subscribed := false
	for _, s := range h.services {
		for _, d := range s.published {
			if err := add(d, true); err != nil {
				return err
			}
		}
		for _, sub := range s.subs {
			if err := add(sub.decl(), false); err != nil {
				return err
			}
			subscribed = true
		}
	}
	for _, u := range topics {
		role := provision.User
		if u.owned {
			role = provision.Owner
		}
		if err := provision.Stream(ctx, js, u.decl.streamConfig(replicas, maxMsg), mode, role, h.logger); err != nil {
			return err
		}
	}
	var jobKinds []string
	for _, s := range h.services {
		for _, j := range s.jobs {
			jobKinds = append(jobKinds, j.jobName())
		}
	}
	if len(jobKinds) > 0 {
		if v := b.Conn().ConnectedServerVersion(); !broker.AtLeast(v, broker.JobsMinServerVersion) {
			return fmt.Errorf("ferry: %w", errJobsServerTooOld(v))
		}
		for _, name := range jobKinds { // the worker service owns its job kinds' streams
			if err := provision.Stream(ctx, js, jobStreamConfig(name, replicas, maxMsg), mode, provision.Owner, h.logger); err != nil {
				return err
			}
		}
		if _, err := provision.Bucket(ctx, js, jobBucketConfig(replicas), mode, provision.User); err != nil {
			return err
		}
	}
	if subscribed || len(jobKinds) > 0 {
		// Shared by every subscription: created when missing, never rewritten.
		dlq := deadLetterStreamConfig(replicas)
		if err := provision.Stream(ctx, js, dlq, mode, provision.User, h.logger); err != nil {
			return err
		}
		if mode == provision.ModeOwner {
			// One made before the limit was raised: raising it loses nothing.
			if err := provision.RaiseMessageSize(ctx, js, dlq.Name, dlq.MaxMsgSize); err != nil {
				return err
			}
		}
	}
	client := NewClient(b.Conn(), ClientWithMiddleware(h.clientMW...))
	client.js.once.Do(func() { client.js.js = js })
	client.js.replicas = replicas
	client.js.callMax = h.config.callTimeoutMax()
	if b.Embedded() && b.URL() == "" {
		client.hint = " (this process runs its own embedded broker, which no other process can reach: start the process that serves it with FERRY_NATS_LISTEN and this one on the same FERRY_DATA_DIR, or both with FERRY_NATS_URL)"
	}
	for _, s := range h.services {
		rt := serviceRuntime{client: client.with(s.clientMW), js: js, retryScale: h.retryScale, health: &h.health}
		if len(s.subs) > 0 || len(s.jobs) > 0 {
			rt.state, err = provision.Bucket(ctx, js, jetstream.KeyValueConfig{
				Bucket:         naming.StateBucket(s.name),
				Description:    "Ferry: the durable state of service " + s.name + "'s subscriptions (idempotency claims, delivery records)",
				Storage:        jetstream.FileStorage,
				Replicas:       replicas,
				MaxBytes:       DefaultStateMaxBytes,
				LimitMarkerTTL: time.Second,
			}, mode, provision.Owner)
			if err != nil {
				return err
			}
		}
		s.setRuntime(rt)
		for _, st := range s.bucketStores() {
			kv, err := provision.Bucket(ctx, js, st.bucket.config(replicas), mode, provision.Owner)
			if err != nil {
				return fmt.Errorf("ferry: service %s: %w", s.name, err)
			}
			st.kv.Store(&kv)
		}
	}
	return nil
}

// readinessComponent is started last and stopped first: at the start of a
// shutdown /readyz turns 503, and everything keeps serving for the drain
// delay (Config.DrainDelay) so that load balancers stop sending first.
func (h *Host) readinessComponent() lifecycle.Component {
	return lifecycle.Funcs{
		ComponentName: "readiness",
		OnStopIntake: func() {
			h.health.SetDraining()
			h.draining.fire()
		},
		OnDrain: func(ctx context.Context) error {
			if h.config.DrainDelay <= 0 {
				return nil
			}
			delay := h.config.DrainDelay
			if deadline, ok := ctx.Deadline(); ok && delay > time.Until(deadline)/2 {
				// The delay must leave the requests in flight time to finish.
				delay = max(time.Until(deadline)/2, 0)
				h.logger.Warn("ferry: drain delay shortened to half the time left for the shutdown, so requests in flight can finish",
					slog.Duration("drain_delay", h.config.DrainDelay), slog.Duration("delay", delay))
			}
			h.logger.Info("ferry: draining: /readyz answers 503", slog.Duration("delay", delay))
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			return nil
		},
	}
}

// httpServer is one service's HTTP server, on a listener opened before
// any component started.
type httpServer struct {
	svc      *Service
	ln       net.Listener
	srv      *http.Server
	failed   chan<- error
	logger   *slog.Logger
	draining *drainSignal
}

// Name implements lifecycle.Component.
func (l *httpServer) Name() string { return "HTTP server of service " + l.svc.name }

// Start implements lifecycle.Component: it serves in the background.
func (l *httpServer) Start(context.Context) error {
	s := l.svc
	l.srv = s.httpServer() // limits.go
	l.srv.BaseContext = func(net.Listener) context.Context { return l.draining.baseContext() }
	docs := "http://" + displayAddr(l.ln.Addr()) + DocsPath
	if s.exposure.docsHidden.Load() {
		docs = "not here (FERRY_DOCS)"
	}
	l.logger.Info("ferry: serving", slog.String("service", s.name), slog.String("version", s.version),
		slog.String("addr", l.ln.Addr().String()), slog.String("docs", docs))
	go func() {
		if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case l.failed <- fmt.Errorf("ferry: service %s: serve: %w", s.name, err):
			default:
			}
		}
	}()
	return nil
}

// StopIntake implements lifecycle.Component; Drain closes the listener.
func (l *httpServer) StopIntake() {}

// Drain implements lifecycle.Component: the listener closes and requests
// in flight finish until ctx ends, when open connections are closed.
func (l *httpServer) Drain(ctx context.Context) error {
	return shutdownServer(ctx, l.srv)
}

// Close implements lifecycle.Component.
func (l *httpServer) Close(context.Context) error {
	_ = l.ln.Close()
	return nil
}

// shutdownServer closes srv's listener and lets requests in flight finish
// until ctx ends, when the connections still open are closed.
func shutdownServer(ctx context.Context, srv *http.Server) error {
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("grace period over, open connections closed: %w", err)
	}
	return nil
}
