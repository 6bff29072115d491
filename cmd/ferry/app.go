package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/internal/broker"
)

// app holds the global flags and the broker connection the commands share.
type app struct {
	// stdout escapes control characters (sanitize.go); rawStdout is the
	// terminal itself, for its width.
	stdout, stderr, rawStdout io.Writer

	server, dataDir        string
	creds, nkey            string
	tlsCA, tlsCert, tlsKey string
	json                   bool
	timeout                time.Duration
	broker                 *broker.Broker
	client                 *ferry.Client
}

// command builds the command tree.
func (a *app) command() *cobra.Command {
	root := &cobra.Command{
		Use:   "ferry",
		Short: "Operate a Ferry system: services, calls, events, dead letters, jobs, workflow runs, documents, dashboard",
		Long: `ferry operates a Ferry system over NATS: it uses discovery, the documents
services serve over NATS, Ferry's subjects and JetStream's API only, so it
works against any Ferry system.

The broker is --server (or FERRY_NATS_URL); without it, the embedded broker
of the process that holds --data-dir (default .ferry/data, where
` + "`go run ./examples/shop`" + ` keeps it) if it listens, else nats://127.0.0.1:4222
(what ` + "`ferry dev`" + ` starts).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVarP(&a.server, "server", "s", os.Getenv("FERRY_NATS_URL"), "NATS URL(s) of the broker, comma-separated (env FERRY_NATS_URL)")
	pf.StringVar(&a.dataDir, "data-dir", envOr("FERRY_DATA_DIR", ferry.DefaultDataDir), "join the embedded broker of the process holding this data directory when --server is not set (env FERRY_DATA_DIR)")
	pf.StringVar(&a.creds, "creds", os.Getenv("FERRY_NATS_CREDS"), "NATS credentials file (env FERRY_NATS_CREDS)")
	pf.StringVar(&a.nkey, "nkey", os.Getenv("FERRY_NATS_NKEY"), "NATS NKey seed file (env FERRY_NATS_NKEY)")
	pf.StringVar(&a.tlsCA, "tls-ca", os.Getenv("FERRY_NATS_CA"), "CA bundle for TLS to NATS (env FERRY_NATS_CA)")
	pf.StringVar(&a.tlsCert, "tls-cert", os.Getenv("FERRY_NATS_CERT"), "client certificate for TLS to NATS (env FERRY_NATS_CERT)")
	pf.StringVar(&a.tlsKey, "tls-key", os.Getenv("FERRY_NATS_KEY"), "client certificate key for TLS to NATS (env FERRY_NATS_KEY)")
	pf.BoolVar(&a.json, "json", false, "print JSON instead of tables")
	pf.DurationVar(&a.timeout, "timeout", 10*time.Second, "how long a request to the broker or a service may take")
	root.AddCommand(a.devCommand(), a.servicesCommand(), a.callCommand(), a.publishCommand(), a.tailCommand(),
		a.dlqCommand(), a.jobsCommand(false), a.jobsCommand(true), a.specCommand(), a.dashboardCommand())
	return root
}

// defaultServer is the URL used when neither --server nor a data
// directory's record names one: where `ferry dev` listens by default.
const defaultServer = "nats://127.0.0.1:4222"

// connect opens the broker connection once and returns the client.
func (a *app) connect(ctx context.Context) (*ferry.Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	o := broker.Options{URL: a.server, CredsFile: a.creds, NKeyFile: a.nkey, TLSCA: a.tlsCA, TLSCert: a.tlsCert, TLSKey: a.tlsKey, Name: "ferry-cli"}
	if o.URL == "" {
		url, nkeyFile, err := broker.Published(a.dataDir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			o.URL = defaultServer
		case err != nil:
			return nil, fmt.Errorf("data directory %s: %w", a.dataDir, err)
		case url == "":
			dir, _ := filepath.Abs(a.dataDir)
			return nil, fmt.Errorf("the embedded broker of the process holding %s is reachable in that process only: start it with FERRY_NATS_LISTEN=127.0.0.1:0, or pass --server", dir)
		default:
			o.URL = url
			if o.NKeyFile == "" {
				o.NKeyFile = nkeyFile
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, min(a.timeout, 5*time.Second))
	defer cancel()
	b, err := broker.Open(ctx, o)
	if err != nil {
		return nil, err
	}
	a.broker, a.client = b, ferry.NewClient(b.Conn())
	return a.client, nil
}

// close closes the broker connection, if one was opened.
func (a *app) close() {
	if a.broker != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.broker.Close(ctx) //nolint:errcheck // the command's outcome is known
	}
}

// request connects and returns the context of one request, bounded by
// --timeout, and the client.
func (a *app) request(cmd *cobra.Command) (context.Context, *ferry.Client, context.CancelFunc, error) {
	c, err := a.connect(cmd.Context())
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := a.requestContext(cmd.Context())
	return ctx, c, cancel, nil
}

// requestContext bounds one request by --timeout.
func (a *app) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, a.timeout)
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// oneLine flattens an error's text to one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
