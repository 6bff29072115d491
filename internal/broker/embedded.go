//go:build !ferry_noembed

package broker

// The embedded nats-server. It is linked into every Ferry program unless
// built with the tag ferry_noembed, which leaves it out (about 5 MiB of
// resident memory and 20 MB of binary) for programs that always use an
// external server.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

func startServer(ctx context.Context, o Options, lock *os.File) (*Broker, error) {
	sopts := &server.Options{
		ServerName:   "ferry-embedded",
		JetStream:    true,
		StoreDir:     o.DataDir,
		NoSigs:       true,
		DontListen:   o.Listen == "",
		MaxPayload:   o.MaxPayload,
		MaxPending:   max(64<<20, 2*int64(o.MaxPayload)), // the server refuses a max payload above it
		SyncAlways:   o.SyncAlways,
		SyncInterval: o.SyncInterval,
	}
	if sopts.SyncInterval == 0 && !o.SyncAlways {
		sopts.SyncInterval = time.Second
	}
	if o.Listen != "" {
		host, portText, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("ferry: embedded broker: listen address %q (FERRY_NATS_LISTEN): %w", o.Listen, err)
		}
		port, err := strconv.Atoi(portText)
		if err != nil || port < 0 || port > 65535 {
			return nil, fmt.Errorf("ferry: embedded broker: listen port %q (FERRY_NATS_LISTEN) is not a port number", portText)
		}
		if host == "" {
			host = "127.0.0.1"
		}
		if port == 0 {
			port = server.RANDOM_PORT
		}
		sopts.Host, sopts.Port = host, port
		if !isLoopback(host) || o.GuardLoopback {
			pub, err := brokerNKey(o.DataDir)
			if err != nil {
				return nil, fmt.Errorf("ferry: embedded broker: the key that guards %s (FERRY_NATS_LISTEN): %w", o.Listen, err)
			}
			sopts.Nkeys = []*server.NkeyUser{{Nkey: pub}}
		}
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("ferry: embedded broker: %w", err)
	}
	logs := &serverLog{logger: o.Logger}
	srv.SetLoggerV2(logs, false, false, false)
	srv.Start()
	fail := func(err error) (*Broker, error) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, err
	}
	if o.Listen != "" && srv.Addr() == nil {
		return fail(fmt.Errorf("ferry: embedded broker: cannot listen on %s (FERRY_NATS_LISTEN): %s; choose a free port, or port 0 for any",
			o.Listen, logs.fatalOr("address unavailable")))
	}
	if !srv.ReadyForConnections(10 * time.Second) {
		return fail(fmt.Errorf("ferry: embedded broker did not start: %s", logs.fatalOr("not ready after 10s")))
	}
	if !srv.JetStreamEnabled() {
		return fail(fmt.Errorf("ferry: embedded broker: JetStream did not start in %s: %s", o.DataDir, logs.fatalOr("unknown reason")))
	}
	copts := append(connOptions(o), nats.InProcessServer(srv))
	if len(sopts.Nkeys) > 0 {
		opt, err := nats.NkeyOptionFromSeed(filepath.Join(o.DataDir, nkeyFileName))
		if err != nil {
			return fail(fmt.Errorf("ferry: embedded broker: %w", err))
		}
		copts = append(copts, opt)
	}
	nc, err := nats.Connect("", copts...)
	if err != nil {
		return fail(fmt.Errorf("ferry: embedded broker: connect in process: %w", err))
	}
	b := &Broker{nc: nc, srv: srv, lock: lock, logger: o.Logger}
	if o.Listen != "" {
		b.url = joinURL(srv.ClientURL())
	}
	// Published last, once the broker is ready: a process that finds the
	// directory locked waits for this record.
	if err := writeRecord(o.DataDir, record{URL: b.url, ServerID: srv.ID(), NKey: len(sopts.Nkeys) > 0}); err != nil {
		nc.Close()
		return fail(fmt.Errorf("ferry: embedded broker: publish its record in %s: %w", o.DataDir, err))
	}
	b.record = filepath.Join(o.DataDir, urlFileName)
	if b.url == "" {
		o.Logger.Info("ferry: embedded broker started in this process; other processes cannot reach it (FERRY_NATS_LISTEN lets them join)",
			slog.String("data_dir", o.DataDir), slog.Bool("sync_always", o.SyncAlways))
	} else {
		attrs := []any{slog.String("data_dir", o.DataDir), slog.String("url", b.url), slog.Bool("sync_always", o.SyncAlways)}
		if len(sopts.Nkeys) > 0 {
			attrs = append(attrs, slog.String("nkey", filepath.Join(o.DataDir, nkeyFileName)))
		}
		o.Logger.Info("ferry: embedded broker started", attrs...)
	}
	o.Logger.Warn("ferry: embedded broker: production replicas need FERRY_NATS_URL; N replicas without it are N separate brokers that share no calls or events")
	return b, nil
}

// serverLog routes the embedded server's log to slog and keeps the last
// fatal message instead of exiting the process.
type serverLog struct {
	logger *slog.Logger
	mu     sync.Mutex
	fatal  string
}

func (l *serverLog) Noticef(format string, v ...any) {
	l.logger.Debug("nats-server: " + fmt.Sprintf(format, v...))
}
func (l *serverLog) Warnf(format string, v ...any) {
	l.logger.Warn("nats-server: " + fmt.Sprintf(format, v...))
}
func (l *serverLog) Errorf(format string, v ...any) {
	l.logger.Error("nats-server: " + fmt.Sprintf(format, v...))
}
func (l *serverLog) Debugf(format string, v ...any) {
	l.logger.Debug("nats-server: " + fmt.Sprintf(format, v...))
}
func (l *serverLog) Tracef(string, ...any) {}
func (l *serverLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.mu.Lock()
	l.fatal = msg
	l.mu.Unlock()
	l.logger.Error("nats-server: " + msg)
}

func (l *serverLog) fatalOr(fallback string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fatal != "" {
		return l.fatal
	}
	return fallback
}
