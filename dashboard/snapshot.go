package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ferrygo/ferry"
)

// Bounds on what one snapshot holds.
const (
	maxServices    = 100 // instances beyond it are counted, not listed
	maxTopics      = 200
	maxDeadLetters = 50
	previewBytes   = 300
	partTimeout    = 5 * time.Second
)

// Snapshot is what the page shows, refreshed every interval.
type Snapshot struct {
	At          time.Time          `json:"at"`
	Interval    float64            `json:"interval"` // seconds
	Services    []ServiceView      `json:"services"`
	Topics      []ferry.TopicStats `json:"topics"`
	DeadLetters DeadLettersView    `json:"dead_letters"`
	Jobs        JobsView           `json:"jobs"`
	Graph       Graph              `json:"graph"`
	// Errors says, per section, why it could not be read this time.
	Errors map[string]string `json:"errors,omitempty"`
}

// ServiceView is a service's instances and its endpoints' traffic summed
// over them.
type ServiceView struct {
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Versions    []string       `json:"versions"`
	Instances   []InstanceView `json:"instances"`
	Endpoints   []EndpointView `json:"endpoints"`
	Jobs        []string       `json:"jobs,omitempty"`
}

// InstanceView is one instance answering discovery.
type InstanceView struct {
	ID      string    `json:"id"`
	Version string    `json:"version"`
	HTTP    string    `json:"http,omitempty"`
	Started time.Time `json:"started"`
}

// EndpointView is an endpoint's last minute, per transport.
type EndpointView struct {
	Name    string      `json:"name"`
	Subject string      `json:"subject"`
	Method  string      `json:"method,omitempty"`
	Path    string      `json:"path,omitempty"`
	HTTP    TrafficView `json:"http"`
	NATS    TrafficView `json:"nats"`
	// Recent is false when no instance reports recent figures.
	Recent bool `json:"recent"`
}

