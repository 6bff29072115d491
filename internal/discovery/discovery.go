// Package discovery answers the NATS service protocol ($SRV.PING, $SRV.INFO, $SRV.STATS) for one service instance.
//
// Ferry serves its endpoints with plain queue subscriptions rather than with
// nats.go's micro.Service (which runs each endpoint's handler one request at
// a time), so it answers the discovery verbs itself. The responses are the
// JSON that micro produces, built from micro's exported wire types, so tools
// such as `nats micro ls|info|stats` list Ferry services like any other.
package discovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"
)

// Endpoint describes one endpoint for discovery.
type Endpoint struct {
	Name       string            // endpoint name, ^[A-Za-z0-9_-]+$
	Subject    string            // the subject it is served on
	QueueGroup string            // "q" by default
	Metadata   map[string]string // may be nil
}

// Info describes the service instance.
type Info struct {
	Name, Version, Description string
	ID                         string            // instance ID; Start generates one (nuid) when empty
	Metadata                   map[string]string // may be nil
	Endpoints                  []Endpoint
	// Data, when set, gives an endpoint's data in STATS answers (micro's
	// EndpointStats.Data): it is called per endpoint for each answer and
	// its result encoded as JSON; nil leaves the field out.
	Data func(endpoint string) any
}

// The validation rules are micro's (nats.go micro/service.go); micro does not
// export its regular expressions.
var (
	semVerRegexp  = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
	nameRegexp    = regexp.MustCompile(`^[A-Za-z0-9\-_]+$`)
	subjectRegexp = regexp.MustCompile(`^[^ >]*[>]?$`)
)

// endpointStats holds one endpoint's description and its counters. The
// counters are updated with atomics only, so Record never takes a lock.
type endpointStats struct {
	name, subject, queueGroup string

	numRequests atomic.Int64
	numErrors   atomic.Int64
	processing  atomic.Int64 // total processing time, nanoseconds
	lastError   atomic.Pointer[string]
}

// Responder answers $SRV requests for one instance and keeps per-endpoint statistics.
type Responder struct {
	nc       *nats.Conn
	identity micro.ServiceIdentity
	started  time.Time

	endpoints []*endpointStats          // in declaration order
	byName    map[string]*endpointStats // read-only after Start

	pingJSON []byte // PING and INFO answers never change
	infoJSON []byte
	data     func(endpoint string) any

	mu      sync.Mutex
	subs    []*nats.Subscription
	stopped bool
}

