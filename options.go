package ferry

import (
	"errors"
	"log/slog"

	"github.com/danielgtaylor/huma/v2"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrygo/ferry/internal/telemetry"
)

// Option configures a [Service] (with [New]) or a [Host] (with [NewHost]).
// One option type serves both; each option's doc says where it applies,
// and a Host ignores the ones that only make sense for a service.
type Option func(*options) error

type options struct {
	config      Config
	configSet   bool // WithConfig was given
	logger      *slog.Logger
	middleware  []Middleware
	addr        *string
	noHTTP      bool
	needsNATS   bool
	description string
	humaConfig  []func(*huma.Config)
	retryScale  float64
	// tracerProvider is WithTracerProvider's (tracing.go).
	tracerProvider trace.TracerProvider

	clientMiddleware []ClientMiddleware // WithClientMiddleware

	testObserver telemetry.Observer // export_test.go's ObserveWith
	auth         authOptions        // WithJWT, WithAPIKeys
}

func buildOptions(opts []Option) (*options, error) {
	o := &options{}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithConfig applies the settings of cfg (see [Config] and [LoadConfig]).
// Service and Host: a host takes its process settings (broker, data
// directory, provisioning, shutdown grace, logging) from it; a service its
// own settings (HTTP address, body limit, call budget). A service given no
// configuration takes its host's when added to it.
func WithConfig(cfg Config) Option {
	return func(o *options) error {
		if err := cfg.check(); err != nil {
			return err
		}
		o.config, o.configSet = cfg, true
		return nil
	}
}

// WithLogger sets the logger; the default is built from the [Config]'s log
// level and format and writes to standard error. Service and Host; a
// service given no logger and no configuration logs with its host's.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("ferry: WithLogger: nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithMiddleware appends middleware to the service's chain, which every
// endpoint call and every event delivery passes through.
// The first middleware given is the outermost; [Recover] always runs
// inside all of them, so they see a handler's panic as a 500 error.
// Service only.
func WithMiddleware(mws ...Middleware) Option {
	return func(o *options) error {
		for _, m := range mws {
			if m == nil {
				return errors.New("ferry: WithMiddleware: nil middleware")
			}
		}
		o.middleware = append(o.middleware, mws...)
		return nil
	}
}

// WithAddr sets the service's HTTP listen address, overriding the
// [Config]'s Addr; ":0" picks a free port. Service only.
func WithAddr(addr string) Option {
	return func(o *options) error {
		if err := (addrValue{new(string)}).Set(addr); err != nil {
			return errors.New("ferry: WithAddr: " + err.Error())
		}
		o.addr = &addr
		return nil
	}
}

// WithoutHTTP makes a service that listens on no HTTP address: its
// endpoints are reached over NATS only (and in tests through
// [Service.Handler]). Service only.
func WithoutHTTP() Option {
	return func(o *options) error {
		o.noHTTP = true
		return nil
	}
}

// WithNATS serves the service's endpoints over NATS (all but those marked
// HTTPOnly): its host connects to a broker (the embedded one unless
// FERRY_NATS_URL names another) and the endpoints answer calls from any
// service on it. Exposure is per service: a service without WithNATS is
// not callable over NATS even when its host has a broker for other
// services or for events; it still answers discovery (with no endpoints)
// and gets a [Client] to call others. The host logs which services are
// exposed. Service only.
func WithNATS() Option {
	return func(o *options) error {
		o.needsNATS = true
		return nil
	}
}

// WithDescription sets the service's description, shown in its OpenAPI
// document and in discovery. Service only.
func WithDescription(d string) Option {
	return func(o *options) error {
		o.description = d
		return nil
	}
}

// WithHumaConfig lets fn adjust the Huma configuration the service's API is
// built from, after Ferry has set its own defaults: the escape hatch for
// what Ferry does not wrap (servers, security schemes, formats). Changing
// what Ferry relies on (the transformers, the schema registry, the
// OpenAPI path) is at the caller's risk. Service only.
func WithHumaConfig(fn func(*huma.Config)) Option {
	return func(o *options) error {
		if fn == nil {
			return errors.New("ferry: WithHumaConfig: nil function")
		}
		o.humaConfig = append(o.humaConfig, fn)
		return nil
	}
}

// WithRetryScale multiplies the retry delays of the host's subscriptions
// (their backoff after a failed delivery) by scale, which must be
// positive, and at most 1000: ferrytest uses 0.01, so a test of "fails twice, then succeeds"
// takes milliseconds instead of seconds. Host only.
func WithRetryScale(scale float64) Option {
	return func(o *options) error {
		if !(scale > 0) || scale > 1000 {
			return errors.New("ferry: WithRetryScale: the scale must be positive and at most 1000")
		}
		o.retryScale = scale
		return nil
	}
}
