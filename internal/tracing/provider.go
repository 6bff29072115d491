package tracing

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// The standard environment variables read here; the exporters, the
// sampler (OTEL_TRACES_SAMPLER), the batch processor (OTEL_BSP_*) and the
// resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) read their own.
const (
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
	EnvExporter       = "OTEL_TRACES_EXPORTER"
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
)

// Exporters returns the exporters the environment asks for: the names in
// OTEL_TRACES_EXPORTER (otlp, console; none alone for none), or otlp when
// it is unset and an OTLP endpoint is. It returns none when tracing is not
// configured — no exporter and no endpoint — or OTEL_SDK_DISABLED is true,
// and an error for a name it does not know.
func Exporters(getenv func(string) string) ([]string, error) {
	if v := strings.TrimSpace(getenv(EnvSDKDisabled)); v != "" {
		disabled, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: must be true or false", EnvSDKDisabled, v)
		}
		if disabled {
			return nil, nil
		}
	}
	list := strings.TrimSpace(getenv(EnvExporter))
	if list == "" {
		if getenv(EnvEndpoint) == "" && getenv(EnvTracesEndpoint) == "" {
			return nil, nil
		}
		return []string{"otlp"}, nil
	}
	var out []string
	for name := range strings.SplitSeq(list, ",") {
		switch name = strings.TrimSpace(name); name {
		case "none":
		case "otlp", "console":
			out = append(out, name)
		default:
			return nil, fmt.Errorf("%s=%q: %q is not an exporter Ferry knows: use otlp, console or none", EnvExporter, list, name)
		}
	}
	return out, nil
}

// Protocol returns the OTLP protocol the environment asks for:
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL,
// else http/protobuf.
func Protocol(getenv func(string) string) (string, error) {
	p, name := getenv(EnvTracesProtocol), EnvTracesProtocol
	if p == "" {
		p, name = getenv(EnvProtocol), EnvProtocol
	}
	switch p {
	case "":
		return "http/protobuf", nil
	case "http/protobuf", "grpc":
		return p, nil
	}
	return "", fmt.Errorf("%s=%q: use http/protobuf or grpc", name, p)
}

// NewProvider returns the SDK tracer provider the OTEL_* environment
// configures for one service — its exporters behind batch processors, the
// SDK's sampler, and a resource naming the service and its version
// (OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override them) — or nil
// when tracing is not configured (see [Exporters]). getenv reads the
// variables decided here (os.Getenv in production); the exporters read
// their own from the process's environment.
func NewProvider(ctx context.Context, getenv func(string) string, service, version string) (*sdktrace.TracerProvider, error) {
	names, err := Exporters(getenv)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	opts := make([]sdktrace.TracerProviderOption, 0, len(names)+1)
	for _, name := range names {
		exp, err := newExporter(ctx, getenv, name)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithAttributes(semconv.ServiceNameKey.String(service), semconv.ServiceVersionKey.String(version)),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("resource (%s, %s): %w", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", err)
	}
	return sdktrace.NewTracerProvider(append(opts, sdktrace.WithResource(res))...), nil
}

func newExporter(ctx context.Context, getenv func(string) string, name string) (sdktrace.SpanExporter, error) {
	if name == "console" {
		return stdouttrace.New(stdouttrace.WithWriter(os.Stdout))
	}
	protocol, err := Protocol(getenv)
	if err != nil {
		return nil, err
	}
	var exp sdktrace.SpanExporter
	if protocol == "grpc" {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter (%s): %w", protocol, err)
	}
	return exp, nil
}
