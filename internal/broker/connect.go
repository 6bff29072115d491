package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// PingInterval and MaxPingsOut are how a connection finds a server that
// hangs (stopped, partitioned away, its host frozen) with its TCP
// connection still open: a ping every PingInterval, and the connection is
// stale, so reconnecting (readiness 503, calls and publishes refused at
// once), when more than MaxPingsOut go unanswered — within 4–6 s rather
// than nats.go's default of 4–6 minutes. A server that is gone outright
// (its connection refused or reset) is found at once.
const (
	PingInterval = 2 * time.Second
	MaxPingsOut  = 2
)

// DialTimeout bounds one attempt to connect to a server, from the dial
// to the server's first answer (nats.go's default).
const DialTimeout = 2 * time.Second

// connOptions are the options of every connection: a name, reconnecting
// forever with capped exponential backoff and jitter, a ping every
// PingInterval, and one log line per disconnect, reconnect and close.
func connOptions(o Options) []nats.Option {
	name := o.Name
	if name == "" {
		name = "ferry"
	}
	log := o.Logger
	errs := newErrorLog(log, 10*time.Second)
	return []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.CustomReconnectDelay(reconnectDelay),
		nats.ReconnectBufSize(16 << 20),
		nats.PingInterval(PingInterval),
		nats.MaxPingsOutstanding(MaxPingsOut),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				log.Warn("ferry: broker connection lost; reconnecting", slog.String("err", err.Error()))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("ferry: broker connection restored", slog.String("url", redact(nc.ConnectedUrl())))
		}),
		nats.ClosedHandler(func(*nats.Conn) { log.Debug("ferry: broker connection closed") }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			errs.report(subject, err)
		}),
	}
}

// reconnectDelay backs off exponentially from 100ms to 5s, with jitter,
// per pass over the server list.
func reconnectDelay(attempts int) time.Duration {
	d := 100 * time.Millisecond << min(attempts, 6)
	d = min(d, 5*time.Second)
	return d/2 + rand.N(d/2+1)
}

// connect dials a server or cluster and checks its version; the caller
// logs the connection.
func connect(ctx context.Context, url string, o Options) (*nats.Conn, error) {
	opts := connOptions(o)
	if o.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	if o.NKeyFile != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("ferry: broker: NKey seed file (FERRY_NATS_NKEY): %w", err)
		}
		opts = append(opts, opt)
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" || o.TLSKey != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	// The timeout bounds each dial and handshake, reconnects' included:
	// a reconnect holds the connection's lock for as long as it waits on
	// a server that accepts but does not answer (a hung one), and every
	// call, publish and readiness check waits with it. So it starts at
	// DialTimeout; a server slower than that to answer (a TLS handshake
	// over a long link, a busy server) is tried again with twice the
	// time, up to ctx's deadline, and the connection keeps the timeout
	// that was enough for its reconnects.
	nc, err := connectWithin(ctx, url, opts)
	if err != nil {
		return nil, fmt.Errorf("ferry: broker: cannot connect to %s (FERRY_NATS_URL): %w", redact(url), redactedError{err, url})
	}
	if v := nc.ConnectedServerVersion(); !atLeast(v, MinServerVersion) {
		nc.Close()
		return nil, fmt.Errorf("ferry: broker: server %s runs nats-server %s; Ferry needs %s or newer (per-message TTL, which the idempotency store's per-key expiry uses)",
			redact(url), v, MinServerVersion)
	}
	return nc, nil
}

// connectWithin connects with a timeout per attempt that starts at
// DialTimeout and doubles after an attempt that timed out, while ctx
// allows; other failures (refused, unauthorised, a bad URL) end it at
// once.
func connectWithin(ctx context.Context, url string, opts []nats.Option) (*nats.Conn, error) {
	timeout := DialTimeout
	for {
		if deadline, ok := ctx.Deadline(); ok {
			timeout = min(timeout, time.Until(deadline))
		}
		if timeout <= 0 {
			return nil, ctx.Err()
		}
		nc, err := nats.Connect(url, append(opts, nats.Timeout(timeout))...)
		if err == nil || !errors.Is(err, nats.ErrTimeout) && !isTimeout(err) {
			return nc, err
		}
		if ctx.Err() != nil {
			return nil, err
		}
		if _, ok := ctx.Deadline(); !ok && timeout >= 4*DialTimeout {
			return nil, err // no deadline to bound the tries: three are enough
		}
		timeout *= 2
	}
}

// isTimeout reports a network timeout (a dial that did not complete).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// redactedError is an error from connecting to urls whose text shows the
// URLs redacted: a parse error quotes the URL it could not parse, with
// its password.
type redactedError struct {
	err  error
	urls string
}

func (e redactedError) Error() string {
	text := e.err.Error()
	for _, u := range strings.Split(e.urls, ",") {
		if u = strings.TrimSpace(u); u != "" {
			text = strings.ReplaceAll(text, u, redact(u))
		}
	}
	return text
}

func (e redactedError) Unwrap() error { return e.err }

// redact hides credentials in URLs for messages and logs: a user and
// password, or a token alone (which url.URL.Redacted, and so
// nats.Conn.ConnectedUrlRedacted, would show).
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		if at := strings.LastIndex(u, "@"); at >= 0 {
			if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
				parts[i] = u[:scheme+3] + "***" + u[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}

// atLeast reports whether version v (major.minor.patch, with an optional
// suffix) is at least min.
// AtLeast reports whether server version v is minimum or newer.
func AtLeast(v, minimum string) bool { return atLeast(v, minimum) }

func atLeast(v, minimum string) bool {
	a, b := parseVersion(v), parseVersion(minimum)
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return true
}

func parseVersion(v string) [3]int {
	var out [3]int
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	for i, p := range strings.SplitN(v, ".", 3) {
		out[i], _ = strconv.Atoi(p)
	}
	return out
}
