// Package broker gives a Ferry process its one NATS connection: to an
// external server or cluster when a URL is configured, otherwise to a
// nats-server with JetStream embedded in the process, storing in a locked
// data directory, reachable in-process and, when asked, on a loopback port
// that other local processes join.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// MinServerVersion is the oldest nats-server Ferry works with.
const MinServerVersion = "2.10.0"

// Options configure Open.
type Options struct {
	// URL, when set, is the external server or cluster (comma-separated
	// URLs); nothing is embedded.
	URL string
	// CredsFile, NKeyFile, TLSCA, TLSCert and TLSKey authenticate and
	// secure the external connection.
	CredsFile, NKeyFile, TLSCA, TLSCert, TLSKey string

	// DataDir is the embedded broker's store. Open locks it.
	DataDir string
	// Listen, when set, makes the embedded broker also listen on this
	// address (port 0 picks one) and publish its URL in DataDir, so another
	// process started on the same DataDir joins it instead of failing.
	Listen string
	// SyncAlways syncs every JetStream write to disk before acknowledging
	// it; otherwise writes are synced every SyncInterval (default 1s).
	SyncAlways   bool
	SyncInterval time.Duration
	// MaxPayload is the largest message the embedded broker accepts.
	MaxPayload int32

	// Name names the connection (shown by NATS monitoring).
	Name string
	// Logger receives connection events and the embedded server's log.
	Logger *slog.Logger
}

// Broker is an open broker connection, and the embedded server if any.
type Broker struct {
	nc       *nats.Conn
	srv      *server.Server
	lock     *os.File
	urlFile  string
	url      string
	joined   bool
	logger   *slog.Logger
	closeOne sync.Once
}

// urlFileName is where a listening embedded broker publishes its URL.
const urlFileName = "broker.url"

// Open connects as the options say. It fails with an error that names the
// setting to change when the URL is unreachable, the server too old, the
// data directory locked by a process whose broker does not listen, or the
// listen address taken.
func Open(ctx context.Context, o Options) (*Broker, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.URL != "" {
		nc, err := connect(ctx, o.URL, o)
		if err != nil {
			return nil, err
		}
		return &Broker{nc: nc, url: o.URL, logger: o.Logger}, nil
	}
	return openEmbedded(ctx, o)
}

func openEmbedded(ctx context.Context, o Options) (*Broker, error) {
	if o.DataDir == "" {
		return nil, errors.New("ferry: embedded broker: no data directory (FERRY_DATA_DIR)")
	}
	if err := os.MkdirAll(o.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("ferry: embedded broker: data directory (FERRY_DATA_DIR): %w", err)
	}
	lock, err := lockDir(o.DataDir)
	if errors.Is(err, errLocked) {
		return join(ctx, o)
	}
	if err != nil {
		return nil, fmt.Errorf("ferry: embedded broker: lock %s: %w", o.DataDir, err)
	}
	b, err := startServer(ctx, o, lock)
	if err != nil {
		_ = unlockDir(lock)
		return nil, err
	}
	return b, nil
}

// join connects to the broker of the process that holds the data
// directory, if it listens.
func join(ctx context.Context, o Options) (*Broker, error) {
	raw, err := os.ReadFile(filepath.Join(o.DataDir, urlFileName))
	url := strings.TrimSpace(string(raw))
	if err != nil || url == "" {
		return nil, fmt.Errorf("ferry: embedded broker: data directory %s is in use by another process whose broker does not listen; "+
			"start that process with FERRY_NATS_LISTEN (flag -nats-listen) so others can join it, or give this one its own FERRY_DATA_DIR", o.DataDir)
	}
	nc, err := connect(ctx, url, o)
	if err != nil {
		return nil, fmt.Errorf("ferry: embedded broker: joining the broker of the process that holds %s: %w", o.DataDir, err)
	}
	o.Logger.Info("ferry: joined the embedded broker of another process", slog.String("url", url), slog.String("data_dir", o.DataDir))
	return &Broker{nc: nc, url: url, joined: true, logger: o.Logger}, nil
}

func startServer(ctx context.Context, o Options, lock *os.File) (*Broker, error) {
	sopts := &server.Options{
		ServerName:   "ferry-embedded",
		JetStream:    true,
		StoreDir:     o.DataDir,
		NoSigs:       true,
		DontListen:   o.Listen == "",
		MaxPayload:   o.MaxPayload,
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
	nc, err := nats.Connect("", append(connOptions(o), nats.InProcessServer(srv))...)
	if err != nil {
		return fail(fmt.Errorf("ferry: embedded broker: connect in process: %w", err))
	}
	b := &Broker{nc: nc, srv: srv, lock: lock, logger: o.Logger}
	if o.Listen != "" {
		b.url = srv.ClientURL()
		b.urlFile = filepath.Join(o.DataDir, urlFileName)
		if err := writeFileAtomic(b.urlFile, []byte(b.url+"\n")); err != nil {
			nc.Close()
			return fail(fmt.Errorf("ferry: embedded broker: publish URL: %w", err))
		}
	}
	o.Logger.Info("ferry: embedded broker started", slog.String("data_dir", o.DataDir), slog.String("url", b.url),
		slog.Bool("sync_always", o.SyncAlways))
	return b, nil
}

// Conn returns the connection.
func (b *Broker) Conn() *nats.Conn { return b.nc }

// URL returns the URL other processes can connect to: the external URL,
// the joined broker's, or the embedded broker's listen URL; "" for an
// embedded broker reachable only in process.
func (b *Broker) URL() string { return b.url }

// Embedded reports whether this process runs the broker.
func (b *Broker) Embedded() bool { return b.srv != nil }

// Server returns the embedded server, or nil.
func (b *Broker) Server() *server.Server { return b.srv }

// Close drains the connection (delivering what was received, flushing what
// was published), then stops the embedded server and releases the data
// directory. ctx bounds the drain. Safe to call twice.
func (b *Broker) Close(ctx context.Context) error {
	var err error
	b.closeOne.Do(func() {
		closed := make(chan struct{})
		b.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if derr := b.nc.Drain(); derr != nil {
			b.nc.Close()
		} else {
			select {
			case <-closed:
			case <-ctx.Done():
				b.nc.Close()
				err = fmt.Errorf("ferry: broker: drain cut off: %w", ctx.Err())
			}
		}
		if b.srv != nil {
			if b.urlFile != "" {
				_ = os.Remove(b.urlFile)
			}
			b.srv.Shutdown()
			b.srv.WaitForShutdown()
			err = errors.Join(err, unlockDir(b.lock))
			b.logger.Info("ferry: embedded broker stopped")
		}
	})
	return err
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, path)
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
