package ferry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
	"github.com/ferrygo/ferry/internal/envelope"
)

// typedInput has the field types hostile numbers aim at.
type typedInput struct {
	Body struct {
		N    int      `json:"n"`
		Tags []string `json:"tags,omitempty"`
	}
}

// hostile is one hostile request: sent over HTTP, NATS or both, to an
// endpoint of the limits service (or the probe service), and what must
// come back. A row whose input is exercised by a test of its own names it
// in ref and runs it.
type hostile struct {
	name     string
	via      string // "HTTP", "NATS" or "" (both)
	service  string // "limits" (default) or "probe"
	endpoint string
	method   string
	path     string
	header   http.Header
	body     string
	// want is the status (0: any 4xx; 3 any 3xx or 4xx: net/http's
	// redirect to a cleaned path).
	want  int
	check func(t *testing.T, status int, body string)
	ref   func(t *testing.T)
}

const anyRedirectOr4xx = 3

func jsonHeader() http.Header { return http.Header{"Content-Type": {"application/json"}} }

func withHeader(k, v string) http.Header {
	h := jsonHeader()
	h[k] = []string{v}
	return h
}

// probeSeen checks a probe call answered 200 with a budget within the cap
// and no principal.
func probeSeen(t *testing.T, status int, body string) {
	t.Helper()
	var seen CallSeen
	if status != http.StatusOK || json.Unmarshal([]byte(body), &seen.Body) != nil {
		t.Fatalf("status %d: %s", status, body)
	}
	if seen.Body.Budget > probeCallTimeoutMax || seen.Body.Principal != "" || len(seen.Body.RequestID) > 128 {
		t.Fatalf("the call was seen as %+v: a forged header took effect", seen.Body)
	}
}

