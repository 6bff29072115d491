package deploy

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferrygo/ferry"
)

// What the manifests must agree with: the shop's binary, its Dockerfile and
// README.md.
const (
	image        = "ferry-shop" // the image examples/shop/Dockerfile builds
	portName     = "http"
	httpPort     = 8000 // Ferry's default PORT
	configName   = "shop-config"
	natsURL      = "nats://nats.nats.svc.cluster.local:4222" // Helm release nats in namespace nats
	apiKeyEnv    = "SHOP_API_KEY"
	apiKeySecret = "shop-api-key"
	apiKeyKey    = "api-key"
)

// roles are the shop's services, each selected with -service.
var roles = []string{"gateway", "catalog", "orders", "worker"}

// secrets are the Secrets the manifests may refer to, by name and keys:
// README.md has them created with kubectl, so no value is in the manifests.
var secrets = map[string][]string{apiKeySecret: {apiKeyKey}}

// shopEnv are the shop's own environment variables, beside Ferry's settings.
var shopEnv = []string{apiKeyEnv}

// check is one rule over all the manifests; it returns every breach.
type check func(m *manifests) []error

// checks are the rules the manifests must keep, by name.
var checks = []struct {
	name string
	fn   check
}{
	{"objects", checkObjects},
	{"roles", checkRoles},
	{"services", checkServices},
	{"probes", checkProbes},
	{"image", checkImage},
	{"resources", checkResources},
	{"security", checkSecurity},
	{"env", checkEnv},
	{"config", checkConfig},
	{"kustomization", checkKustomization},
}

func checkAll(m *manifests) (errs []error) {
	for _, c := range checks {
		errs = append(errs, c.fn(m)...)
	}
	return errs
}

// eachContainer runs fn on every container of every Deployment.
func eachContainer(m *manifests, fn func(d *deployment, c *container) []error) (errs []error) {
	for i := range m.deployments {
		d := &m.deployments[i]
		for j := range d.Spec.Template.Spec.Containers {
			c := &d.Spec.Template.Spec.Containers[j]
			for _, err := range fn(d, c) {
				errs = append(errs, fmt.Errorf("%s: container %s: %w", d, c.Name, err))
			}
		}
	}
	return errs
}

func checkObjects(m *manifests) (errs []error) {
	if len(m.objects) == 0 {
		return []error{errors.New("no objects")}
	}
	seen := map[string]bool{}
	for _, o := range m.objects {
		if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
			errs = append(errs, fmt.Errorf("%s: apiVersion, kind and metadata.name are required", o))
		}
		if o.Metadata.Namespace != "" {
			errs = append(errs, fmt.Errorf("%s: metadata.namespace is set; the manifests go to any namespace", o))
		}
		if o.Kind == "Secret" {
			errs = append(errs, fmt.Errorf("%s: a Secret in the manifests; README.md creates it with kubectl", o))
		}
		if key := o.Kind + "/" + o.Metadata.Name; seen[key] {
			errs = append(errs, fmt.Errorf("%s: defined twice", o))
		} else {
			seen[key] = true
		}
	}
	return errs
}

// role returns the service a container's args select.
func role(c *container) (string, error) {
	for i, a := range c.Args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		// -service NAME, -service=NAME, or the same with --.
		name, value, found := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name != "service" {
			continue
		}
		if !found {
			if i+1 == len(c.Args) {
				return "", errors.New("-service without a value")
			}
			value = c.Args[i+1]
		}
		if !slices.Contains(roles, value) {
			return "", fmt.Errorf("-service %q is none of %v", value, roles)
		}
		return value, nil
	}
	return "", fmt.Errorf("args %q select no service (-service NAME); the default runs all of them", c.Args)
}

func checkRoles(m *manifests) []error {
	count := map[string]int{}
	errs := eachContainer(m, func(_ *deployment, c *container) []error {
		r, err := role(c)
		if err != nil {
			return []error{err}
		}
		count[r]++
		return nil
	})
	for _, r := range roles {
		if count[r] != 1 {
			errs = append(errs, fmt.Errorf("service %s is deployed %d times, want once", r, count[r]))
		}
	}
	return errs
}

// isHTTPPort reports whether a port (a name or a number) is the container's.
func isHTTPPort(p string) bool { return p == portName || p == strconv.Itoa(httpPort) }

func checkServices(m *manifests) (errs []error) {
	for _, d := range m.deployments {
		pods := d.Spec.Template.Metadata.Labels
		if !selects(d.Spec.Selector.MatchLabels, pods) {
			errs = append(errs, fmt.Errorf("%s: spec.selector does not select its pod labels %v", d, pods))
		}
		if d.Spec.Replicas < 2 {
			errs = append(errs, fmt.Errorf("%s: %d replicas, want at least 2", d, d.Spec.Replicas))
		}
		found := false
		for _, s := range m.services {
			if !selects(s.Spec.Selector, pods) {
				continue
			}
			found = true
			for _, o := range m.deployments {
				if o.Metadata.Name != d.Metadata.Name && selects(s.Spec.Selector, o.Spec.Template.Metadata.Labels) {
					errs = append(errs, fmt.Errorf("%s: selects the pods of both %s and %s", s, d.Metadata.Name, o.Metadata.Name))
				}
			}
			if !slices.ContainsFunc(s.Spec.Ports, func(p servicePort) bool { return isHTTPPort(p.TargetPort) }) {
				errs = append(errs, fmt.Errorf("%s: no port targets the container port %s", s, portName))
			}
		}
		if !found {
			errs = append(errs, fmt.Errorf("%s: no Service selects its pods %v", d, pods))
		}
	}
	return errs
}

