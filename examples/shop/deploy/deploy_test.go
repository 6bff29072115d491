package deploy

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const manifestDir = "kubernetes"

func loadManifests(t *testing.T, dir string) *manifests {
	t.Helper()
	m, err := load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestManifests(t *testing.T) {
	m := loadManifests(t, manifestDir)
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			for _, err := range c.fn(m) {
				t.Error(err)
			}
		})
	}
}

// Helpers that reach into loaded manifests, for the breakage cases.

func deploymentOf(t *testing.T, m *manifests, name string) *deployment {
	t.Helper()
	for i := range m.deployments {
		if m.deployments[i].Metadata.Name == name {
			return &m.deployments[i]
		}
	}
	t.Fatalf("no Deployment %s", name)
	return nil
}

func containerOf(t *testing.T, m *manifests, name string) *container {
	t.Helper()
	return &deploymentOf(t, m, name).Spec.Template.Spec.Containers[0]
}

func serviceOf(t *testing.T, m *manifests, name string) *service {
	t.Helper()
	for i := range m.services {
		if m.services[i].Metadata.Name == name {
			return &m.services[i]
		}
	}
	t.Fatalf("no Service %s", name)
	return nil
}

// TestManifestsCatchBreakage breaks the real manifests one way at a time
// and expects the checks to say so.
func TestManifestsCatchBreakage(t *testing.T) {
	no := false
	tests := []struct {
		name   string
		mutate func(t *testing.T, m *manifests)
		want   string // in one of the errors
	}{
		{"object without a name", func(t *testing.T, m *manifests) { m.objects[0].Metadata.Name = "" }, "metadata.name"},
		{"object with a namespace", func(t *testing.T, m *manifests) { m.objects[0].Metadata.Namespace = "shop" }, "namespace"},
		{"unknown service", func(t *testing.T, m *manifests) {
			containerOf(t, m, "shop-worker").Args = []string{"-service", "billing"}
		}, `"billing"`},
		{"no service chosen", func(t *testing.T, m *manifests) { containerOf(t, m, "shop-orders").Args = nil }, "select no service"},
		{"service deployed twice", func(t *testing.T, m *manifests) { containerOf(t, m, "shop-orders").Args = []string{"-service=catalog"} }, "catalog is deployed 2 times"},
		{"too few replicas", func(t *testing.T, m *manifests) { deploymentOf(t, m, "shop-catalog").Spec.Replicas = 1 }, "at least 2"},
		{"selector off the pod labels", func(t *testing.T, m *manifests) {
			deploymentOf(t, m, "shop-catalog").Spec.Selector.MatchLabels["app.kubernetes.io/component"] = "catalogue"
		}, "spec.selector"},
		{"Service selecting nothing", func(t *testing.T, m *manifests) {
			serviceOf(t, m, "shop-catalog").Spec.Selector["app.kubernetes.io/component"] = "catalogue"
		}, "no Service selects"},
		{"Service selecting every pod", func(t *testing.T, m *manifests) {
			delete(serviceOf(t, m, "shop-gateway").Spec.Selector, "app.kubernetes.io/component")
		}, "selects the pods of both"},
		{"Service on another port", func(t *testing.T, m *manifests) { serviceOf(t, m, "shop-orders").Spec.Ports[0].TargetPort = "web" }, "no port targets"},
		{"port renamed", func(t *testing.T, m *manifests) { containerOf(t, m, "shop-orders").Ports[0].Name = "web" }, "containerPort"},
		{"readiness on /healthz", func(t *testing.T, m *manifests) {
			containerOf(t, m, "shop-gateway").ReadinessProbe.HTTPGet.Path = "/healthz"
		}, "readinessProbe"},
		{"liveness on another port", func(t *testing.T, m *manifests) { containerOf(t, m, "shop-worker").LivenessProbe.HTTPGet.Port = "9090" }, "livenessProbe"},
		{"no readiness", func(t *testing.T, m *manifests) { containerOf(t, m, "shop-catalog").ReadinessProbe = nil }, "no readinessProbe"},
		{"another image", func(t *testing.T, m *manifests) { containerOf(t, m, "shop-catalog").Image = "nginx:1.27" }, "image"},
		{"no requests", func(t *testing.T, m *manifests) { containerOf(t, m, "shop-orders").Resources.Requests = nil }, "requests.cpu"},
		{"no memory limit", func(t *testing.T, m *manifests) { containerOf(t, m, "shop-orders").Resources.Limits = nil }, "limits.memory"},
		{"root", func(t *testing.T, m *manifests) {
			deploymentOf(t, m, "shop-worker").Spec.Template.Spec.SecurityContext.RunAsNonRoot = &no
		}, "runAsNonRoot"},
		{"writable root filesystem", func(t *testing.T, m *manifests) {
			containerOf(t, m, "shop-worker").SecurityContext.ReadOnlyRootFilesystem = &no
		}, "readOnlyRootFilesystem"},
		{"capabilities kept", func(t *testing.T, m *manifests) {
			containerOf(t, m, "shop-worker").SecurityContext.Capabilities.Drop = nil
		}, "ALL"},
		{"missing ConfigMap", func(t *testing.T, m *manifests) {
			containerOf(t, m, "shop-gateway").EnvFrom[0].ConfigMapRef.Name = "shop-cfg"
		}, "no ConfigMap shop-cfg"},
		{"unknown setting", func(t *testing.T, m *manifests) { m.configMap(configName).Data["FERRY_NAT_URL"] = natsURL }, "FERRY_NAT_URL"},
		{"unknown Secret", func(t *testing.T, m *manifests) {
			containerOf(t, m, "shop-gateway").Env[0].ValueFrom.SecretKeyRef.Name = "api-key"
		}, "Secret api-key"},
		{"gateway without its key", func(t *testing.T, m *manifests) { containerOf(t, m, "shop-gateway").Env = nil }, apiKeyEnv},
		{"no NATS URL", func(t *testing.T, m *manifests) { delete(m.configMap(configName).Data, "FERRY_NATS_URL") }, "FERRY_NATS_URL"},
		{"one stream replica", func(t *testing.T, m *manifests) { m.configMap(configName).Data["FERRY_STREAM_REPLICAS"] = "1" }, "FERRY_STREAM_REPLICAS"},
		{"invalid drain delay", func(t *testing.T, m *manifests) { m.configMap(configName).Data["FERRY_DRAIN_DELAY"] = "5 seconds" }, "FERRY_DRAIN_DELAY"},
		{"no drain delay", func(t *testing.T, m *manifests) { delete(m.configMap(configName).Data, "FERRY_DRAIN_DELAY") }, "FERRY_DRAIN_DELAY"},
		{"grace period too short", func(t *testing.T, m *manifests) {
			period := int64(10)
			deploymentOf(t, m, "shop-orders").Spec.Template.Spec.TerminationGracePeriodSeconds = &period
		}, "terminationGracePeriodSeconds"},
		{"file left out of the kustomization", func(t *testing.T, m *manifests) { m.kustomization.Resources = m.kustomization.Resources[1:] }, "not among its resources"},
		{"kustomization naming a missing file", func(t *testing.T, m *manifests) {
			m.kustomization.Resources = append(m.kustomization.Resources, "billing.yaml")
		}, "billing.yaml"},
		{"kustomization without the image", func(t *testing.T, m *manifests) { m.kustomization.Images = nil }, "images"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := loadManifests(t, manifestDir)
			tt.mutate(t, m)
			errs := checkAll(m)
			if len(errs) == 0 {
				t.Fatal("no check failed")
			}
			for _, err := range errs {
				if strings.Contains(err.Error(), tt.want) {
					return
				}
			}
			t.Errorf("no error mentions %q: %v", tt.want, errs)
		})
	}
}