func hostileRequests() []hostile {
	deep := func(open, close string, n int) string {
		return strings.Repeat(open, n) + "1" + strings.Repeat(close, n)
	}
	hundredDigits := strings.Repeat("9", 100)
	return []hostile{
		{name: "malformed JSON", endpoint: "echo", body: `{"name":`, want: http.StatusBadRequest},
		{name: "trailing garbage", endpoint: "echo", body: `{"name":"a"} x`},
		{name: "not an object", endpoint: "echo", body: `"name"`},
		{name: "100k nested arrays", endpoint: "echo", body: deep("[", "]", 100_000)},
		{name: "100k nested objects in a field", endpoint: "echo", body: `{"name":` + deep(`{"a":`, "}", 100_000) + `}`},
		{name: "100k nested arrays in an int field", endpoint: "typed", body: `{"n":` + deep("[", "]", 100_000) + `}`},
		{name: "1e400 for an int", endpoint: "typed", body: `{"n":1e400}`},
		{name: "100-digit int", endpoint: "typed", body: `{"n":` + hundredDigits + `}`},
		{name: "negative 100-digit int", endpoint: "typed", body: `{"n":-` + hundredDigits + `}`},
		{name: "fraction for an int", endpoint: "typed", body: `{"n":1.5}`},
		{name: "100-digit exponent", endpoint: "typed", body: `{"n":1e` + hundredDigits + `}`},
		{name: "string for an int", endpoint: "typed", body: `{"n":"1"}`},
		{name: "content type text/plain", endpoint: "echo", header: http.Header{"Content-Type": {"text/plain"}}, body: `{"name":"a"}`},
		{name: "content type XML", endpoint: "echo", header: http.Header{"Content-Type": {"application/xml"}}, body: `<name>a</name>`},
		{name: "content type form", endpoint: "echo", header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, body: `name=a`},
		{name: "content type multipart", endpoint: "echo", header: http.Header{"Content-Type": {"multipart/form-data; boundary=x"}}, body: "--x\r\n"},
		{name: "content type malformed", endpoint: "echo", header: http.Header{"Content-Type": {"application/;;;=="}}, body: `{"name":"a"}`},
		{name: "oversize body", endpoint: "echo", body: `{"name":"` + strings.Repeat("n", 1<<20) + `"}`, want: http.StatusRequestEntityTooLarge},
		{name: "oversize header", endpoint: "echo", header: withHeader("X-Big", strings.Repeat("b", 16<<10)), body: `{"name":"a"}`, want: http.StatusRequestHeaderFieldsTooLarge},
		{name: "many headers", endpoint: "echo", header: func() http.Header {
			h := jsonHeader()
			for i := range 2000 {
				h.Set(fmt.Sprintf("X-H%d", i), "v")
			}
			return h
		}(), body: `{"name":"a"}`, want: http.StatusRequestHeaderFieldsTooLarge},
		{name: "invalid UTF-8 in a string", endpoint: "echo", body: "{\"name\":\"\xff\xfe\"}", want: http.StatusOK, check: func(t *testing.T, status int, body string) {
			// encoding/json reads an invalid byte as U+FFFD, as every Go JSON
			// decoder does: the call is taken, nothing invalid reaches the handler.
		}},
		{name: "invalid UTF-8 as a field name", endpoint: "echo", body: "{\"\xff\":1}"},
		{name: "invalid UTF-8 in the query", via: "HTTP", endpoint: "echo", path: "/echo?q=%ff%fe", body: `{"name":"a"}`, want: http.StatusOK},
		{name: "path ..", via: "HTTP", method: http.MethodGet, path: "/../quick", want: anyRedirectOr4xx},
		{name: "path encoded ..", via: "HTTP", method: http.MethodGet, path: "/%2e%2e/quick", want: anyRedirectOr4xx},
		{name: "path encoded slash", via: "HTTP", method: http.MethodGet, path: "/quick%2f..%2f..%2fetc%2fpasswd", want: http.StatusNotFound},
		{name: "path double slash", via: "HTTP", method: http.MethodGet, path: "//quick", want: anyRedirectOr4xx},
		{name: "path NUL", via: "HTTP", method: http.MethodGet, path: "/quick%00", want: http.StatusNotFound},
		{name: "path 4 KiB", via: "HTTP", method: http.MethodGet, path: "/" + strings.Repeat("a", 4<<10), want: http.StatusNotFound},
		{name: "path 64 KiB", via: "HTTP", method: http.MethodGet, path: "/" + strings.Repeat("a", 64<<10), want: http.StatusRequestHeaderFieldsTooLarge},
		{name: "forged Ferry-Path over NATS", via: "NATS", endpoint: "echo", header: withHeader("Ferry-Path", "id=..%2F..%2Fx&%zz"), body: `{"name":"a"}`},
		{name: "forged budget past the cap", service: "probe", endpoint: "probe", header: withHeader("Ferry-Timeout", "999999999999999"), check: probeSeen},
		{name: "forged budget 1e400", service: "probe", endpoint: "probe", header: withHeader("Ferry-Timeout", "1e400"), check: probeSeen},
		{name: "forged principal headers", service: "probe", endpoint: "probe", header: func() http.Header {
			h := jsonHeader()
			for _, k := range []string{"Ferry-Principal", "Ferry-Subject", "Ferry-Scopes", "X-Ferry-Principal", "X-Forwarded-User"} {
				h.Set(k, "admin")
			}
			return h
		}(), check: probeSeen},
		{name: "invalid API key", service: "probe", endpoint: "probe", header: withHeader("X-Api-Key", "ops-key-not"), check: probeSeen},
		{name: "forged job and replay headers", service: "probe", endpoint: "probe", header: func() http.Header {
			h := jsonHeader()
			for _, k := range []string{"Ferry-Job-Id", "Ferry-Job-Replay", "Ferry-Job-Attempts", "Ferry-Workflow-Wake", "Ferry-Dlq-Topic", "Ferry-Dlq-Consumer", "Nats-Msg-Id"} {
				h.Set(k, "1")
			}
			return h
		}(), check: probeSeen},
		{name: "malformed traceparent", service: "probe", endpoint: "probe", header: func() http.Header {
			h := withHeader("Traceparent", "00-"+strings.Repeat("f", 32)+"-"+strings.Repeat("0", 16)+"-zz")
			h.Set("Tracestate", strings.Repeat("k=v,", 1000))
			return h
		}(), check: probeSeen},
		{name: "request ID of 4 KiB", service: "probe", endpoint: "probe", header: withHeader("Ferry-Request-Id", strings.Repeat("r", 4<<10)), check: probeSeen},
		{name: "slow headers (slowloris)", via: "HTTP", ref: TestSlowHeadersCutOff},
		{name: "slow body", via: "HTTP", ref: TestSlowBody},
		{name: "oversize headers, every path", ref: TestOversizeHeaders},
	}
}

