package ferry

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/ferrygo/ferry/internal/provision"
)

// Config holds the settings that come from flags and the environment. Its
// zero value works: every field has a documented default. Pass it to
// [New] or [NewHost] with [WithConfig]; fill it with [LoadConfig] so flags,
// environment and code share one path. Each setting has exactly one flag and
// one environment variable, the same in every Ferry program; see
// [ConfigSettings] and docs/configuration.md.
type Config struct {
	// Addr is the HTTP listen address: host:port, :port or a bare port.
	// Flag -addr, environment PORT. Default ":8000".
	Addr string
	// ShutdownGrace is how long in-flight work may take to finish once
	// shutdown starts; what is still running then is cut off.
	// Flag -shutdown-grace, environment FERRY_SHUTDOWN_GRACE. Default 25s.
	ShutdownGrace time.Duration
	// DrainDelay is how long, at the start of a shutdown, /readyz answers
	// 503 while everything still serves, so load balancers stop sending
	// before the listeners close; it is part of the grace period.
	// Flag -drain-delay, environment FERRY_DRAIN_DELAY. Default 0s.
	DrainDelay time.Duration
	// LogLevel is the minimum level logged: debug, info, warn or error.
	// Flag -log-level, environment FERRY_LOG_LEVEL. Default info.
	LogLevel slog.Level
	// LogFormat is the log line format: text or json.
	// Flag -log-format, environment FERRY_LOG_FORMAT. Default text.
	LogFormat string
	// AccessLog logs every request and delivery at INFO when set: route,
	// status or result, duration, request ID. Off, they are logged at
	// DEBUG, when the log level is debug.
	// Flag -access-log, environment FERRY_ACCESS_LOG. Default false.
	AccessLog bool
	// AdminAddr, when set, is the address of the host's admin listener,
	// which serves /metrics, /healthz and /readyz for the whole process
	// (and the documents, with Docs "admin"); the services' own listeners
	// then no longer serve /metrics.
	// Flag -admin-addr, environment FERRY_ADMIN_ADDR. Default none.
	AdminAddr string
	// Docs says where /docs, /openapi.* and /asyncapi.* are served:
	// "public" on each service's listener, "admin" on the admin listener
	// under /services/<name>/ (it needs AdminAddr), "off" nowhere (404).
	// Flag -docs, environment FERRY_DOCS. Default public.
	Docs string
	// Metrics is "on" or "off". Off, the host keeps no Prometheus metrics
	// and no latency statistics for $SRV.STATS, and requests pay for no
	// observation unless the access log is on (the bare path).
	// Flag -metrics, environment FERRY_METRICS. Default on.
	Metrics string
	// TraceIncoming says what an HTTP request's incoming W3C trace
	// context is to the service: "trust" (its trace is continued) or
	// "link" (untrusted: a new trace is started, linked to it, and with
	// tracing off it is not passed on). NATS calls and events always
	// continue their caller's trace. See docs/tracing.md.
	// Flag -trace-incoming, environment FERRY_TRACE_INCOMING. Default trust.
	TraceIncoming string
	// MaxBody is the largest request body, in bytes, over HTTP and NATS
	// alike, at most 64 MiB (NATS's own limit); the broker's max payload
	// follows the largest of a host's services.
	// Flag -max-body, environment FERRY_MAX_BODY. Default 1 MiB.
	MaxBody int64
	// CallTimeoutMax caps the time budget of an endpoint call; a call over
	// NATS without a budget gets this one.
	// Flag -call-timeout-max, environment FERRY_CALL_TIMEOUT_MAX. Default 60s.
	CallTimeoutMax time.Duration
	// HTTPReadHeaderTimeout, HTTPReadTimeout, HTTPWriteTimeout and
	// HTTPIdleTimeout bound a client's time on the service's HTTP
	// listener: sending the request headers; sending the whole request
	// (each endpoint's body read gets it again from its start); receiving
	// the response, from the end of the headers (past it the connection is
	// cut; streaming endpoints are exempt, and an Endpoint.Timeout below it
	// answers slow handlers 504 instead); and keeping an idle connection
	// open.
	// Flags -http-read-header-timeout, -http-read-timeout,
	// -http-write-timeout, -http-idle-timeout; environment
	// FERRY_HTTP_READ_HEADER_TIMEOUT, FERRY_HTTP_READ_TIMEOUT,
	// FERRY_HTTP_WRITE_TIMEOUT, FERRY_HTTP_IDLE_TIMEOUT. Defaults 10s, 1m,
	// 1m30s, 2m. See docs/limits.md.
	HTTPReadHeaderTimeout, HTTPReadTimeout, HTTPWriteTimeout, HTTPIdleTimeout time.Duration
	// MaxHeaderBytes is the largest request header, in bytes, over HTTP
	// (request line and header lines) and NATS (the call's headers and
	// query) alike, at most 1 MiB; larger ones are answered 431.
	// Flag -max-header-bytes, environment FERRY_MAX_HEADER_BYTES. Default
	// 64 KiB.
	MaxHeaderBytes int64
	// MaxConcurrent is how many endpoint calls a service runs at once,
	// over HTTP and NATS together; a call beyond it is answered 503
	// overloaded with Retry-After at once. Streaming endpoints are not
	// counted. Flag -max-concurrent, environment FERRY_MAX_CONCURRENT.
	// Default 1024.
	MaxConcurrent int
	// NATSWorkers bounds the goroutines a service runs NATS calls on;
	// calls that find them all busy wait, oldest first, within
	// NATSPendingBytes (the service's byte budget, across its endpoints),
	// and beyond it are answered 503 overloaded at once. Flags
	// -nats-workers, -nats-pending-bytes; environment FERRY_NATS_WORKERS,
	// FERRY_NATS_PENDING_BYTES. Defaults 4096 and 64 MiB.
	NATSWorkers      int
	NATSPendingBytes int64

	// NATSURL is the external NATS server or cluster (comma-separated
	// URLs); empty means the embedded broker, started when needed.
	// Flag -nats-url, environment FERRY_NATS_URL.
	NATSURL string
	// NATSEmbed starts the embedded broker even when no service needs one,
	// so endpoints are reachable over NATS.
	// Flag -nats-embed, environment FERRY_NATS_EMBED. Default false.
	NATSEmbed bool
	// NATSListen makes the embedded broker listen on this address
	// (host:port; port 0 picks one) so other processes can join it; it
	// implies NATSEmbed. Flag -nats-listen, environment FERRY_NATS_LISTEN.
	NATSListen string
	// DataDir is the embedded broker's store, locked by one process.
	// Flag -data-dir, environment FERRY_DATA_DIR. Default .ferry/data.
	DataDir string
	// SyncAlways makes the embedded broker sync every acknowledged write
	// to disk; otherwise it syncs every SyncInterval (default 1s). One
	// setting: "always" or an interval.
	// Flag -nats-sync, environment FERRY_NATS_SYNC. Default 1s.
	SyncAlways   bool
	SyncInterval time.Duration
	// NATSCreds, NATSNKey, NATSCA, NATSCert and NATSKey are files that
	// authenticate and secure the connection to an external server: a
	// credentials file, an NKey seed, a CA bundle, a client certificate and
	// its key. Flags -nats-creds, -nats-nkey, -nats-ca, -nats-cert,
	// -nats-key; environment FERRY_NATS_CREDS, FERRY_NATS_NKEY,
	// FERRY_NATS_CA, FERRY_NATS_CERT, FERRY_NATS_KEY.
	NATSCreds, NATSNKey, NATSCA, NATSCert, NATSKey string
	// StreamReplicas is how many copies of each stream a cluster keeps:
	// 1 on a single server, 3 on a cluster to survive the loss of a node.
	// Flag -stream-replicas, environment FERRY_STREAM_REPLICAS. Default 1.
	StreamReplicas int
	// Provision says what the process may do to JetStream streams and
	// buckets: "owner" (the default) lets the publisher of a topic create
	// and update its stream and each service its state bucket, while
	// subscribers create only what is missing and warn when a stream
	// differs from their declaration; "none" creates and changes nothing
	// and fails the start when something is missing, for NATS accounts
	// without stream administration (docs/events.md, "Permissions").
	// Flag -provision, environment FERRY_PROVISION. Default owner.
	Provision string

	// JWTJWKSURL and JWTKeyFile give the keys that sign the bearer tokens
	// a service accepts: an identity provider's JWK Set URL (fetched,
	// cached and refreshed when a token names an unknown key) and a file
	// of PEM public keys or a JWK Set. Either turns on authentication
	// (docs/security.md). Flags -jwt-jwks-url, -jwt-key-file; environment
	// FERRY_JWT_JWKS_URL, FERRY_JWT_KEY_FILE.
	JWTJWKSURL, JWTKeyFile string
	// JWTIssuer is the iss a bearer token must carry; empty accepts any.
	// Flag -jwt-issuer, environment FERRY_JWT_ISSUER.
	JWTIssuer string
	// JWTAudience lists the aud values accepted, comma-separated (one is
	// enough); empty accepts any. Flag -jwt-audience, environment
	// FERRY_JWT_AUDIENCE.
	JWTAudience string
	// JWTLeeway is the clock skew allowed on a token's exp, nbf and iat.
	// Flag -jwt-leeway, environment FERRY_JWT_LEEWAY. Default 30s.
	JWTLeeway time.Duration
	// APIKeysFile is a file of accepted API keys, one per line as
	// "name sha256:<hash of the key> [scope ...]"; it turns on
	// authentication. Flag -api-keys-file, environment FERRY_API_KEYS_FILE.
	APIKeysFile string
	// CORSOrigins lists the browser origins allowed to call the service,
	// comma-separated (https://app.example.com, https://*.example.com, or
	// * for any); empty turns CORS off. Flag -cors-origins, environment
	// FERRY_CORS_ORIGINS.
	CORSOrigins string
}

