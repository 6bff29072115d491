package discovery

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// startServer runs an in-process nats-server without a listener.
func startServer(t *testing.T) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{DontListen: true, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(5 * time.Second) {
		srv.Shutdown()
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

func connect(t *testing.T, srv *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func mustStart(t *testing.T, nc *nats.Conn, info Info) *Responder {
	t.Helper()
	r, err := Start(nc, info)
	if err != nil {
		t.Fatalf("Start(%s): %v", info.Name, err)
	}
	t.Cleanup(func() { _ = r.Stop() })
	return r
}

// gather sends one request on subject with a fresh inbox as reply subject and
// collects the replies: it waits until want replies arrived (or 2s passed),
// then a further 150ms to catch replies beyond want.
func gather(t *testing.T, nc *nats.Conn, subject string, header nats.Header, want int) []*nats.Msg {
	t.Helper()
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatalf("subscribe %s: %v", inbox, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	msg := nats.NewMsg(subject)
	msg.Reply = inbox
	maps.Copy(msg.Header, header)
	if err := nc.PublishMsg(msg); err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	var replies []*nats.Msg
	deadline := time.Now().Add(2 * time.Second)
	for len(replies) < want && time.Now().Before(deadline) {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			break
		}
		replies = append(replies, m)
	}
	for {
		m, err := sub.NextMsg(150 * time.Millisecond)
		if err != nil {
			break
		}
		replies = append(replies, m)
	}
	return replies
}

// request sends one request and expects exactly one reply.
func request(t *testing.T, nc *nats.Conn, subject string) []byte {
	t.Helper()
	m, err := nc.Request(subject, nil, 2*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	return m.Data
}

func controlSubject(t *testing.T, verb micro.Verb, name, id string) string {
	t.Helper()
	s, err := micro.ControlSubject(verb, name, id)
	if err != nil {
		t.Fatalf("ControlSubject: %v", err)
	}
	return s
}

func decode[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return v
}

// The fixture: two instances of "orders" and one of "billing".
var (
	ordersInfo = Info{
		Name:        "orders",
		Version:     "1.2.3",
		Description: "Order service",
		Endpoints: []Endpoint{
			{Name: "create", Subject: "orders.create"},
			{Name: "get", Subject: "orders.get", QueueGroup: "workers", Metadata: map[string]string{"method": "GET"}},
			{Name: "ping"}, // subject defaults to the name
		},
	}
	billingInfo = Info{
		Name:     "billing",
		Version:  "0.1.0-beta.1+build.7",
		ID:       "billing-fixed-id",
		Metadata: map[string]string{"team": "payments"},
		Endpoints: []Endpoint{
			{Name: "charge", Subject: "billing.charge.*"},
		},
	}
	ordersEndpoints = []micro.EndpointInfo{
		{Name: "create", Subject: "orders.create", QueueGroup: "q"},
		{Name: "get", Subject: "orders.get", QueueGroup: "workers", Metadata: map[string]string{"method": "GET"}},
		{Name: "ping", Subject: "ping", QueueGroup: "q"},
	}
	billingEndpoints = []micro.EndpointInfo{
		{Name: "charge", Subject: "billing.charge.*", QueueGroup: "q"},
	}
)

type fixture struct {
	nc                 *nats.Conn // a separate client connection
	orders1, orders2   *Responder
	billing            *Responder
	ordersIDs, allIDs  []string
	endpointsByService map[string][]micro.EndpointInfo
	infoByService      map[string]Info
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := startServer(t)
	o2 := ordersInfo
	o2.ID = "orders-second"
	f := &fixture{
		orders1: mustStart(t, connect(t, srv), ordersInfo),
		orders2: mustStart(t, connect(t, srv), o2),
		billing: mustStart(t, connect(t, srv), billingInfo),
		nc:      connect(t, srv),
		endpointsByService: map[string][]micro.EndpointInfo{
			"orders": ordersEndpoints, "billing": billingEndpoints,
		},
		infoByService: map[string]Info{"orders": ordersInfo, "billing": billingInfo},
	}
	f.ordersIDs = sorted(f.orders1.ID(), f.orders2.ID())
	f.allIDs = sorted(f.orders1.ID(), f.orders2.ID(), f.billing.ID())
	return f
}

func sorted(s ...string) []string { slices.Sort(s); return s }

func TestStartRejectsInvalidInfo(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	valid := func(edit func(*Info)) Info {
		info := Info{Name: "svc", Version: "1.0.0", Endpoints: []Endpoint{{Name: "ep", Subject: "svc.ep"}}}
		edit(&info)
		return info
	}
	tests := []struct {
		name string
		info Info
		want string
	}{
		{"empty name", valid(func(i *Info) { i.Name = "" }), "invalid service name"},
		{"dotted name", valid(func(i *Info) { i.Name = "my.svc" }), "invalid service name"},
		{"name with space", valid(func(i *Info) { i.Name = "my svc" }), "invalid service name"},
		{"wildcard name", valid(func(i *Info) { i.Name = "*" }), "invalid service name"},
		{"empty version", valid(func(i *Info) { i.Version = "" }), "invalid version"},
		{"short version", valid(func(i *Info) { i.Version = "1.0" }), "invalid version"},
		{"v-prefixed version", valid(func(i *Info) { i.Version = "v1.0.0" }), "invalid version"},
		{"leading zero version", valid(func(i *Info) { i.Version = "01.0.0" }), "invalid version"},
		{"dotted ID", valid(func(i *Info) { i.ID = "a.b" }), "invalid instance ID"},
		{"wildcard ID", valid(func(i *Info) { i.ID = ">" }), "invalid instance ID"},
		{"empty endpoint name", valid(func(i *Info) { i.Endpoints[0].Name = "" }), "invalid endpoint name"},
		{"dotted endpoint name", valid(func(i *Info) { i.Endpoints[0].Name = "a.b" }), "invalid endpoint name"},
		{"duplicate endpoint name", valid(func(i *Info) {
			i.Endpoints = append(i.Endpoints, Endpoint{Name: "ep", Subject: "other"})
		}), "duplicate endpoint name"},
		{"subject with space", valid(func(i *Info) { i.Endpoints[0].Subject = "a b" }), "invalid subject"},
		{"subject with inner >", valid(func(i *Info) { i.Endpoints[0].Subject = "a.>.b" }), "invalid subject"},
		{"queue group with space", valid(func(i *Info) { i.Endpoints[0].QueueGroup = "q 1" }), "invalid queue group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Start(nc, tt.info)
			if err == nil {
				_ = r.Stop()
				t.Fatal("Start succeeded, want an error")
			}
			if !strings.HasPrefix(err.Error(), "discovery: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want prefix %q and %q", err, "discovery: ", tt.want)
			}
			if n := nc.NumSubscriptions(); n != 0 {
				t.Fatalf("%d subscriptions left after a failed Start", n)
			}
		})
	}
	t.Run("nil connection", func(t *testing.T) {
		_, err := Start(nil, valid(func(*Info) {}))
		if err == nil || !strings.HasPrefix(err.Error(), "discovery: ") {
			t.Fatalf("error %v, want a discovery error", err)
		}
	})
}

func TestStartDefaultsAndSubscriptions(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	info := Info{Name: "svc", Version: "1.0.0", Endpoints: []Endpoint{{Name: "ep"}}}
	r := mustStart(t, nc, info)

	if len(r.ID()) != 22 {
		t.Errorf("generated ID %q, want a 22-character nuid", r.ID())
	}
	if other := mustStart(t, nc, info); other.ID() == r.ID() {
		t.Errorf("two instances share ID %q", r.ID())
	}
	if info.Endpoints[0].Subject != "" || info.Endpoints[0].QueueGroup != "" {
		t.Errorf("Start modified the caller's endpoints: %+v", info.Endpoints[0])
	}
	if got := mustStart(t, nc, Info{Name: "svc", Version: "1.0.0", ID: "given_ID-1"}).ID(); got != "given_ID-1" {
		t.Errorf("ID() = %q, want the given ID", got)
	}
	if n := nc.NumSubscriptions(); n != 27 {
		t.Errorf("3 responders hold %d subscriptions, want 27", n)
	}

	got := decode[micro.Info](t, request(t, nc, controlSubject(t, micro.InfoVerb, "svc", r.ID())))
	want := []micro.EndpointInfo{{Name: "ep", Subject: "ep", QueueGroup: "q"}}
	if !slices.EqualFunc(got.Endpoints, want, endpointInfoEqual) {
		t.Errorf("endpoints %+v, want %+v", got.Endpoints, want)
	}
}

func endpointInfoEqual(a, b micro.EndpointInfo) bool {
	return a.Name == b.Name && a.Subject == b.Subject && a.QueueGroup == b.QueueGroup &&
		(a.Metadata == nil) == (b.Metadata == nil) && maps.Equal(a.Metadata, b.Metadata)
}

func TestDiscoverySubjects(t *testing.T) {
	f := newFixture(t)
	verbs := []micro.Verb{micro.PingVerb, micro.InfoVerb, micro.StatsVerb}
	levels := []struct {
		name     string
		svc, id  func(*fixture) string
		wantIDs  func(*fixture) []string
		wantName string // "" when replies come from several services
	}{
		{"all", func(*fixture) string { return "" }, func(*fixture) string { return "" },
			func(f *fixture) []string { return f.allIDs }, ""},
		{"kind orders", func(*fixture) string { return "orders" }, func(*fixture) string { return "" },
			func(f *fixture) []string { return f.ordersIDs }, "orders"},
		{"kind billing", func(*fixture) string { return "billing" }, func(*fixture) string { return "" },
			func(f *fixture) []string { return []string{f.billing.ID()} }, "billing"},
		{"instance orders 1", func(*fixture) string { return "orders" }, func(f *fixture) string { return f.orders1.ID() },
			func(f *fixture) []string { return []string{f.orders1.ID()} }, "orders"},
		{"instance orders 2", func(*fixture) string { return "orders" }, func(f *fixture) string { return f.orders2.ID() },
			func(f *fixture) []string { return []string{f.orders2.ID()} }, "orders"},
		{"instance billing", func(*fixture) string { return "billing" }, func(f *fixture) string { return f.billing.ID() },
			func(f *fixture) []string { return []string{f.billing.ID()} }, "billing"},
		{"unknown kind", func(*fixture) string { return "nope" }, func(*fixture) string { return "" },
			func(*fixture) []string { return nil }, ""},
		{"unknown instance", func(*fixture) string { return "orders" }, func(*fixture) string { return "nope" },
			func(*fixture) []string { return nil }, ""},
	}
	for _, verb := range verbs {
		for _, level := range levels {
			t.Run(verb.String()+"/"+level.name, func(t *testing.T) {
				subject := controlSubject(t, verb, level.svc(f), level.id(f))
				wantIDs := level.wantIDs(f)
				replies := gather(t, f.nc, subject, nil, len(wantIDs))
				var gotIDs []string
				for _, m := range replies {
					id, name := checkReply(t, f, verb, m.Data)
					if level.wantName != "" && name != level.wantName {
						t.Errorf("reply from service %q, want %q", name, level.wantName)
					}
					gotIDs = append(gotIDs, id)
				}
				slices.Sort(gotIDs)
				if !slices.Equal(gotIDs, wantIDs) {
					t.Errorf("%s answered by %v, want %v", subject, gotIDs, wantIDs)
				}
			})
		}
	}
}

// checkReply decodes one reply into the micro type of verb, checks it against
// the fixture and returns the instance ID and service name.
func checkReply(t *testing.T, f *fixture, verb micro.Verb, data []byte) (id, name string) {
	t.Helper()
	var identity micro.ServiceIdentity
	var typ string
	switch verb {
	case micro.PingVerb:
		p := decode[micro.Ping](t, data)
		identity, typ = p.ServiceIdentity, p.Type
		if typ != micro.PingResponseType {
			t.Errorf("type %q, want %q", typ, micro.PingResponseType)
		}
	case micro.InfoVerb:
		i := decode[micro.Info](t, data)
		identity, typ = i.ServiceIdentity, i.Type
		if typ != micro.InfoResponseType {
			t.Errorf("type %q, want %q", typ, micro.InfoResponseType)
		}
		if want := f.infoByService[i.Name].Description; i.Description != want {
			t.Errorf("description %q, want %q", i.Description, want)
		}
		if want := f.endpointsByService[i.Name]; !slices.EqualFunc(i.Endpoints, want, endpointInfoEqual) {
			t.Errorf("endpoints %+v, want %+v", i.Endpoints, want)
		}
	case micro.StatsVerb:
		s := decode[micro.Stats](t, data)
		identity, typ = s.ServiceIdentity, s.Type
		if typ != micro.StatsResponseType {
			t.Errorf("type %q, want %q", typ, micro.StatsResponseType)
		}
		if s.Started.IsZero() || s.Started.Location() != time.UTC || time.Since(s.Started) > time.Minute {
			t.Errorf("started %v, want a recent UTC time", s.Started)
		}
		want := f.endpointsByService[s.Name]
		if len(s.Endpoints) != len(want) {
			t.Fatalf("%d endpoint stats, want %d", len(s.Endpoints), len(want))
		}
		for i, e := range s.Endpoints {
			if e.Name != want[i].Name || e.Subject != want[i].Subject || e.QueueGroup != want[i].QueueGroup ||
				e.NumRequests != 0 || e.NumErrors != 0 || e.LastError != "" || e.ProcessingTime != 0 || e.AverageProcessingTime != 0 {
				t.Errorf("endpoint stats %+v, want fresh stats of %+v", e, want[i])
			}
		}
	}
	info, ok := f.infoByService[identity.Name]
	if !ok {
		t.Fatalf("reply from unknown service %q", identity.Name)
	}
	if identity.Version != info.Version {
		t.Errorf("version %q, want %q", identity.Version, info.Version)
	}
	wantMeta := info.Metadata
	if wantMeta == nil {
		wantMeta = map[string]string{}
	}
	if identity.Metadata == nil || !maps.Equal(identity.Metadata, wantMeta) {
		t.Errorf("metadata %#v, want %#v", identity.Metadata, wantMeta)
	}
	return identity.ID, identity.Name
}

// TestResponsesMatchMicro compares the raw JSON with what a real micro.Service
// with the same configuration answers, after replacing the instance ID and the
// start time (and, for STATS with traffic, the processing times).
func TestResponsesMatchMicro(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)

	// The micro service gets its own connection: AddService installs hooks on it.
	msConn := connect(t, srv)
	ms, err := micro.AddService(msConn, micro.Config{
		Name: ordersInfo.Name, Version: ordersInfo.Version, Description: ordersInfo.Description,
	})
	if err != nil {
		t.Fatalf("micro.AddService: %v", err)
	}
	t.Cleanup(func() { _ = ms.Stop() })
	fail := micro.HandlerFunc(func(req micro.Request) { _ = req.Error("500", "internal error", nil) })
	for _, ep := range []struct {
		name string
		opts []micro.EndpointOpt
	}{
		{"create", []micro.EndpointOpt{micro.WithEndpointSubject("orders.create")}},
		{"get", []micro.EndpointOpt{micro.WithEndpointSubject("orders.get"), micro.WithEndpointQueueGroup("workers"),
			micro.WithEndpointMetadata(map[string]string{"method": "GET"})}},
		{"ping", nil},
	} {
		if err := ms.AddEndpoint(ep.name, fail, ep.opts...); err != nil {
			t.Fatalf("micro AddEndpoint %s: %v", ep.name, err)
		}
	}
	r := mustStart(t, nc, ordersInfo)
	empty := mustStart(t, nc, Info{Name: "empty", Version: "1.0.0"})
	emptyConn := connect(t, srv)
	emptyMicro, err := micro.AddService(emptyConn, micro.Config{Name: "empty", Version: "1.0.0"})
	if err != nil {
		t.Fatalf("micro.AddService: %v", err)
	}
	t.Cleanup(func() { _ = emptyMicro.Stop() })
	// The micro services subscribed on connections of their own: make sure
	// the server has their subscriptions before asking them anything.
	for _, c := range []*nats.Conn{msConn, emptyConn} {
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
	}

	normalise := func(data []byte, id string, started time.Time) string {
		s := strings.ReplaceAll(string(data), `"id":"`+id+`"`, `"id":"ID"`)
		if !started.IsZero() {
			ts, _ := json.Marshal(started)
			s = strings.ReplaceAll(s, `"started":`+string(ts), `"started":"T"`)
		}
		return s
	}
	compare := func(t *testing.T, verb micro.Verb, name, ourID, microID string) (ours, theirs []byte) {
		t.Helper()
		ours = request(t, nc, controlSubject(t, verb, name, ourID))
		theirs = request(t, nc, controlSubject(t, verb, name, microID))
		var ourStarted, theirStarted time.Time
		if verb == micro.StatsVerb {
			ourStarted = decode[micro.Stats](t, ours).Started
			theirStarted = decode[micro.Stats](t, theirs).Started
		}
		if o, m := normalise(ours, ourID, ourStarted), normalise(theirs, microID, theirStarted); o != m {
			t.Errorf("%s differs from micro:\n ours: %s\nmicro: %s", verb, o, m)
		}
		return ours, theirs
	}
	for _, verb := range []micro.Verb{micro.PingVerb, micro.InfoVerb, micro.StatsVerb} {
		t.Run(verb.String(), func(t *testing.T) {
			compare(t, verb, "orders", r.ID(), ms.Info().ID)
		})
		t.Run(verb.String()+"/no endpoints", func(t *testing.T) {
			ours, _ := compare(t, verb, "empty", empty.ID(), emptyMicro.Info().ID)
			if verb != micro.PingVerb && !strings.Contains(string(ours), `"endpoints":[]`) {
				t.Errorf("no endpoints encoded as %s, want []", ours)
			}
		})
	}

	t.Run("STATS after a failed request", func(t *testing.T) {
		if _, err := nc.Request("orders.create", nil, 2*time.Second); err != nil {
			t.Fatalf("request to the micro endpoint: %v", err)
		}
		r.Record("create", 1500*time.Nanosecond, true, 500, "internal error")
		ours := decode[micro.Stats](t, request(t, nc, controlSubject(t, micro.StatsVerb, "orders", r.ID())))
		// micro counts a request after it has answered it: poll until it has.
		var theirs micro.Stats
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			theirs = decode[micro.Stats](t, request(t, nc, controlSubject(t, micro.StatsVerb, "orders", ms.Info().ID)))
			if len(theirs.Endpoints) > 0 && theirs.Endpoints[0].NumRequests > 0 || time.Now().After(deadline) {
				break
			}
		}
		for _, s := range []*micro.Stats{&ours, &theirs} {
			s.ID, s.Started = "", time.Time{}
			for _, e := range s.Endpoints {
				if (e.ProcessingTime > 0) != (e.NumRequests > 0) {
					t.Errorf("%s: processing time %v after %d requests", e.Name, e.ProcessingTime, e.NumRequests)
				}
				e.ProcessingTime, e.AverageProcessingTime = 0, 0
			}
		}
		o, _ := json.Marshal(ours)
		m, _ := json.Marshal(theirs)
		if string(o) != string(m) {
			t.Errorf("STATS differs from micro:\n ours: %s\nmicro: %s", o, m)
		}
		if got := ours.Endpoints[0].LastError; got != "500:internal error" {
			t.Errorf("last_error %q, want %q", got, "500:internal error")
		}
	})
}

