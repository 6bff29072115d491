package ferry

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
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
	// LogLevel is the minimum level logged: debug, info, warn or error.
	// Flag -log-level, environment FERRY_LOG_LEVEL. Default info.
	LogLevel slog.Level
	// LogFormat is the log line format: text or json.
	// Flag -log-format, environment FERRY_LOG_FORMAT. Default text.
	LogFormat string
}

// Defaults of the settings whose zero value means "default".
const (
	DefaultAddr          = ":8000"
	DefaultShutdownGrace = 25 * time.Second
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
	out := make([]Setting, 0, 4)
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
		{Setting{"log-level", "FERRY_LOG_LEVEL", "info", "minimum log level: debug, info, warn or error"}, levelValue{&c.LogLevel}},
		{Setting{"log-format", "FERRY_LOG_FORMAT", "text", "log format: text or json"}, choiceValue{&c.LogFormat, []string{"text", "json"}}},
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

type addrValue struct{ p *string }

func (v addrValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v addrValue) Set(s string) error {
	if _, err := strconv.ParseUint(s, 10, 16); err == nil {
		s = ":" + s
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("not host:port, :port or a port number: %w", err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	*v.p = net.JoinHostPort(host, port)
	return nil
}

type durationValue struct{ p *time.Duration }

func (v durationValue) String() string {
	if v.p == nil {
		return ""
	}
	return v.p.String()
}

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if d < 0 {
		return errors.New("must not be negative")
	}
	*v.p = d
	return nil
}

type levelValue struct{ p *slog.Level }

func (v levelValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.ToLower(v.p.String())
}

func (v levelValue) Set(s string) error { return v.p.UnmarshalText([]byte(s)) }

type choiceValue struct {
	p       *string
	choices []string
}

func (v choiceValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v choiceValue) Set(s string) error {
	for _, c := range v.choices {
		if s == c {
			*v.p = s
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(v.choices, ", "))
}