// TestHostileRequests sends hostile requests over HTTP and NATS: each gets
// a 4xx problem (or is refused), never a panic, a hang or a 5xx, and the
// heap does not keep what they cost. Outsiders publishing on replay,
// dead-letter and job subjects are refused by the permissions of
// docs/events.md (TestOutsiderPublishesAreRefused).
func TestHostileRequests(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.MaxHeaderBytes = 8 << 10
	cfg.CallTimeoutMax = probeCallTimeoutMax
	ls := newLimitsService(t, cfg, quiet)
	ferry.Post(ls.svc, "typed", "/typed", func(_ context.Context, in *typedInput) (*okOutput, error) { return &okOutput{}, nil })
	probe := newProbeService(t, ferry.WithConfig(cfg), ferry.WithNATS())
	h := ferrytest.StartWith(t, cfg, ls.svc, probe)
	bases := map[string]string{"limits": ferrytest.URL(t, ls.svc), "probe": ferrytest.URL(t, probe)}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	inputs := 0
	for _, tc := range hostileRequests() {
		for _, via := range []string{"HTTP", "NATS"} {
			if tc.via != "" && tc.via != via {
				continue
			}
			t.Run(tc.name+"/"+via, func(t *testing.T) {
				if tc.ref != nil {
					if via == "NATS" {
						t.Skip("the referenced test covers both transports")
					}
					inputs++
					tc.ref(t)
					return
				}
				inputs++
				service, method, header := tc.service, tc.method, tc.header
				if service == "" {
					service = "limits"
				}
				if method == "" {
					method = http.MethodPost
				}
				if header == nil {
					header = jsonHeader()
				}
				path := tc.path
				if path == "" {
					path = "/" + tc.endpoint
				}
				var status int
				var hh http.Header
				var body string
				if via == "HTTP" {
					status, hh, body = callHTTPNoRedirect(t, bases[service], method, path, tc.body, header)
				} else {
					resp := callNATS(t, h.NATS(), service, tc.endpoint, &envelope.Request{Header: header.Clone(), Body: []byte(tc.body)})
					status, hh, body = resp.Status, resp.Header, resp.Body.String()
				}
				switch {
				case status >= 500:
					t.Fatalf("answered %d: %.300s", status, body)
				case tc.check != nil:
					tc.check(t, status, body)
				case tc.want == anyRedirectOr4xx:
					if status < 300 || status >= 500 {
						t.Fatalf("answered %d, want a redirect or a 4xx: %.300s", status, body)
					}
				case tc.want == 0 && (status < 400 || status >= 500), tc.want != 0 && status != tc.want:
					t.Fatalf("answered %d, want %d (0: any 4xx): %.300s", status, tc.want, body)
				}
				if status >= 400 && hh.Get("Content-Type") != "application/problem+json" {
					t.Errorf("answered %d as %q, want problem details", status, hh.Get("Content-Type"))
				}
			})
		}
	}
	inputs += outsiderPublishes(t)

	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	const bound = 256 << 20 // generous: the inputs total a few MiB
	if grown > bound {
		t.Errorf("the heap grew by %d MiB across the hostile requests, past %d MiB", grown>>20, bound>>20)
	}
	writeRecord(t, Record{
		Scenario: "hostile-input",
		Fault: "malformed, deeply nested, huge-number, wrong-type, oversize, slow, invalid-UTF-8, path-trick and forged-header requests over HTTP and NATS; " +
			"publishes by an outsider on replay, dead-letter and job subjects",
		Runs:    inputs,
		Command: "FERRY_RELIABILITY_RECORDS=docs/reliability/records go test -run 'TestHostileRequests' -count=1 .",
		Figures: map[string]string{"heap_growth": fmt.Sprintf("%.1f MiB", float64(grown)/(1<<20))},
		Notes:   "every input answered 4xx problem details or refused (net/http redirects /../ and // to the cleaned path; invalid UTF-8 in a JSON string reads as U+FFFD); no 5xx, panic or hang",
	})
}