// TrafficView is a transport's requests: rates and counts summed over the
// instances, latencies the worst instance's, in milliseconds.
type TrafficView struct {
	Rate     float64 `json:"rate"`
	Requests uint64  `json:"requests"`
	Errors   uint64  `json:"errors"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
}

// DeadLettersView is the newest dead letters.
type DeadLettersView struct {
	Total int              `json:"total"`
	Items []DeadLetterView `json:"items"`
}

// DeadLetterView is one dead letter, its payload cut short.
type DeadLetterView struct {
	Sequence   uint64    `json:"seq"`
	Topic      string    `json:"topic"`
	Service    string    `json:"service"`
	Consumer   string    `json:"consumer"`
	Job        bool      `json:"job,omitempty"`
	Error      string    `json:"error"`
	Deliveries uint64    `json:"deliveries"`
	Time       time.Time `json:"time"`
	MessageID  string    `json:"message_id,omitempty"`
	Size       int       `json:"size"`
	Preview    string    `json:"preview"`
}

// builder makes snapshots; it keeps what outlives one refresh (the
// AsyncAPI documents, the job lists' cursors).
type builder struct {
	c        *ferry.Client
	interval time.Duration
	log      *slog.Logger
	docs     *docCache
	jobs     *jobTail
}

func newBuilder(c *ferry.Client, cfg Config) *builder {
	return &builder{c: c, interval: cfg.Interval, log: cfg.Logger, docs: newDocCache(c), jobs: newJobTail(c)}
}

// build reads every section at once, each within partTimeout.
func (b *builder) build(ctx context.Context) *Snapshot {
	snap := &Snapshot{At: time.Now().UTC(), Interval: b.interval.Seconds(), Services: []ServiceView{}, Topics: []ferry.TopicStats{},
		DeadLetters: DeadLettersView{Items: []DeadLetterView{}}, Jobs: JobsView{Kinds: []KindView{}, Latest: []JobView{}}}
	var mu sync.Mutex
	fail := func(section string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if snap.Errors == nil {
			snap.Errors = map[string]string{}
		}
		snap.Errors[section] = b.describe(section, err)
	}
	var wg sync.WaitGroup
	part := func(f func(ctx context.Context)) {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, partTimeout)
			defer cancel()
			f(pctx)
		})
	}
	var instances []ferry.ServiceInstance
	var topics []ferry.TopicStats
	part(func(ctx context.Context) {
		var err error
		if instances, err = ferry.ListServices(ctx, b.c); err != nil {
			fail("services", err)
		}
	})
	part(func(ctx context.Context) {
		var err error
		if topics, err = ferry.ListTopics(ctx, b.c); err != nil {
			fail("topics", err)
		}
	})
	part(func(ctx context.Context) {
		dl, err := newestDeadLetters(ctx, b.c, maxDeadLetters)
		if err != nil {
			fail("dead_letters", err)
		}
		snap.DeadLetters = dl
	})
	wg.Wait()
	snap.Services = servicesOf(instances)
	if len(topics) > maxTopics {
		topics = topics[:maxTopics]
	}
	if topics != nil {
		snap.Topics = topics
	}
	// What needs the services: their documents and job kinds.
	part(func(ctx context.Context) {
		snap.Graph = b.docs.graph(ctx, snap.Services, topics)
	})
	part(func(ctx context.Context) {
		jv, err := b.jobs.read(ctx, jobKinds(snap.Services))
		if err != nil {
			fail("jobs", err)
		}
		snap.Jobs = jv
	})
	wg.Wait()
	return snap
}

// describe is what the page says about a section it could not read: a
// Ferry error's detail, or a generic line (the error goes to the log).
func (b *builder) describe(section string, err error) string {
	var fe *ferry.Error
	if errors.As(err, &fe) && fe.Detail != "" {
		return fe.Detail
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "the broker did not answer in time"
	}
	b.log.Warn("dashboard: read "+section, "err", err)
	return "could not be read; the dashboard's log says why"
}

// servicesOf groups instances by service and sums their endpoints.
func servicesOf(instances []ferry.ServiceInstance) []ServiceView {
	byName := map[string]*ServiceView{}
	var order []string
	for i, in := range instances {
		if i >= maxServices {
			break
		}
		sv := byName[in.Name]
		if sv == nil {
			sv = &ServiceView{Name: in.Name, Description: in.Description, Instances: []InstanceView{}, Endpoints: []EndpointView{}}
			byName[in.Name] = sv
			order = append(order, in.Name)
		}
		if !slices.Contains(sv.Versions, in.Version) {
			sv.Versions = append(sv.Versions, in.Version)
		}
		sv.Instances = append(sv.Instances, InstanceView{ID: in.ID, Version: in.Version, HTTP: in.Metadata["http"], Started: in.Started})
		for _, j := range strings.Split(in.Metadata["jobs"], ",") {
			if j != "" && !slices.Contains(sv.Jobs, j) {
				sv.Jobs = append(sv.Jobs, j)
			}
		}
		for _, es := range in.Endpoints {
			idx := slices.IndexFunc(sv.Endpoints, func(e EndpointView) bool { return e.Name == es.Name })
			if idx < 0 {
				sv.Endpoints = append(sv.Endpoints, EndpointView{Name: es.Name, Subject: es.Subject, Method: es.Metadata["method"], Path: es.Metadata["path"]})
				idx = len(sv.Endpoints) - 1
			}
			ev := &sv.Endpoints[idx]
			if es.Recent != nil {
				ev.Recent = true
				addTraffic(&ev.HTTP, es.Recent.HTTP)
				addTraffic(&ev.NATS, es.Recent.NATS)
			}
		}
	}
	out := make([]ServiceView, 0, len(order))
	for _, n := range order {
		out = append(out, *byName[n])
	}
	return out
}

func addTraffic(t *TrafficView, l ferry.LatencyStats) {
	t.Rate += l.Rate
	t.Requests += l.Requests
	t.Errors += l.Errors
	t.P50 = max(t.P50, ms(l.P50))
	t.P99 = max(t.P99, ms(l.P99))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// preview is the start of a payload as text: valid UTF-8 cut at
// previewBytes, or a note for a binary one.
func preview(data []byte) string {
	if !utf8.Valid(data) {
		return "(binary)"
	}
	if len(data) <= previewBytes {
		return string(data)
	}
	cut := previewBytes
	for cut > 0 && !utf8.RuneStart(data[cut]) {
		cut--
	}
	return string(data[:cut]) + "…"
}

// marshal is the snapshot as one line of JSON (an SSE data line).
func marshal(s *Snapshot) []byte {
	b, err := json.Marshal(s)
	if err != nil { // only plain values: cannot happen
		return []byte(`{"errors":{"snapshot":"could not be encoded"}}`)
	}
	return b
}
