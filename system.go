package ferry

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
)

// Part is one service of a system of services that [RunSystem] runs: its
// name, and how to build it. New is called only when the service is
// selected, after the flags are parsed (it may read their values); the
// service it returns is given no configuration of its own: the host's
// applies (see [Host.Add]).
type Part struct {
	// Name is the service's name, as -service selects it.
	Name string
	// New builds the service.
	New func() (*Service, error)
	// Started, when set, is called once the host runs the selected
	// services, with the part's: to seed its state, say where it listens,
	// drive it. It runs in a goroutine of its own beside the services and
	// may return at once or keep running until ctx ends, when the system
	// begins to stop; RunSystem waits for it then, within the shutdown's
	// grace period. An error — or a panic — stops the system, and
	// RunSystem returns it.
	Started func(ctx context.Context, svc *Service) error
}

// RunSystem runs the services of a system that args select, in one host,
// until ctx ends or a signal stops it ([Host.Run]). The flag -service
// selects them: "all" (the default) or a comma-separated list of names;
// the configuration comes from the other flags and the environment
// ([LoadConfig]), with fs's own flags (fs may be nil; it must not define
// -service). Run together, the
// first service listens on -addr and each other on the next port; run
// alone, each listens on -addr. So one program is the whole system on a
// laptop (`go run .`) and each of its services in production (`-service
// orders`, two processes for two replicas), against the broker the
// configuration names. On the embedded broker (no FERRY_NATS_URL), the
// broker listens on a free loopback port unless FERRY_NATS_LISTEN says
// otherwise, admitting only the NKey user whose seed the data directory
// keeps (mode 0600), so the system's other processes and the ferry
// command, started with the same data directory by the same user, join
// it, and other users of the machine do not.
func RunSystem(ctx context.Context, fs *flag.FlagSet, args []string, parts ...Part) error {
	if len(parts) == 0 {
		return errors.New("ferry: RunSystem: no parts")
	}
	names := make([]string, len(parts))
	for i, p := range parts {
		switch {
		case p.Name == "" || p.New == nil:
			return fmt.Errorf("ferry: RunSystem: part %d has no name or no New", i)
		case p.Name == "all" || strings.ContainsAny(p.Name, ", "):
			return fmt.Errorf("ferry: RunSystem: part %q: a name is not \"all\" and has no comma or space", p.Name)
		}
		if slices.Contains(names[:i], p.Name) {
			return fmt.Errorf("ferry: RunSystem: two parts named %q", p.Name)
		}
		names[i] = p.Name
	}
	if fs == nil {
		fs = flag.NewFlagSet("system", flag.ContinueOnError)
	}
	if fs.Lookup("service") != nil {
		return errors.New("ferry: RunSystem: the flag set defines -service, the flag RunSystem selects services with")
	}
	which := fs.String("service", "all", "the services to run: all, or a comma-separated list of "+strings.Join(names, ", "))
	cfg, err := LoadConfig(fs, args)
	if err != nil {
		return err
	}
	guard := false
	if cfg.NATSURL == "" && cfg.NATSListen == "" {
		// On the embedded broker, a system's processes and the ferry
		// command join one another through the data directory: the broker
		// listens on loopback, admitting only the data directory's NKey.
		cfg.NATSListen, guard = "127.0.0.1:0", true
	}
	selected, err := selectParts(*which, parts, names)
	if err != nil {
		return err
	}
	host, err := NewHost(WithConfig(cfg))
	if err != nil {
		return err
	}
	host.guardListen = guard
	var hooks []func(context.Context) error
	for _, p := range selected {
		svc, err := p.New()
		if err != nil {
			return fmt.Errorf("ferry: service %s: %w", p.Name, err)
		}
		if svc == nil {
			return fmt.Errorf("ferry: RunSystem: part %q built no service", p.Name)
		}
		if svc.name != p.Name {
			return fmt.Errorf("ferry: RunSystem: part %q built service %q", p.Name, svc.name)
		}
		if err := host.Add(svc); err != nil {
			return err
		}
		if p.Started != nil {
			hook := p.Started
			hooks = append(hooks, func(ctx context.Context) error { return hook(ctx, svc) })
		}
	}
	return host.run(ctx, hooks)
}

// selectParts returns the parts -service names, in the parts' order.
func selectParts(which string, parts []Part, names []string) ([]Part, error) {
	if which == "all" {
		return parts, nil
	}
	want := map[string]bool{}
	for _, name := range strings.Split(which, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(names, name) {
			return nil, fmt.Errorf("-service %q: want all, or a comma-separated list of %s", which, strings.Join(names, ", "))
		}
		want[name] = true
	}
	var selected []Part
	for _, p := range parts {
		if want[p.Name] {
			selected = append(selected, p)
		}
	}
	return selected, nil
}