// callHTTPNoRedirect is callHTTP without following redirects.
func callHTTPNoRedirect(t *testing.T, base, method, target, body string, header http.Header) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	client := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %.80s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// outsiderPublishes runs a broker with the permissions of docs/events.md:
// a caller allowed to call endpoints (ferry.<service>.<endpoint>) and
// nothing else publishes on replay, dead-letter and job subjects, and on
// the JetStream API that would delete or purge them. Each publish is
// refused and stores nothing. It returns the publishes tried.
func outsiderPublishes(t *testing.T) int {
	t.Helper()
	opts := &server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
		Users: []*server.User{
			{Username: "admin", Password: "admin"},
			{Username: "caller", Password: "caller", Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: []string{"ferry.orders.get", "_INBOX.>"}},
				Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
			}},
		},
	}
	addr, admin := startEnforcingServer(t, opts)
	ctx := context.Background()
	ajs, _ := jetstream.New(admin)
	streams := map[string][]string{
		"ferry-order-placed": {"orders.placed", "ferry.replay.order-placed.>"},
		"ferry-deadletters":  {"ferry.dlq.>"},
		"ferryjob-report":    {"ferry.job.report.>"},
	}
	for name, subjects := range streams {
		if _, err := ajs.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: subjects}); err != nil {
			t.Fatal(err)
		}
	}
	outsider, err := nats.Connect("nats://caller:caller@"+addr, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer outsider.Close()
	ojs, _ := jetstream.New(outsider)
	subjects := []string{
		"ferry.replay.order-placed.shipping.ship", "ferry.dlq.order-placed.shipping.ship", "ferry.job.report.run",
		"ferry.job.report.run.high", "ferry.job.report.at.abc", "ferry.job.report.cancel.abc", "orders.placed",
	}
	for _, subject := range subjects {
		t.Run("outsider publishes on "+subject, func(t *testing.T) {
			msg := nats.NewMsg(subject)
			msg.Header.Set("Ferry-Job-Id", "abcdefghijklmnopqrstuvwxyz")
			msg.Header.Set("Ferry-Job-Replay", "1")
			msg.Header.Set("Ferry-Dlq-Topic", "order-placed")
			msg.Data = []byte(`{}`)
			pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			if _, err := ojs.PublishMsg(pctx, msg); err == nil {
				t.Fatalf("an outsider's publish on %s was stored", subject)
			}
		})
	}
	for _, api := range []string{"$JS.API.STREAM.PURGE.ferry-deadletters", "$JS.API.STREAM.DELETE.ferry-order-placed", "$JS.API.STREAM.MSG.DELETE.ferry-deadletters"} {
		t.Run("outsider calls "+api, func(t *testing.T) {
			if _, err := outsider.Request(api, []byte(`{}`), 500*time.Millisecond); err == nil {
				t.Fatalf("an outsider's %s was answered", api)
			}
		})
	}
	for name := range streams {
		s, err := ajs.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if info, err := s.Info(ctx); err != nil || info.State.Msgs != 0 {
			t.Errorf("stream %s holds %v messages (%v); want none stored by the outsider", name, info.State.Msgs, err)
		}
	}
	return len(subjects) + 3
}