func checkProbes(m *manifests) []error {
	return eachContainer(m, func(_ *deployment, c *container) (errs []error) {
		if !slices.ContainsFunc(c.Ports, func(p containerPort) bool { return p.Name == portName && p.ContainerPort == httpPort }) {
			errs = append(errs, fmt.Errorf("no containerPort %d named %s", httpPort, portName))
		}
		for _, p := range []struct {
			name     string
			probe    *probe
			path     string
			required bool
		}{
			{"readinessProbe", c.ReadinessProbe, "/readyz", true},
			{"livenessProbe", c.LivenessProbe, "/healthz", true},
			{"startupProbe", c.StartupProbe, "/healthz", false},
		} {
			switch {
			case p.probe == nil:
				if p.required {
					errs = append(errs, fmt.Errorf("no %s", p.name))
				}
			case p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || !isHTTPPort(p.probe.HTTPGet.Port):
				errs = append(errs, fmt.Errorf("%s is not GET %s on port %s", p.name, p.path, portName))
			}
		}
		return errs
	})
}

func checkImage(m *manifests) []error {
	return eachContainer(m, func(_ *deployment, c *container) []error {
		name, _, _ := strings.Cut(c.Image, "@")
		if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
			name = name[:i]
		}
		if name != image {
			return []error{fmt.Errorf("image %q, want %s (kustomization.yaml renames it)", c.Image, image)}
		}
		return nil
	})
}

func checkResources(m *manifests) []error {
	return eachContainer(m, func(_ *deployment, c *container) (errs []error) {
		for _, r := range []string{"cpu", "memory"} {
			if c.Resources.Requests[r] == "" {
				errs = append(errs, fmt.Errorf("no resources.requests.%s", r))
			}
		}
		if c.Resources.Limits["memory"] == "" {
			errs = append(errs, errors.New("no resources.limits.memory"))
		}
		return errs
	})
}

func checkSecurity(m *manifests) []error {
	return eachContainer(m, func(d *deployment, c *container) (errs []error) {
		pod, ctr := d.Spec.Template.Spec.SecurityContext, c.SecurityContext
		nonRoot, uid := first(ctr.RunAsNonRoot, pod.RunAsNonRoot), first(ctr.RunAsUser, pod.RunAsUser)
		if nonRoot == nil || !*nonRoot {
			errs = append(errs, errors.New("runAsNonRoot is not true"))
		}
		if uid != nil && *uid == 0 {
			errs = append(errs, errors.New("runAsUser is 0"))
		}
		if p := ctr.AllowPrivilegeEscalation; p == nil || *p {
			errs = append(errs, errors.New("allowPrivilegeEscalation is not false"))
		}
		if r := ctr.ReadOnlyRootFilesystem; r == nil || !*r {
			errs = append(errs, errors.New("readOnlyRootFilesystem is not true"))
		}
		if !slices.Contains(ctr.Capabilities.Drop, "ALL") {
			errs = append(errs, errors.New("capabilities.drop lacks ALL"))
		}
		return errs
	})
}

// first returns the first value set: a container's setting overrides its pod's.
func first[T any](values ...*T) *T {
	for _, v := range values {
		if v != nil {
			return v
		}
	}
	return nil
}

// knownEnv reports whether a variable is a Ferry setting or the shop's.
func knownEnv(name string) bool {
	return slices.Contains(shopEnv, name) || slices.ContainsFunc(ferry.ConfigSettings(), func(s ferry.Setting) bool { return s.Env == name })
}

