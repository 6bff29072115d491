package ferry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ferrygo/ferry/internal/docsui"
	"github.com/ferrygo/ferry/internal/lifecycle"
)

// The admin listener (Config.AdminAddr) serves what operators and their
// tools read, apart from the services' public listeners: /metrics for the
// whole host, /healthz and /readyz, and — with Config.Docs "admin" — each
// service's documents under /services/<name>/ (/docs, /openapi.json,
// /openapi.yaml, /openapi-3.0.json, /openapi-3.0.yaml, /asyncapi.json,
// /asyncapi.yaml), a prefix even when the host has one service, so the
// paths do not change when a second one is added. Its requests are not
// observed (they are not in the request metrics). It is a component of
// the host started and stopped with the HTTP servers.

// AdminServicesPath prefixes each service's documents on the admin
// listener: /services/<name>/docs.
const AdminServicesPath = "/services"

// adminServer is the host's admin listener.
type adminServer struct {
	h   *Host
	ln  net.Listener
	srv *http.Server
}

var _ lifecycle.Component = (*adminServer)(nil)

// listenAdmin opens the admin listener, when there is one to open.
func (h *Host) listenAdmin(ctx context.Context) (*adminServer, error) {
	if h.config.AdminAddr == "" {
		return nil, nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", h.config.AdminAddr)
	if err != nil {
		return nil, fmt.Errorf("ferry: admin listener on %s (flag -admin-addr, env FERRY_ADMIN_ADDR): %w", h.config.AdminAddr, err)
	}
	h.mu.Lock()
	h.adminAddr = ln.Addr()
	h.mu.Unlock()
	return &adminServer{h: h, ln: ln}, nil
}

// AdminAddr returns the address the host's admin listener listens on once
// the host has started, or nil when it has none.
func (h *Host) AdminAddr() net.Addr {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.adminAddr
}

// Name implements lifecycle.Component.
func (a *adminServer) Name() string { return "admin listener" }

// Start implements lifecycle.Component: it serves in the background.
func (a *adminServer) Start(context.Context) error {
	h := a.h
	a.srv = &http.Server{
		Handler:           a.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(h.logger.Handler(), slog.LevelWarn),
	}
	paths := []string{HealthzPath, ReadyzPath}
	if h.config.metricsOn() {
		paths = append(paths, MetricsPath)
	}
	if h.config.docs() == docsAdmin {
		paths = append(paths, AdminServicesPath+"/<service>"+DocsPath)
	}
	h.logger.Info("ferry: admin listener", slog.String("addr", a.ln.Addr().String()), slog.Any("paths", paths))
	go func() {
		if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case h.failed <- fmt.Errorf("ferry: admin listener: serve: %w", err):
			default:
			}
		}
	}()
	return nil
}

// handler routes the admin listener's requests.
func (a *adminServer) handler() http.Handler {
	h := a.h
	mux := http.NewServeMux()
	mux.HandleFunc("/", notFound)
	if len(h.services) > 0 {
		// Every service of a host reports the host's health registry.
		s := h.services[0]
		mux.HandleFunc("GET "+HealthzPath, s.serveHealthz)
		mux.HandleFunc("GET "+ReadyzPath, s.serveReadyz)
	}
	if h.config.metricsOn() {
		mux.HandleFunc("GET "+MetricsPath, func(w http.ResponseWriter, r *http.Request) {
			if hm := h.metrics.Load(); hm != nil {
				hm.prom.Handler().ServeHTTP(w, r)
				return
			}
			notFound(w, r)
		})
	}
	if h.config.docs() == docsAdmin {
		for _, s := range h.services {
			prefix := AdminServicesPath + "/" + s.name
			docs := docsui.New(prefix+DocsPath, s.name+" "+s.version, prefix+OpenAPIPath+".json", docsui.WithAsyncAPI(prefix+AsyncAPIPath+".json"))
			for _, p := range docsui.Patterns(prefix + DocsPath) {
				mux.Handle(p, docs)
			}
			for _, doc := range []string{OpenAPIPath + ".json", OpenAPIPath + ".yaml", OpenAPIPath + "-3.0.json", OpenAPIPath + "-3.0.yaml"} {
				mux.Handle("GET "+prefix+doc, s.serveDocument(doc))
			}
			mux.HandleFunc("GET "+prefix+AsyncAPIPath+".json", s.serveAsyncAPI)
			mux.HandleFunc("GET "+prefix+AsyncAPIPath+".yaml", s.serveAsyncAPI)
		}
	}
	return mux
}

// serveDocument serves one of the service's own documents (the OpenAPI
// document Huma serves at path) on another path.
func (s *Service) serveDocument(path string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.URL.Path, r2.URL.RawPath = path, ""
		s.mux.ServeHTTP(w, r2)
	})
}

// StopIntake implements lifecycle.Component; Drain closes the listener.
func (a *adminServer) StopIntake() {}

// Drain implements lifecycle.Component: the listener closes and requests
// in flight (a scrape) finish until ctx ends.
func (a *adminServer) Drain(ctx context.Context) error {
	return shutdownServer(ctx, a.srv)
}

// Close implements lifecycle.Component.
func (a *adminServer) Close(context.Context) error {
	_ = a.ln.Close()
	return nil
}
