package dashboard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/ferrygo/ferry"
)

// DefaultAddr is where [Start] listens without [Config].Addr: loopback,
// on a free port.
const DefaultAddr = "127.0.0.1:0"

// DefaultInterval is how often the live data is refreshed without
// [Config].Interval.
const DefaultInterval = 2 * time.Second

// Config configures a dashboard server. Its zero value works.
type Config struct {
	// Addr is the listen address; default "127.0.0.1:0" (loopback, a free
	// port). A non-loopback address must be given explicitly.
	Addr string
	// Interval is how often live data is refreshed; default 2s.
	Interval time.Duration
	// Logger receives what went wrong; default slog.Default().
	Logger *slog.Logger
}

func (cfg Config) withDefaults() Config {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// Server is a running dashboard; see [Start].
type Server struct {
	url  string
	srv  *http.Server
	dash *dashboard
	once sync.Once
	err  error
	done chan struct{}
}

// Start listens on cfg.Addr and serves the dashboard of the system c's
// broker reaches until [Server.Shutdown] (or ctx ends, which shuts it
// down too). It answers requests whose Host is its listen address, or
// localhost, 127.0.0.1 or [::1] with its port; listening on every
// interface (":8080"), it also answers to the machine's addresses and
// host name with its port.
func Start(ctx context.Context, c *ferry.Client, cfg Config) (*Server, error) {
	if c == nil {
		return nil, errors.New("ferry: dashboard: no client")
	}
	cfg = cfg.withDefaults()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("ferry: dashboard: %w", err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	hosts := listenHosts(addr)
	d := newDashboard(c, cfg, hosts)
	s := &Server{dash: d, done: make(chan struct{}),
		url: "http://" + net.JoinHostPort(urlHost(addr.IP), strconv.Itoa(addr.Port)) + "/",
		srv: &http.Server{Handler: d, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("dashboard: serve", "err", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = s.Shutdown(sctx)
		case <-s.done:
		}
	}()
	return s, nil
}

// URL is the dashboard's address, such as http://127.0.0.1:43123/.
func (s *Server) URL() string { return s.url }

// Shutdown ends the live streams, stops refreshing and closes the
// listener, waiting for requests in flight until ctx ends. It is safe to
// call twice.
func (s *Server) Shutdown(ctx context.Context) error {
	s.once.Do(func() {
		close(s.done)
		s.dash.close()
		if s.err = s.srv.Shutdown(ctx); s.err != nil {
			s.srv.Close() // a stream stuck writing to a browser that stopped reading
		}
		s.dash.hub.wait()
	})
	return s.err
}

// Handler returns the dashboard as an http.Handler for mounting in
// another server, at the root of its own host or under a prefix stripped
// with http.StripPrefix. The same checks apply: it answers only requests
// whose Host is one of hosts (host:port as the browser sends it; a host
// without a port is matched with port 80). cfg.Addr is not used. Its live
// streams end when their requests do.
func Handler(c *ferry.Client, cfg Config, hosts ...string) http.Handler {
	cfg = cfg.withDefaults()
	allowed := map[string]bool{}
	for _, h := range hosts {
		allowed[normalHost(h)] = true
	}
	return newDashboard(c, cfg, allowed)
}

// listenHosts are the Host values a server listening on addr answers to.
func listenHosts(addr *net.TCPAddr) map[string]bool {
	port := strconv.Itoa(addr.Port)
	hosts := map[string]bool{}
	add := func(h string) { hosts[normalHost(net.JoinHostPort(h, port))] = true }
	add("localhost")
	add(addr.IP.String())
	if addr.IP.IsLoopback() {
		add("127.0.0.1")
		add("::1")
		return hosts
	}
	add("127.0.0.1")
	add("::1")
	if addr.IP.IsUnspecified() {
		if name, err := os.Hostname(); err == nil {
			add(name)
		}
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok {
					add(ipn.IP.String())
				}
			}
		}
	}
	return hosts
}

// urlHost is the host of the server's URL: the listen IP, or 127.0.0.1
// for an unspecified one.
func urlHost(ip net.IP) string {
	if ip == nil || ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return ip.String()
}

// newToken makes the server's random token for state-changing requests.
func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