// Start subscribes the 9 discovery subjects ($SRV.<VERB>, $SRV.<VERB>.<name>, $SRV.<VERB>.<name>.<id> for PING, INFO, STATS)
// on nc with plain (non-queue) subscriptions and returns the running responder.
//
// When the connection is up, Start waits (at most a second) for the server to
// confirm the subscriptions, so the instance is discoverable once it returns.
// An endpoint with an empty Subject is served on its Name, and one with an
// empty QueueGroup reports "q", as in micro. Endpoint names must be unique
// within the instance, and ID, when given, must be a single subject token of
// letters, digits, '-' and '_'.
func Start(nc *nats.Conn, info Info) (*Responder, error) {
	if nc == nil {
		return nil, errors.New("discovery: nil NATS connection")
	}
	if err := validate(&info); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}

	metadata := maps.Clone(info.Metadata)
	if metadata == nil {
		metadata = map[string]string{}
	}
	r := &Responder{
		nc: nc,
		identity: micro.ServiceIdentity{
			Name:     info.Name,
			ID:       info.ID,
			Version:  info.Version,
			Metadata: metadata,
		},
		endpoints: make([]*endpointStats, 0, len(info.Endpoints)),
		byName:    make(map[string]*endpointStats, len(info.Endpoints)),
		data:      info.Data,
	}
	if r.identity.ID == "" {
		r.identity.ID = nuid.Next()
	}

	infoEndpoints := make([]micro.EndpointInfo, 0, len(info.Endpoints))
	for _, e := range info.Endpoints {
		es := &endpointStats{name: e.Name, subject: e.Subject, queueGroup: e.QueueGroup}
		r.endpoints = append(r.endpoints, es)
		r.byName[e.Name] = es
		infoEndpoints = append(infoEndpoints, micro.EndpointInfo{
			Name:       e.Name,
			Subject:    e.Subject,
			QueueGroup: e.QueueGroup,
			Metadata:   maps.Clone(e.Metadata), // nil stays null, as in micro
		})
	}

	var err error
	r.pingJSON, err = json.Marshal(micro.Ping{ServiceIdentity: r.identity, Type: micro.PingResponseType})
	if err != nil {
		return nil, fmt.Errorf("discovery: encoding PING response: %w", err)
	}
	r.infoJSON, err = json.Marshal(micro.Info{
		ServiceIdentity: r.identity,
		Type:            micro.InfoResponseType,
		Description:     info.Description,
		Endpoints:       infoEndpoints,
	})
	if err != nil {
		return nil, fmt.Errorf("discovery: encoding INFO response: %w", err)
	}

	handlers := []struct {
		verb    micro.Verb
		respond func() []byte
	}{
		{micro.PingVerb, func() []byte { return r.pingJSON }},
		{micro.InfoVerb, func() []byte { return r.infoJSON }},
		{micro.StatsVerb, r.statsJSON},
	}
	for _, h := range handlers {
		for _, level := range [][2]string{{"", ""}, {info.Name, ""}, {info.Name, r.identity.ID}} {
			subject, err := micro.ControlSubject(h.verb, level[0], level[1])
			if err != nil {
				r.unsubscribeAll()
				return nil, fmt.Errorf("discovery: %w", err)
			}
			respond := h.respond
			sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
				// Requests may carry "Accept-Encoding: snappy"; an answer
				// without Content-Encoding is plain, which every client accepts.
				if m.Reply == "" {
					return
				}
				_ = m.Respond(respond())
			})
			if err != nil {
				r.unsubscribeAll()
				return nil, fmt.Errorf("discovery: subscribing to %s: %w", subject, err)
			}
			r.subs = append(r.subs, sub)
		}
	}
	if nc.IsConnected() {
		// Best effort: once Start returns, requests from any client find the
		// instance. The SUBs are sent either way.
		_ = nc.FlushTimeout(time.Second)
	}
	r.started = time.Now().UTC()
	return r, nil
}

// validate checks info as micro.AddService and AddEndpoint would, and fills
// in the endpoint defaults (subject = name, queue group = "q").
func validate(info *Info) error {
	if !nameRegexp.MatchString(info.Name) {
		return fmt.Errorf("invalid service name %q: it must be non-empty and consist of letters, digits, '-' and '_'", info.Name)
	}
	if !semVerRegexp.MatchString(info.Version) {
		return fmt.Errorf("invalid version %q for service %s: it must be a semantic version such as 1.0.0", info.Version, info.Name)
	}
	if info.ID != "" && !nameRegexp.MatchString(info.ID) {
		return fmt.Errorf("invalid instance ID %q for service %s: it must consist of letters, digits, '-' and '_'", info.ID, info.Name)
	}
	endpoints := make([]Endpoint, len(info.Endpoints))
	seen := make(map[string]bool, len(info.Endpoints))
	for i, e := range info.Endpoints {
		if !nameRegexp.MatchString(e.Name) {
			return fmt.Errorf("invalid endpoint name %q in service %s: it must be non-empty and consist of letters, digits, '-' and '_'", e.Name, info.Name)
		}
		if seen[e.Name] {
			return fmt.Errorf("duplicate endpoint name %q in service %s", e.Name, info.Name)
		}
		seen[e.Name] = true
		if e.Subject == "" {
			e.Subject = e.Name
		}
		if !subjectRegexp.MatchString(e.Subject) {
			return fmt.Errorf("invalid subject %q for endpoint %s of service %s", e.Subject, e.Name, info.Name)
		}
		if e.QueueGroup == "" {
			e.QueueGroup = micro.DefaultQueueGroup
		}
		if !subjectRegexp.MatchString(e.QueueGroup) {
			return fmt.Errorf("invalid queue group %q for endpoint %s of service %s", e.QueueGroup, e.Name, info.Name)
		}
		endpoints[i] = e
	}
	info.Endpoints = endpoints // a copy: the caller's slice is left alone
	return nil
}

