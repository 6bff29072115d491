package ferry

// The flag.Value types of the configuration settings: each parses and
// checks one kind of value, so a bad flag or environment value fails at
// start with a message that names it.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

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

type stringValue struct{ p *string }

func (v stringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v stringValue) Set(s string) error { *v.p = s; return nil }

type boolValue struct{ p *bool }

func (v boolValue) String() string {
	if v.p == nil {
		return "false"
	}
	return strconv.FormatBool(*v.p)
}

func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("must be true or false")
	}
	*v.p = b
	return nil
}

// IsBoolFlag lets -nats-embed stand alone on the command line.
func (v boolValue) IsBoolFlag() bool { return true }

type bytesValue struct {
	p   *int64
	max int64
}

func (v bytesValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.FormatInt(*v.p, 10)
}

func (v bytesValue) Set(s string) error {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 || n > v.max/mult {
		return fmt.Errorf("must be a positive number of bytes up to %d MiB, optionally with KiB, MiB or GiB", v.max>>20)
	}
	*v.p = n * mult
	return nil
}

type syncValue struct {
	always   *bool
	interval *time.Duration
}

func (v syncValue) String() string {
	if v.always == nil {
		return ""
	}
	if *v.always {
		return "always"
	}
	return v.interval.String()
}

func (v syncValue) Set(s string) error {
	if s == "always" {
		*v.always, *v.interval = true, 0
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return errors.New("must be always or a positive interval such as 1s")
	}
	*v.always, *v.interval = false, d
	return nil
}

type intValue struct {
	p        *int
	min, max int
}

func (v intValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.Itoa(*v.p)
}

func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < v.min || n > v.max {
		return fmt.Errorf("must be a whole number from %d to %d", v.min, v.max)
	}
	*v.p = n
	return nil
}

// listValue is a comma-separated list, kept as one string (so Config
// stays comparable) with spaces and empty items removed; check, when set,
// vets each item.
type listValue struct {
	p     *string
	check func(string) error
}

func (v listValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v listValue) Set(s string) error {
	items := splitList(s)
	for _, item := range items {
		if v.check != nil {
			if err := v.check(item); err != nil {
				return err
			}
		}
	}
	*v.p = strings.Join(items, ",")
	return nil
}

// splitList returns the items of a comma-separated list, trimmed, without
// empty ones.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// urlValue is an http or https URL.
type urlValue struct{ p *string }

func (v urlValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v urlValue) Set(s string) error {
	if err := checkHTTPURL(s); err != nil {
		return err
	}
	*v.p = s
	return nil
}