type record struct {
	name        string
	d           time.Duration
	failed      bool
	code        int
	description string
}

func TestStatsReflectRecord(t *testing.T) {
	f := newFixture(t)
	type want struct {
		requests, errors int
		lastError        string
		total, average   time.Duration
	}
	tests := []struct {
		name    string
		records []record
		want    map[string]want // by endpoint name; others stay zero
	}{
		{"no traffic", nil, nil},
		{"successes", []record{{"create", 10 * time.Millisecond, false, 200, ""}, {"create", 20 * time.Millisecond, false, 201, ""}},
			map[string]want{"create": {2, 0, "", 30 * time.Millisecond, 15 * time.Millisecond}}},
		{"client errors are not errors", []record{{"get", 3 * time.Millisecond, false, 404, "not found"}},
			map[string]want{"get": {1, 0, "", 3 * time.Millisecond, 3 * time.Millisecond}}},
		{"server errors", []record{
			{"get", 1 * time.Millisecond, true, 500, "internal error"},
			{"get", 2 * time.Millisecond, false, 200, ""},
			{"get", 4 * time.Millisecond, true, 503, "unavailable"},
		}, map[string]want{"get": {3, 2, "503:unavailable", 7 * time.Millisecond, 7 * time.Millisecond / 3}}},
		{"average truncates like micro", []record{{"ping", 1, false, 200, ""}, {"ping", 2, false, 200, ""}},
			map[string]want{"ping": {2, 0, "", 3, 1}}},
		{"negative duration counts as zero", []record{{"ping", -time.Second, false, 200, ""}},
			map[string]want{"ping": {1, 0, "", 0, 0}}},
		{"unknown endpoint ignored", []record{{"nope", time.Second, true, 500, "x"}, {"", time.Second, true, 500, "x"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o2 := ordersInfo
			o2.ID = ""
			r := mustStart(t, f.nc, o2) // a fresh instance: counters start at zero
			for _, rec := range tt.records {
				r.Record(rec.name, rec.d, rec.failed, rec.code, rec.description)
			}
			stats := decode[micro.Stats](t, request(t, f.nc, controlSubject(t, micro.StatsVerb, "orders", r.ID())))
			if len(stats.Endpoints) != len(ordersEndpoints) {
				t.Fatalf("%d endpoint stats, want %d", len(stats.Endpoints), len(ordersEndpoints))
			}
			for _, e := range stats.Endpoints {
				w := tt.want[e.Name]
				got := want{e.NumRequests, e.NumErrors, e.LastError, e.ProcessingTime, e.AverageProcessingTime}
				if got != w {
					t.Errorf("%s: got %+v, want %+v", e.Name, got, w)
				}
			}
			// The other instances are unaffected.
			other := decode[micro.Stats](t, request(t, f.nc, controlSubject(t, micro.StatsVerb, "orders", f.orders1.ID())))
			for _, e := range other.Endpoints {
				if e.NumRequests != 0 {
					t.Errorf("instance %s counted %d requests for %s", other.ID, e.NumRequests, e.Name)
				}
			}
		})
	}
}

func TestRecordConcurrent(t *testing.T) {
	f := newFixture(t)
	const goroutines, perGoroutine = 64, 500
	var wg sync.WaitGroup
	stop := make(chan struct{})
	// STATS requests run while Record is hammered, so the race detector sees
	// readers and writers together.
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		subject := controlSubject(t, micro.StatsVerb, "orders", f.orders1.ID())
		for {
			select {
			case <-stop:
				return
			default:
			}
			m, err := f.nc.Request(subject, nil, 2*time.Second)
			if err != nil {
				t.Errorf("STATS during Record: %v", err)
				return
			}
			var s micro.Stats
			if err := json.Unmarshal(m.Data, &s); err != nil {
				t.Errorf("decode: %v", err)
				return
			}
			for _, e := range s.Endpoints {
				if e.NumErrors > e.NumRequests {
					t.Errorf("%s: %d errors > %d requests", e.Name, e.NumErrors, e.NumRequests)
				}
			}
		}
	}()
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perGoroutine {
				name := []string{"create", "get", "ping"}[i%3]
				failed := i%10 == 0
				f.orders1.Record(name, time.Microsecond, failed, 500, "boom")
				f.orders1.Record("unknown", time.Microsecond, true, 500, "ignored")
				_ = g
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-readerDone

	// Expected counts per endpoint.
	want := map[string][2]int{}
	for i := range perGoroutine {
		name := []string{"create", "get", "ping"}[i%3]
		w := want[name]
		w[0] += goroutines
		if i%10 == 0 {
			w[1] += goroutines
		}
		want[name] = w
	}
	stats := decode[micro.Stats](t, request(t, f.nc, controlSubject(t, micro.StatsVerb, "orders", f.orders1.ID())))
	total := 0
	for _, e := range stats.Endpoints {
		w := want[e.Name]
		if e.NumRequests != w[0] || e.NumErrors != w[1] {
			t.Errorf("%s: %d requests, %d errors; want %d, %d", e.Name, e.NumRequests, e.NumErrors, w[0], w[1])
		}
		if e.ProcessingTime != time.Duration(w[0])*time.Microsecond || e.AverageProcessingTime != time.Microsecond {
			t.Errorf("%s: processing %v (average %v), want %v (1µs)", e.Name, e.ProcessingTime, e.AverageProcessingTime,
				time.Duration(w[0])*time.Microsecond)
		}
		if e.LastError != "500:boom" {
			t.Errorf("%s: last_error %q", e.Name, e.LastError)
		}
		total += e.NumRequests
	}
	if total != goroutines*perGoroutine {
		t.Errorf("%d requests in total, want %d", total, goroutines*perGoroutine)
	}
}

func TestStop(t *testing.T) {
	f := newFixture(t)
	if err := f.orders1.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := f.orders1.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	for _, verb := range []micro.Verb{micro.PingVerb, micro.InfoVerb, micro.StatsVerb} {
		_, err := f.nc.Request(controlSubject(t, verb, "orders", f.orders1.ID()), nil, 2*time.Second)
		if !errors.Is(err, nats.ErrNoResponders) {
			t.Errorf("%s to a stopped instance: %v, want no responders", verb, err)
		}
		replies := gather(t, f.nc, controlSubject(t, verb, "orders", ""), nil, 1)
		if len(replies) != 1 {
			t.Fatalf("%s to orders: %d replies, want 1 (the running instance)", verb, len(replies))
		}
		if id, _ := checkReply(t, f, verb, replies[0].Data); id != f.orders2.ID() {
			t.Errorf("%s answered by %s, want %s", verb, id, f.orders2.ID())
		}
	}
	// Record after Stop is harmless.
	f.orders1.Record("create", time.Millisecond, true, 500, "late")

	t.Run("after the connection closed", func(t *testing.T) {
		srv := startServer(t)
		nc := connect(t, srv)
		r, err := Start(nc, ordersInfo)
		if err != nil {
			t.Fatal(err)
		}
		nc.Close()
		if err := r.Stop(); err != nil {
			t.Errorf("Stop after Close: %v", err)
		}
	})
}

func TestRequestVariants(t *testing.T) {
	f := newFixture(t)

	t.Run("Accept-Encoding snappy gets plain JSON", func(t *testing.T) {
		header := nats.Header{"Accept-Encoding": []string{"snappy"}}
		for _, verb := range []micro.Verb{micro.PingVerb, micro.InfoVerb, micro.StatsVerb} {
			replies := gather(t, f.nc, controlSubject(t, verb, "billing", ""), header, 1)
			if len(replies) != 1 {
				t.Fatalf("%s: %d replies, want 1", verb, len(replies))
			}
			if enc := replies[0].Header.Get("Content-Encoding"); enc != "" {
				t.Errorf("%s: Content-Encoding %q, want none", verb, enc)
			}
			checkReply(t, f, verb, replies[0].Data)
		}
	})

	t.Run("no reply subject, no answer", func(t *testing.T) {
		// A wildcard subscription sees every message published anywhere.
		spy, err := f.nc.SubscribeSync(">")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = spy.Unsubscribe() }()
		if err := f.nc.Publish(controlSubject(t, micro.PingVerb, "", ""), nil); err != nil {
			t.Fatal(err)
		}
		var seen []string
		for {
			m, err := spy.NextMsg(200 * time.Millisecond)
			if err != nil {
				break
			}
			seen = append(seen, m.Subject)
		}
		if want := []string{"$SRV.PING"}; !slices.Equal(seen, want) {
			t.Errorf("messages seen: %v, want only the request %v", seen, want)
		}
	})
}

// TestStatsData: Info.Data fills each endpoint's data in STATS answers,
// read at the time of the answer; an endpoint it answers nil for has none.
func TestStatsData(t *testing.T) {
	f := newFixture(t)
	info := ordersInfo
	info.ID = ""
	var calls atomic.Int64
	info.Data = func(endpoint string) any {
		n := calls.Add(1)
		if endpoint == ordersEndpoints[0].Name {
			return map[string]int64{"answer": n}
		}
		return nil
	}
	r := mustStart(t, f.nc, info)
	for range 2 {
		stats := decode[micro.Stats](t, request(t, f.nc, controlSubject(t, micro.StatsVerb, "orders", r.ID())))
		for _, e := range stats.Endpoints {
			switch {
			case e.Name == ordersEndpoints[0].Name && !strings.HasPrefix(string(e.Data), `{"answer":`):
				t.Errorf("%s: data %s", e.Name, e.Data)
			case e.Name != ordersEndpoints[0].Name && e.Data != nil:
				t.Errorf("%s: data %s, want none", e.Name, e.Data)
			}
		}
	}
	if calls.Load() != int64(2*len(ordersEndpoints)) {
		t.Errorf("Data called %d times", calls.Load())
	}
}