// Defaults of the settings whose zero value means "default".
const (
	DefaultAddr           = ":8000"
	DefaultShutdownGrace  = 25 * time.Second
	DefaultMaxBody        = 1 << 20
	DefaultCallTimeoutMax = 60 * time.Second
	DefaultDataDir        = ".ferry/data"
	DefaultSyncInterval   = time.Second
	// MaxMaxBody is the largest MaxBody: NATS carries no larger message.
	MaxMaxBody = 64 << 20
)

// Setting describes one configuration setting: its flag, its environment
// variable and what it does.
type Setting struct {
	Flag    string
	Env     string
	Default string
	Usage   string
}

// ConfigSettings returns the table of settings, in the order they are
// documented.
func ConfigSettings() []Setting {
	var c Config
	out := make([]Setting, 0, 16)
	for _, s := range c.settings() {
		out = append(out, s.Setting)
	}
	return out
}

type boundSetting struct {
	Setting
	value flag.Value
}

func (c *Config) settings() []boundSetting {
	return []boundSetting{
		{Setting{"addr", "PORT", DefaultAddr, "HTTP listen address: host:port, :port or a bare port"}, addrValue{&c.Addr}},
		{Setting{"shutdown-grace", "FERRY_SHUTDOWN_GRACE", DefaultShutdownGrace.String(), "time in-flight work gets to finish on shutdown"}, durationValue{&c.ShutdownGrace}},
		{Setting{"drain-delay", "FERRY_DRAIN_DELAY", "0s", "time /readyz answers 503 before the listeners close on shutdown (part of the grace period)"}, durationValue{&c.DrainDelay}},
		{Setting{"log-level", "FERRY_LOG_LEVEL", "info", "minimum log level: debug, info, warn or error"}, levelValue{&c.LogLevel}},
		{Setting{"log-format", "FERRY_LOG_FORMAT", "text", "log format: text or json"}, choiceValue{&c.LogFormat, []string{"text", "json"}}},
		{Setting{"access-log", "FERRY_ACCESS_LOG", "false", "log every request and delivery at INFO (off: at DEBUG)"}, boolValue{&c.AccessLog}},
		{Setting{"admin-addr", "FERRY_ADMIN_ADDR", "", "admin listener for /metrics, /healthz and /readyz of the whole process (then not on the services' listeners)"}, addrValue{&c.AdminAddr}},
		{Setting{"docs", "FERRY_DOCS", "public", "where /docs, /openapi.* and /asyncapi.* are served: public, admin (under /services/<name>/ on the admin listener) or off"}, choiceValue{&c.Docs, []string{"public", "admin", "off"}}},
		{Setting{"metrics", "FERRY_METRICS", "on", "Prometheus metrics and $SRV.STATS latencies: on or off"}, choiceValue{&c.Metrics, []string{"on", "off"}}},
		{Setting{"trace-incoming", "FERRY_TRACE_INCOMING", TraceTrust, "incoming trace context of HTTP requests: trust (continue its trace) or link (start a new trace linked to it)"}, choiceValue{&c.TraceIncoming, []string{TraceTrust, TraceLink}}},
		{Setting{"max-body", "FERRY_MAX_BODY", "1MiB", "largest request body over HTTP and NATS, up to 64MiB: bytes, or with KiB/MiB"}, bytesValue{&c.MaxBody, MaxMaxBody}},
		{Setting{"call-timeout-max", "FERRY_CALL_TIMEOUT_MAX", DefaultCallTimeoutMax.String(), "cap on an endpoint call's time budget"}, durationValue{&c.CallTimeoutMax}},
		{Setting{"http-read-header-timeout", "FERRY_HTTP_READ_HEADER_TIMEOUT", DefaultHTTPReadHeaderTimeout.String(), "time a client has to send the request headers"}, durationValue{&c.HTTPReadHeaderTimeout}},
		{Setting{"http-read-timeout", "FERRY_HTTP_READ_TIMEOUT", DefaultHTTPReadTimeout.String(), "time a client has to send a whole request, and an endpoint to read its body"}, durationValue{&c.HTTPReadTimeout}},
		{Setting{"http-write-timeout", "FERRY_HTTP_WRITE_TIMEOUT", DefaultHTTPWriteTimeout.String(), "time to answer a request from the end of its headers (streaming endpoints exempt)"}, durationValue{&c.HTTPWriteTimeout}},
		{Setting{"http-idle-timeout", "FERRY_HTTP_IDLE_TIMEOUT", DefaultHTTPIdleTimeout.String(), "time an idle keep-alive connection stays open"}, durationValue{&c.HTTPIdleTimeout}},
		{Setting{"max-header-bytes", "FERRY_MAX_HEADER_BYTES", "64KiB", "largest request header over HTTP and NATS, up to 1MiB: bytes, or with KiB/MiB"}, bytesValue{&c.MaxHeaderBytes, MaxMaxHeaderBytes}},
		{Setting{"max-concurrent", "FERRY_MAX_CONCURRENT", "1024", "endpoint calls a service runs at once over HTTP and NATS; more are answered 503 overloaded"}, intValue{&c.MaxConcurrent, 1, 1 << 20}},
		{Setting{"nats-workers", "FERRY_NATS_WORKERS", "4096", "goroutines a service runs NATS calls on"}, intValue{&c.NATSWorkers, 1, 1 << 20}},
		{Setting{"nats-pending-bytes", "FERRY_NATS_PENDING_BYTES", "64MiB", "bytes of NATS calls a service holds while its workers are busy; more are answered 503 overloaded"}, bytesValue{&c.NATSPendingBytes, 1 << 30}},
		{Setting{"nats-url", "FERRY_NATS_URL", "", "external NATS server or cluster (comma-separated URLs); empty: embedded broker"}, stringValue{&c.NATSURL}},
		{Setting{"nats-embed", "FERRY_NATS_EMBED", "false", "start the embedded broker even when no service needs one"}, boolValue{&c.NATSEmbed}},
		{Setting{"nats-listen", "FERRY_NATS_LISTEN", "", "also listen on this address (port 0: any) so other processes can join the embedded broker"}, stringValue{&c.NATSListen}},
		{Setting{"data-dir", "FERRY_DATA_DIR", DefaultDataDir, "the embedded broker's store"}, stringValue{&c.DataDir}},
		{Setting{"nats-sync", "FERRY_NATS_SYNC", DefaultSyncInterval.String(), "embedded broker disk sync: an interval, or always"}, syncValue{&c.SyncAlways, &c.SyncInterval}},
		{Setting{"provision", "FERRY_PROVISION", "owner", "what may be done to streams and buckets: owner (publishers provision their topics) or none"}, choiceValue{&c.Provision, []string{"owner", "none"}}},
		{Setting{"stream-replicas", "FERRY_STREAM_REPLICAS", "1", "copies of each stream: 1 on one server, 3 on a cluster"}, intValue{&c.StreamReplicas, 1, 5}},
		{Setting{"nats-creds", "FERRY_NATS_CREDS", "", "NATS credentials file"}, stringValue{&c.NATSCreds}},
		{Setting{"nats-nkey", "FERRY_NATS_NKEY", "", "NATS NKey seed file"}, stringValue{&c.NATSNKey}},
		{Setting{"nats-ca", "FERRY_NATS_CA", "", "CA bundle for TLS to NATS"}, stringValue{&c.NATSCA}},
		{Setting{"nats-cert", "FERRY_NATS_CERT", "", "client certificate for TLS to NATS"}, stringValue{&c.NATSCert}},
		{Setting{"nats-key", "FERRY_NATS_KEY", "", "client certificate key for TLS to NATS"}, stringValue{&c.NATSKey}},
		{Setting{"jwt-jwks-url", "FERRY_JWT_JWKS_URL", "", "JWK Set URL of the identity provider whose bearer tokens are accepted"}, urlValue{&c.JWTJWKSURL}},
		{Setting{"jwt-key-file", "FERRY_JWT_KEY_FILE", "", "file of PEM public keys or a JWK Set that sign accepted bearer tokens"}, stringValue{&c.JWTKeyFile}},
		{Setting{"jwt-issuer", "FERRY_JWT_ISSUER", "", "the iss bearer tokens must carry"}, stringValue{&c.JWTIssuer}},
		{Setting{"jwt-audience", "FERRY_JWT_AUDIENCE", "", "accepted aud values of bearer tokens, comma-separated"}, listValue{&c.JWTAudience, nil}},
		{Setting{"jwt-leeway", "FERRY_JWT_LEEWAY", DefaultJWTLeeway.String(), "clock skew allowed on bearer tokens' exp, nbf and iat, up to 5m"}, durationValue{&c.JWTLeeway}},
		{Setting{"api-keys-file", "FERRY_API_KEYS_FILE", "", "file of accepted API keys, a line each: name sha256:<hash> [scope ...]"}, stringValue{&c.APIKeysFile}},
		{Setting{"cors-origins", "FERRY_CORS_ORIGINS", "", "browser origins allowed to call the service (CORS), comma-separated, or *; empty: off"}, listValue{&c.CORSOrigins, checkOrigin}},
	}
}