func checkEnv(m *manifests) []error {
	return eachContainer(m, func(d *deployment, c *container) (errs []error) {
		for _, f := range c.EnvFrom {
			switch {
			case f.ConfigMapRef != nil:
				cm := m.configMap(f.ConfigMapRef.Name)
				if cm == nil {
					errs = append(errs, fmt.Errorf("envFrom: no ConfigMap %s", f.ConfigMapRef.Name))
					continue
				}
				for k := range cm.Data {
					if !knownEnv(k) {
						errs = append(errs, fmt.Errorf("envFrom %s: %s is no Ferry setting nor the shop's", cm.Metadata.Name, k))
					}
				}
			case f.SecretRef != nil:
				errs = append(errs, fmt.Errorf("envFrom: Secret %s: name each variable taken from a Secret", f.SecretRef.Name))
			}
		}
		apiKey := false
		for _, e := range c.Env {
			if !knownEnv(e.Name) {
				errs = append(errs, fmt.Errorf("env %s is no Ferry setting nor the shop's", e.Name))
			}
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
				if cm := m.configMap(r.Name); cm == nil {
					errs = append(errs, fmt.Errorf("env %s: no ConfigMap %s", e.Name, r.Name))
				} else if _, ok := cm.Data[r.Key]; !ok {
					errs = append(errs, fmt.Errorf("env %s: ConfigMap %s has no key %s", e.Name, r.Name, r.Key))
				}
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				if !slices.Contains(secrets[r.Name], r.Key) {
					errs = append(errs, fmt.Errorf("env %s: Secret %s key %s is not one README.md creates", e.Name, r.Name, r.Key))
				}
				apiKey = apiKey || e.Name == apiKeyEnv && r.Name == apiKeySecret && r.Key == apiKeyKey
			}
		}
		if r, _ := role(c); r == "gateway" && !apiKey {
			errs = append(errs, fmt.Errorf("the gateway has no %s from Secret %s key %s", apiKeyEnv, apiKeySecret, apiKeyKey))
		}
		return errs
	})
}

// environment returns a container's environment as Kubernetes sets it:
// env over envFrom. Values from Secrets are left out.
func environment(m *manifests, c *container) map[string]string {
	env := map[string]string{}
	for _, f := range c.EnvFrom {
		if f.ConfigMapRef != nil {
			if cm := m.configMap(f.ConfigMapRef.Name); cm != nil {
				for k, v := range cm.Data {
					env[k] = v
				}
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.ConfigMapKeyRef != nil:
			if cm := m.configMap(e.ValueFrom.ConfigMapKeyRef.Name); cm != nil {
				env[e.Name] = cm.Data[e.ValueFrom.ConfigMapKeyRef.Key]
			}
		}
	}
	return env
}

// loadConfig parses an environment with Ferry's own parser, passing it as
// flags so that the test's own environment plays no part.
func loadConfig(env map[string]string) (ferry.Config, error) {
	parse := func(args []string) (ferry.Config, error) {
		fs := flag.NewFlagSet("shop", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		return ferry.LoadConfig(fs, args)
	}
	var args []string
	for _, s := range ferry.ConfigSettings() {
		if v, ok := env[s.Env]; ok {
			arg := "-" + s.Flag + "=" + v
			if _, err := parse([]string{arg}); err != nil {
				return ferry.Config{}, fmt.Errorf("%s=%q: %w", s.Env, v, err)
			}
			args = append(args, arg)
		}
	}
	return parse(args)
}

func checkConfig(m *manifests) []error {
	return eachContainer(m, func(d *deployment, c *container) (errs []error) {
		env := environment(m, c)
		for _, want := range []struct{ name, value string }{
			// Without it a service runs an embedded broker, which would
			// write to the read-only disk and share nothing.
			{"FERRY_NATS_URL", natsURL},
			{"FERRY_STREAM_REPLICAS", "3"},
			{"FERRY_LOG_FORMAT", "json"},
		} {
			if env[want.name] != want.value {
				errs = append(errs, fmt.Errorf("%s=%q, want %q", want.name, env[want.name], want.value))
			}
		}
		cfg, err := loadConfig(env)
		if err != nil {
			return append(errs, err)
		}
		if cfg.DrainDelay <= 0 {
			errs = append(errs, errors.New("FERRY_DRAIN_DELAY is not set: Services would still send to a pod closing its listener"))
		}
		grace := cfg.ShutdownGrace
		if grace <= 0 {
			grace = ferry.DefaultShutdownGrace
		}
		period := int64(30) // Kubernetes' default
		if p := d.Spec.Template.Spec.TerminationGracePeriodSeconds; p != nil {
			period = *p
		}
		if time.Duration(period)*time.Second <= cfg.DrainDelay+grace {
			errs = append(errs, fmt.Errorf("terminationGracePeriodSeconds %d is not more than FERRY_DRAIN_DELAY %s + FERRY_SHUTDOWN_GRACE %s: the pod would be killed while draining",
				period, cfg.DrainDelay, grace))
		}
		return errs
	})
}

func checkKustomization(m *manifests) (errs []error) {
	k := m.kustomization
	if k.Kind != "Kustomization" {
		errs = append(errs, fmt.Errorf("%s: kind %q, want Kustomization", kustomizationFile, k.Kind))
	}
	for _, f := range m.files {
		if !slices.Contains(k.Resources, f) {
			errs = append(errs, fmt.Errorf("%s: %s is not among its resources", kustomizationFile, f))
		}
	}
	for _, r := range k.Resources {
		if !slices.Contains(m.files, r) {
			errs = append(errs, fmt.Errorf("%s: resource %s is no file of kubernetes/", kustomizationFile, r))
		}
	}
	if !slices.ContainsFunc(k.Images, func(i kustomizeImage) bool { return i.Name == image }) {
		errs = append(errs, fmt.Errorf("%s: no images entry for %s", kustomizationFile, image))
	}
	return errs
}
