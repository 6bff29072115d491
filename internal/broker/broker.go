// Package broker gives a Ferry process its one NATS connection: to an
// external server or cluster when a URL is configured, otherwise to a
// nats-server with JetStream embedded in the process, storing in a locked
// data directory, reachable in-process and, when asked, on a port that
// other processes join (beyond loopback, only with the NKey it keeps in the
// data directory).
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// MinServerVersion is the oldest nats-server Ferry works with: 2.11 brought
// per-message TTL (JetStream API level 1), which the idempotency store's
// per-key expiry (KV LimitMarkerTTL) needs.
const MinServerVersion = "2.11.0"

// JobsMinServerVersion is the oldest nats-server that runs jobs: 2.12
// brought message schedules, which hold a job until its time without a
// worker or an ack-pending slot.
const JobsMinServerVersion = "2.12.0"

// CronMinServerVersion is the oldest nats-server that runs periodic jobs:
// 2.14 brought cron expressions (and time zones) to message schedules.
const CronMinServerVersion = "2.14.0"

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
	// address (port 0 picks one), so another process started on the same
	// DataDir joins it instead of failing.
	Listen string
	// GuardLoopback makes a loopback Listen admit only the NKey user of
	// DataDir's broker.nkey, as any other listen address does: only who
	// can read the data directory joins.
	GuardLoopback bool
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
	srv      embeddedServer // nil unless this process runs the broker
	lock     *os.File
	record   string // the broker.url this process published
	url      string
	joined   bool
	logger   *slog.Logger
	closeOne sync.Once
}

// embeddedServer is what a Broker needs of the embedded nats-server.
type embeddedServer interface {
	Shutdown()
	WaitForShutdown()
}

// Open connects as the options say. It fails with an error that names the
// setting to change when the URL is unreachable, the server too old, the
// data directory locked by a process whose broker does not listen, or the
// listen address taken.
//
// Without a URL, the first process to lock DataDir runs the broker and,
// once it is ready, publishes in DataDir/broker.url its URL and server ID.
// Another process that finds DataDir locked waits for that record (at most
// 10s, and no longer than ctx allows), joins the URL, and checks that the
// server it reached has that ID; if the holder gives up, it takes DataDir
// itself.
func Open(ctx context.Context, o Options) (*Broker, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.URL != "" {
		nc, err := connect(ctx, o.URL, o)
		if err != nil {
			return nil, err
		}
		o.Logger.Info("ferry: connected to broker", slog.String("url", redact(nc.ConnectedUrl())),
			slog.String("server_version", nc.ConnectedServerVersion()))
		return &Broker{nc: nc, url: o.URL, logger: o.Logger}, nil
	}
	return openEmbedded(ctx, o)
}

func openEmbedded(ctx context.Context, o Options) (*Broker, error) {
	if o.DataDir == "" {
		return nil, errors.New("ferry: embedded broker: no data directory (FERRY_DATA_DIR)")
	}
	dir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, fmt.Errorf("ferry: embedded broker: data directory (FERRY_DATA_DIR): %w", err)
	}
	o.DataDir = dir
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("ferry: embedded broker: data directory (FERRY_DATA_DIR): %w", err)
	}
	return takeOrJoin(ctx, o)
}

// Conn returns the connection.
func (b *Broker) Conn() *nats.Conn { return b.nc }

// URL returns the URL other processes can connect to: the external URL,
// the joined broker's, or the embedded broker's listen URL (its loopback
// address when it listens on all of them); "" for an embedded broker
// reachable only in process. An embedded broker listening beyond loopback
// also wants the NKey in its data directory's broker.nkey.
func (b *Broker) URL() string { return b.url }

// Embedded reports whether this process runs the broker.
func (b *Broker) Embedded() bool { return b.srv != nil }

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
			if b.record != "" {
				_ = os.Remove(b.record)
			}
			b.srv.Shutdown()
			b.srv.WaitForShutdown()
			err = errors.Join(err, unlockDir(b.lock))
			b.logger.Info("ferry: embedded broker stopped")
		}
	})
	return err
}