// LoadConfig registers Ferry's settings as flags on fs, parses args, and
// then fills every setting not given as a flag from its environment
// variable: a flag beats the environment, which beats the default. An
// invalid value fails with an error that names the flag or variable.
// Programs with flags of their own define them on fs before calling it.
func LoadConfig(fs *flag.FlagSet, args []string) (Config, error) {
	return loadConfig(fs, args, os.LookupEnv)
}

func loadConfig(fs *flag.FlagSet, args []string, lookupEnv func(string) (string, bool)) (Config, error) {
	var c Config
	settings := c.settings()
	for _, s := range settings {
		fs.Var(s.value, s.Flag, fmt.Sprintf("%s (env %s, default %s)", s.Usage, s.Env, s.Default))
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, s := range settings {
		if given[s.Flag] {
			continue
		}
		v, ok := lookupEnv(s.Env)
		if !ok || v == "" {
			continue
		}
		if err := s.value.Set(v); err != nil {
			return Config{}, fmt.Errorf("ferry: invalid %s=%q: %w", s.Env, v, err)
		}
	}
	return c, nil
}

// addr returns the listen address with the default applied.
func (c Config) addr() string {
	if c.Addr == "" {
		return DefaultAddr
	}
	return c.Addr
}

func (c Config) maxBody() int64 {
	if c.MaxBody <= 0 {
		return DefaultMaxBody
	}
	return c.MaxBody
}

func (c Config) callTimeoutMax() time.Duration {
	if c.CallTimeoutMax <= 0 {
		return DefaultCallTimeoutMax
	}
	return c.CallTimeoutMax
}

func (c Config) dataDir() string {
	if c.DataDir == "" {
		return DefaultDataDir
	}
	return c.DataDir
}

func (c Config) shutdownGrace() time.Duration {
	if c.ShutdownGrace <= 0 {
		return DefaultShutdownGrace
	}
	return c.ShutdownGrace
}

// newLogger builds the logger the settings describe, writing to w.
func (c Config) newLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// provisionMode returns the provisioning mode with the default applied.
func (c Config) provisionMode() provision.Mode {
	if c.Provision == string(provision.ModeNone) {
		return provision.ModeNone
	}
	return provision.ModeOwner
}

// processDiff names the first process setting (one a host takes from its
// configuration) in which c and o differ; "" when they agree.
func (c Config) processDiff(o Config) string {
	for _, d := range []struct {
		name string
		same bool
	}{
		{"broker settings (FERRY_NATS_URL, FERRY_NATS_EMBED, FERRY_NATS_LISTEN)", c.NATSURL == o.NATSURL && c.NATSEmbed == o.NATSEmbed && c.NATSListen == o.NATSListen},
		{"broker credentials (FERRY_NATS_CREDS, FERRY_NATS_NKEY, FERRY_NATS_CA, FERRY_NATS_CERT, FERRY_NATS_KEY)",
			c.NATSCreds == o.NATSCreds && c.NATSNKey == o.NATSNKey && c.NATSCA == o.NATSCA && c.NATSCert == o.NATSCert && c.NATSKey == o.NATSKey},
		{"data directories (FERRY_DATA_DIR)", c.dataDir() == o.dataDir()},
		{"disk sync settings (FERRY_NATS_SYNC)", c.SyncAlways == o.SyncAlways && c.SyncInterval == o.SyncInterval},
		{"stream replicas (FERRY_STREAM_REPLICAS)", c.streamReplicas() == o.streamReplicas()},
		{"provisioning modes (FERRY_PROVISION)", c.provisionMode() == o.provisionMode()},
		{"shutdown grace periods (FERRY_SHUTDOWN_GRACE)", c.shutdownGrace() == o.shutdownGrace()},
		{"drain delays (FERRY_DRAIN_DELAY)", c.DrainDelay == o.DrainDelay},
		{"admin, docs or metrics settings (FERRY_ADMIN_ADDR, FERRY_DOCS, FERRY_METRICS)", c.AdminAddr == o.AdminAddr && c.docs() == o.docs() && c.metricsOn() == o.metricsOn()},
	} {
		if !d.same {
			return d.name
		}
	}
	return ""
}

// check reports settings set in code that LoadConfig would refuse.
func (c Config) check() error {
	switch {
	case c.MaxBody < 0 || c.MaxBody > MaxMaxBody:
		return fmt.Errorf("ferry: Config.MaxBody %d: must be from 1 byte to 64 MiB (flag -max-body, env FERRY_MAX_BODY)", c.MaxBody)
	case c.Provision != "" && c.Provision != string(provision.ModeOwner) && c.Provision != string(provision.ModeNone):
		return fmt.Errorf("ferry: Config.Provision %q: must be owner or none (flag -provision, env FERRY_PROVISION)", c.Provision)
	case c.TraceIncoming != "" && c.TraceIncoming != TraceTrust && c.TraceIncoming != TraceLink:
		return fmt.Errorf("ferry: Config.TraceIncoming %q: must be trust or link (flag -trace-incoming, env FERRY_TRACE_INCOMING)", c.TraceIncoming)
	case c.StreamReplicas < 0 || c.StreamReplicas > 5:
		return fmt.Errorf("ferry: Config.StreamReplicas %d: must be from 1 to 5 (flag -stream-replicas, env FERRY_STREAM_REPLICAS)", c.StreamReplicas)
	}
	if err := c.checkLimits(); err != nil {
		return err
	}
	if err := c.checkSecurity(); err != nil {
		return err
	}
	return c.checkExposure()
}

func (c Config) streamReplicas() int {
	if c.StreamReplicas <= 0 {
		return 1
	}
	return c.StreamReplicas
}
