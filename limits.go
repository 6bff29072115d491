package ferry

// The limits of a service's listeners: the http.Server's timeouts and
// header size, the header size of NATS calls, and the settings of the
// concurrency limit (overload.go) and the NATS worker pool. docs/limits.md
// describes them together.

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
)

// Defaults of the limit settings of [Config].
const (
	DefaultHTTPReadHeaderTimeout = 10 * time.Second
	DefaultHTTPReadTimeout       = time.Minute
	DefaultHTTPWriteTimeout      = 90 * time.Second
	DefaultHTTPIdleTimeout       = 2 * time.Minute
	DefaultMaxHeaderBytes        = 64 << 10
	DefaultMaxConcurrent         = 1024
	DefaultNATSWorkers           = 4096
	DefaultNATSPendingBytes      = 64 << 20
	// MaxMaxHeaderBytes is the largest MaxHeaderBytes.
	MaxMaxHeaderBytes = 1 << 20
)

// headerSlack is how much more than MaxHeaderBytes net/http may read, so
// that the excess is answered by Ferry, as problem details; past it
// net/http answers 431 itself, in plain text.
const headerSlack = 1 << 20

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func (c Config) httpReadHeaderTimeout() time.Duration {
	return orDefault(c.HTTPReadHeaderTimeout, DefaultHTTPReadHeaderTimeout)
}
func (c Config) httpReadTimeout() time.Duration {
	return orDefault(c.HTTPReadTimeout, DefaultHTTPReadTimeout)
}
func (c Config) httpWriteTimeout() time.Duration {
	return orDefault(c.HTTPWriteTimeout, DefaultHTTPWriteTimeout)
}
func (c Config) httpIdleTimeout() time.Duration {
	return orDefault(c.HTTPIdleTimeout, DefaultHTTPIdleTimeout)
}
func (c Config) maxHeaderBytes() int64 { return orDefault(c.MaxHeaderBytes, DefaultMaxHeaderBytes) }
func (c Config) maxConcurrent() int    { return orDefault(c.MaxConcurrent, DefaultMaxConcurrent) }
func (c Config) natsWorkers() int      { return orDefault(c.NATSWorkers, DefaultNATSWorkers) }
func (c Config) natsPendingBytes() int64 {
	return orDefault(c.NATSPendingBytes, DefaultNATSPendingBytes)
}

// checkLimits reports limit settings set in code that LoadConfig would
// refuse.
func (c Config) checkLimits() error {
	for _, d := range []struct {
		v    time.Duration
		name string
	}{
		{c.HTTPReadHeaderTimeout, "HTTPReadHeaderTimeout (flag -http-read-header-timeout, env FERRY_HTTP_READ_HEADER_TIMEOUT)"},
		{c.HTTPReadTimeout, "HTTPReadTimeout (flag -http-read-timeout, env FERRY_HTTP_READ_TIMEOUT)"},
		{c.HTTPWriteTimeout, "HTTPWriteTimeout (flag -http-write-timeout, env FERRY_HTTP_WRITE_TIMEOUT)"},
		{c.HTTPIdleTimeout, "HTTPIdleTimeout (flag -http-idle-timeout, env FERRY_HTTP_IDLE_TIMEOUT)"},
	} {
		if d.v < 0 {
			return fmt.Errorf("ferry: Config.%s %s: must not be negative", d.name, d.v)
		}
	}
	switch {
	case c.MaxHeaderBytes < 0 || c.MaxHeaderBytes > MaxMaxHeaderBytes:
		return fmt.Errorf("ferry: Config.MaxHeaderBytes %d: must be from 1 byte to 1 MiB (flag -max-header-bytes, env FERRY_MAX_HEADER_BYTES)", c.MaxHeaderBytes)
	case c.MaxConcurrent < 0:
		return fmt.Errorf("ferry: Config.MaxConcurrent %d: must be positive (flag -max-concurrent, env FERRY_MAX_CONCURRENT)", c.MaxConcurrent)
	case c.NATSWorkers < 0:
		return fmt.Errorf("ferry: Config.NATSWorkers %d: must be positive (flag -nats-workers, env FERRY_NATS_WORKERS)", c.NATSWorkers)
	case c.NATSPendingBytes < 0:
		return fmt.Errorf("ferry: Config.NATSPendingBytes %d: must be positive (flag -nats-pending-bytes, env FERRY_NATS_PENDING_BYTES)", c.NATSPendingBytes)
	}
	return nil
}

// httpServer returns the service's http.Server with its limits: the
// timeouts of its settings, and room for headers past MaxHeaderBytes so
// that serveHTTP answers them as problem details.
func (s *Service) httpServer() *http.Server {
	c := s.config
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: c.httpReadHeaderTimeout(),
		ReadTimeout:       c.httpReadTimeout(),
		WriteTimeout:      c.httpWriteTimeout(),
		IdleTimeout:       c.httpIdleTimeout(),
		MaxHeaderBytes:    int(c.maxHeaderBytes() + headerSlack),
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
}

// headerTooLarge answers 431 when r's header exceeds the service's
// MaxHeaderBytes, counted as net/http counts it: the request line and the
// header lines. net/http itself answers (in plain text) only past the
// limit plus headerSlack.
func (s *Service) headerTooLarge(w http.ResponseWriter, r *http.Request) bool {
	limit := s.config.maxHeaderBytes()
	n := int64(len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4 + len("Host: ") + len(r.Host) + 2)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += int64(len(k) + len(v) + 4)
		}
		if n > limit {
			break
		}
	}
	if n <= limit {
		return false
	}
	w.Header().Set("Connection", "close")
	writeProblem(w, headerError(limit).complete(incomingRequestID(requestOutcome(r.Context(), w), r.Header.Get(HeaderRequestID))))
	return true
}

// natsHeaderTooLarge returns the 431 of a NATS call whose headers (which
// carry its path parameters and query, as HTTP's request line does) exceed
// the service's MaxHeaderBytes, or nil.
func (s *Service) natsHeaderTooLarge(h nats.Header) *Error {
	limit := s.config.maxHeaderBytes()
	var n int64
	for k, vs := range h {
		for _, v := range vs {
			n += int64(len(k) + len(v) + 4)
		}
		if n > limit {
			return headerError(limit)
		}
	}
	return nil
}

func headerError(limit int64) *Error {
	return &Error{Status: http.StatusRequestHeaderFieldsTooLarge,
		Detail: fmt.Sprintf("the request header is larger than this service's limit of %d bytes (FERRY_MAX_HEADER_BYTES)", limit)}
}

// setBodyReadTimeout moves the body read timeout of the recorded
// operations that have the service's from old to d, as setMaxBody does
// for the body limit; an operation whose Endpoint.Operation set its own
// keeps it.
func (a *recordingAdapter) setBodyReadTimeout(old, d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.ops {
		if r.op.BodyReadTimeout == old {
			r.op.BodyReadTimeout = d
		}
	}
}

// headerRoom is the room the broker's max payload leaves for headers on
// top of the largest body: the largest MaxHeaderBytes of the hosted
// services, and at least maxHeaderBytes.
func (h *Host) headerRoom() int64 {
	n := max(int64(maxHeaderBytes), h.config.maxHeaderBytes())
	for _, s := range h.services {
		n = max(n, s.config.maxHeaderBytes())
	}
	return n
}