// statsJSON encodes the current STATS answer.
func (r *Responder) statsJSON() []byte {
	stats := micro.Stats{
		ServiceIdentity: r.identity,
		Type:            micro.StatsResponseType,
		Started:         r.started,
		Endpoints:       make([]*micro.EndpointStats, 0, len(r.endpoints)),
	}
	for _, e := range r.endpoints {
		// Errors are read before requests, and Record counts a request before
		// its error, so num_errors never exceeds num_requests in an answer.
		numErrors := e.numErrors.Load()
		var lastError string
		if p := e.lastError.Load(); p != nil {
			lastError = *p
		}
		numRequests := e.numRequests.Load()
		processing := e.processing.Load()
		var average int64
		if numRequests > 0 {
			average = processing / numRequests
		}
		es := &micro.EndpointStats{
			Name:                  e.name,
			Subject:               e.subject,
			QueueGroup:            e.queueGroup,
			NumRequests:           int(numRequests),
			NumErrors:             int(numErrors),
			LastError:             lastError,
			ProcessingTime:        time.Duration(processing),
			AverageProcessingTime: time.Duration(average),
		}
		if r.data != nil {
			if v := r.data(e.name); v != nil {
				if b, err := json.Marshal(v); err == nil && string(b) != "null" {
					es.Data = b
				}
			}
		}
		stats.Endpoints = append(stats.Endpoints, es)
	}
	out, err := json.Marshal(stats)
	if err != nil { // cannot happen: the types hold only strings, numbers, a time and valid JSON
		return nil
	}
	return out
}

// ID returns the instance ID.
func (r *Responder) ID() string { return r.identity.ID }

// Record counts one handled request of endpoint name: its processing time, and whether it failed on the server's side
// (only server-side failures count as errors, e.g. 5xx; a 4xx caused by the caller is not an error) with the error text
// for last_error ("500:internal error" style: "<code>:<description>" as micro does).
// It must be cheap and safe for concurrent use from many goroutines (atomics; no global lock on the hot path);
// an unknown name is ignored.
//
// A negative duration counts as zero.
func (r *Responder) Record(name string, d time.Duration, failed bool, code int, description string) {
	e := r.byName[name]
	if e == nil {
		return
	}
	if d < 0 {
		d = 0
	}
	e.processing.Add(int64(d))
	e.numRequests.Add(1)
	if failed {
		text := strconv.Itoa(code) + ":" + description
		e.lastError.Store(&text)
		e.numErrors.Add(1)
	}
}

// Stop unsubscribes. Safe to call twice.
//
// When the connection is up, Stop waits (at most a second) for the server to
// confirm the unsubscriptions, so that once it returns requests from any
// client no longer reach this instance. Subscriptions the connection has
// already dropped (because it was closed) are not reported as errors.
func (r *Responder) Stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return nil
	}
	r.stopped = true
	err := r.unsubscribeAll()
	if r.nc.IsConnected() {
		_ = r.nc.FlushTimeout(time.Second) // best effort: the UNSUBs are sent either way
	}
	return err
}

// unsubscribeAll removes every subscription made so far. Callers hold r.mu
// or own r exclusively.
func (r *Responder) unsubscribeAll() error {
	var errs []error
	for _, sub := range r.subs {
		err := sub.Unsubscribe()
		if err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
			errs = append(errs, fmt.Errorf("unsubscribing from %s: %w", sub.Subject, err))
		}
	}
	r.subs = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	return nil
}