// TestManifestsCatchBrokenFiles breaks the files themselves, in a copy.
func TestManifestsCatchBrokenFiles(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		replace [2]string
	}{
		{"invalid YAML", "catalog.yaml", [2]string{"replicas: 2", "replicas: [2"}},
		{"bad indentation", "orders.yaml", [2]string{"\n  replicas: 2", "\nreplicas: 2\n   x: 1"}},
		{"no kind", "worker.yaml", [2]string{"kind: Deployment", "type: Deployment"}},
		{"no apiVersion", "config.yaml", [2]string{"apiVersion: v1", "version: v1"}},
		{"probe path misspelt", "gateway.yaml", [2]string{"path: /readyz", "path: /ready"}},
		{"probe key misspelt", "gateway.yaml", [2]string{"readinessProbe:", "readinesProbe:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			entries, err := os.ReadDir(manifestDir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				data, err := os.ReadFile(filepath.Join(manifestDir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if e.Name() == tt.file {
					broken := strings.Replace(string(data), tt.replace[0], tt.replace[1], 1)
					if broken == string(data) {
						t.Fatalf("%s has no %q", tt.file, tt.replace[0])
					}
					data = []byte(broken)
				}
				if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			m, err := load(dir)
			if err != nil {
				t.Log("parse:", err)
				return
			}
			errs := checkAll(m)
			if len(errs) == 0 {
				t.Fatal("no check failed")
			}
			t.Log("check:", errs[0])
		})
	}
}

// TestNATSValues checks the Helm values README.md installs NATS with: a
// cluster with JetStream on disk, large enough for the streams' replicas.
func TestNATSValues(t *testing.T) {
	data, err := os.ReadFile("nats-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Config struct {
			Cluster struct {
				Enabled  bool `yaml:"enabled"`
				Replicas int  `yaml:"replicas"`
			} `yaml:"cluster"`
			JetStream struct {
				Enabled   bool `yaml:"enabled"`
				FileStore struct {
					Enabled *bool `yaml:"enabled"`
					PVC     struct {
						Enabled *bool  `yaml:"enabled"`
						Size    string `yaml:"size"`
					} `yaml:"pvc"`
				} `yaml:"fileStore"`
			} `yaml:"jetstream"`
		} `yaml:"config"`
	}
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	cm := loadManifests(t, manifestDir).configMap(configName)
	if cm == nil {
		t.Fatalf("no ConfigMap %s", configName)
	}
	replicas, err := strconv.Atoi(cm.Data["FERRY_STREAM_REPLICAS"])
	if err != nil {
		t.Fatal(err)
	}
	c, js := v.Config.Cluster, v.Config.JetStream
	if !c.Enabled || c.Replicas < replicas {
		t.Errorf("config.cluster: enabled %v, %d replicas; want a cluster of at least FERRY_STREAM_REPLICAS (%d) nodes", c.Enabled, c.Replicas, replicas)
	}
	if !js.Enabled || (js.FileStore.Enabled != nil && !*js.FileStore.Enabled) || (js.FileStore.PVC.Enabled != nil && !*js.FileStore.PVC.Enabled) {
		t.Error("config.jetstream: want JetStream enabled with its file store on a volume")
	}
}
