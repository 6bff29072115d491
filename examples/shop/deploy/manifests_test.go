package deploy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The subset of the Kubernetes objects the tests read. Fields the tests do
// not check are ignored when decoding.

type meta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

type header struct {
	File       string `yaml:"-"` // the file it came from
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   meta   `yaml:"metadata"`
}

func (h header) String() string { return fmt.Sprintf("%s: %s %s", h.File, h.Kind, h.Metadata.Name) }

type deployment struct {
	header `yaml:",inline"`
	Spec   struct {
		Replicas int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata meta    `yaml:"metadata"`
			Spec     podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int64          `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               securityContext `yaml:"securityContext"`
	Containers                    []container     `yaml:"containers"`
}

type securityContext struct {
	RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
	RunAsUser                *int64 `yaml:"runAsUser"`
	AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
	ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
	Capabilities             struct {
		Drop []string `yaml:"drop"`
	} `yaml:"capabilities"`
}

type container struct {
	Name    string          `yaml:"name"`
	Image   string          `yaml:"image"`
	Args    []string        `yaml:"args"`
	Ports   []containerPort `yaml:"ports"`
	Env     []envVar        `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *nameRef `yaml:"configMapRef"`
		SecretRef    *nameRef `yaml:"secretRef"`
	} `yaml:"envFrom"`
	StartupProbe    *probe          `yaml:"startupProbe"`
	ReadinessProbe  *probe          `yaml:"readinessProbe"`
	LivenessProbe   *probe          `yaml:"livenessProbe"`
	Resources       resources       `yaml:"resources"`
	SecurityContext securityContext `yaml:"securityContext"`
}

type containerPort struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
}

type nameRef struct {
	Name string `yaml:"name"`
}

type keyRef struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		ConfigMapKeyRef *keyRef `yaml:"configMapKeyRef"`
		SecretKeyRef    *keyRef `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"` // a name or a number
	} `yaml:"httpGet"`
}

type resources struct {
	Requests map[string]string `yaml:"requests"`
	Limits   map[string]string `yaml:"limits"`
}

type service struct {
	header `yaml:",inline"`
	Spec   struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []servicePort     `yaml:"ports"`
	} `yaml:"spec"`
}

type servicePort struct {
	Name       string `yaml:"name"`
	Port       int    `yaml:"port"`
	TargetPort string `yaml:"targetPort"` // a name or a number
}

type configMap struct {
	header `yaml:",inline"`
	Data   map[string]string `yaml:"data"`
}

type kustomization struct {
	APIVersion string           `yaml:"apiVersion"`
	Kind       string           `yaml:"kind"`
	Resources  []string         `yaml:"resources"`
	Images     []kustomizeImage `yaml:"images"`
}

type kustomizeImage struct {
	Name    string `yaml:"name"`
	NewName string `yaml:"newName"`
	NewTag  string `yaml:"newTag"`
}

// manifests is everything in kubernetes/.
type manifests struct {
	files         []string // the YAML files besides kustomization.yaml
	objects       []header // every document of those files
	deployments   []deployment
	services      []service
	configMaps    []configMap
	kustomization kustomization
}

const kustomizationFile = "kustomization.yaml"

// load reads and decodes every YAML file in dir.
func load(dir string) (*manifests, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	m := &manifests{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || (filepath.Ext(name) != ".yaml" && filepath.Ext(name) != ".yml") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if name == kustomizationFile {
			if err := yaml.Unmarshal(data, &m.kustomization); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			continue
		}
		m.files = append(m.files, name)
		if err := m.decode(name, data); err != nil {
			return nil, err
		}
	}
	slices.Sort(m.files)
	return m, nil
}

// decode adds each document of one file.
func (m *manifests) decode(file string, data []byte) error {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	for i := 1; ; i++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", file, i, err)
		}
		if len(doc.Content) == 0 || doc.Content[0].Tag == "!!null" {
			continue // an empty document, as after a trailing ---
		}
		var h header
		if err := doc.Decode(&h); err != nil {
			return fmt.Errorf("%s: document %d: %w", file, i, err)
		}
		h.File = file
		m.objects = append(m.objects, h)
		switch h.Kind {
		case "Deployment":
			var d deployment
			err = doc.Decode(&d)
			d.header = h
			m.deployments = append(m.deployments, d)
		case "Service":
			var s service
			err = doc.Decode(&s)
			s.header = h
			m.services = append(m.services, s)
		case "ConfigMap":
			var c configMap
			err = doc.Decode(&c)
			c.header = h
			m.configMaps = append(m.configMaps, c)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", h, err)
		}
	}
}

func (m *manifests) configMap(name string) *configMap {
	for i := range m.configMaps {
		if m.configMaps[i].Metadata.Name == name {
			return &m.configMaps[i]
		}
	}
	return nil
}

// selects reports whether a selector picks pods with these labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
